// Package testpebble starts Pebble, Let's Encrypt's test ACME server, for a
// test: in-process (internal/pebblerun, the same runner the demo uses), on
// loopback, stopped when the test ends, its log printed if the test failed.
package testpebble

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/edgegate/edgegate/internal/pebblerun"
)

// Config says where Pebble validates and resolves (pebblerun.Config); Dir
// defaults to the test's temporary directory.
type Config = pebblerun.Config

// Pebble is a running Pebble.
type Pebble = pebblerun.Server

// Start runs Pebble for a test, stopping it when the test ends and printing
// its log if the test failed.
func Start(t testing.TB, cfg Config) *Pebble {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := pebblerun.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("testpebble: %v", err)
	}
	t.Cleanup(func() {
		p.Close()
		if t.Failed() {
			t.Logf("pebble log:\n%s", p.Output())
		}
	})
	return p
}

// FreePort returns a port free on every loopback address in hosts at the
// time of the call (a test binds it right after).
func FreePort(hosts ...string) (int, error) {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		ok := true
		for _, h := range hosts {
			l2, err := net.Listen("tcp", net.JoinHostPort(h, strconv.Itoa(port)))
			if err != nil {
				ok = false
				break
			}
			l2.Close()
		}
		if ok {
			return port, nil
		}
	}
	return 0, errors.New("no port free on all of the loopback addresses")
}
