package reuseport

import (
	"context"
	"net"
	"testing"
	"time"
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

// A connection queued on a socket survives the close of the listener it
// was inherited from: the new listener accepts it.
func TestInheritKeepsQueuedConnections(t *testing.T) {
	old, err := ListenConfig().Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", old.Addr().String()) // queued: nobody accepts yet
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	nl, err := Inherit(old)
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	if err := nl.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	s, err := nl.Accept()
	if err != nil {
		t.Fatalf("the queued connection was lost with the old listener: %v", err)
	}
	defer s.Close()
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := s.Read(buf); err != nil || buf[0] != 'x' {
		t.Fatalf("read %q, %v", buf, err)
	}
}

func TestSameAddress(t *testing.T) {
	for _, c := range []struct {
		addr string
		host string
		port int
		want bool
	}{
		{"127.0.0.1:8080", "127.0.0.1", 8080, true},
		{"127.0.0.1:8080", "127.0.0.2", 8080, false},
		{"127.0.0.1:8080", "127.0.0.1", 8081, false},
		{"127.0.0.1:8080", "127.0.0.1", 0, false},
		{"[::]:443", "", 443, true},
		{"127.0.0.1:443", "", 443, false},
		{"[::1]:443", "::1", 443, true},
	} {
		a, err := net.ResolveTCPAddr("tcp", c.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := SameAddress(a, c.host, c.port); got != c.want {
			t.Errorf("SameAddress(%s, %q, %d) = %v, want %v", c.addr, c.host, c.port, got, c.want)
		}
	}
}
