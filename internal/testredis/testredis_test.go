package testredis

import (
	"context"
	"testing"
	"time"
)

func TestKillAndRestart(t *testing.T) {
	s := Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.ping(ctx); err != nil {
		t.Fatalf("fresh server: %v", err)
	}
	s.Kill()
	if err := s.ping(ctx); err == nil {
		t.Fatal("killed server still answers")
	}
	s.Restart()
	if err := s.ping(ctx); err != nil {
		t.Fatalf("restarted server: %v", err)
	}
}
