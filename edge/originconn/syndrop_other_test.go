//go:build !unix

package originconn

import (
	"errors"
	"net"
	"testing"
	"time"
)

// synDropAddr returns an address on ip whose SYNs go unanswered: a listener
// that never accepts, its backlog filled.
func synDropAddr(t *testing.T, ip string) string {
	t.Helper()
	ln := listen(t, ip)
	t.Cleanup(func() { ln.Close() })
	for range 1024 {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 300*time.Millisecond)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return ln.Addr().String()
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatalf("the backlog of %s never filled", ln.Addr())
	return ""
}
