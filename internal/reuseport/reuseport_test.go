package reuseport

import (
	"context"
	"testing"
)

// Two sockets listen on one address at once: what a rolling restart and a
// re-bound listener need.
func TestTwoListenersOneAddress(t *testing.T) {
	a, err := ListenConfig().Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := ListenConfig().Listen(context.Background(), "tcp", a.Addr().String())
	if err != nil {
		t.Fatalf("second listener on %s: %v", a.Addr(), err)
	}
	b.Close()
}
