package origin

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// FuzzPeekServerName feeds any bytes to the passthrough listener's SNI
// peek as a client's first flight. It must never panic or block past its
// timeout, and what it returns to be replayed to the target must be
// exactly the bytes it consumed, in order (a prefix of the input), so the
// target sees the client's ClientHello untouched. Seeds: ClientHellos of
// Go, OpenSSL (s_client) and curl, one without SNI, cut ones, and a plain
// HTTP request.
func FuzzPeekServerName(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &bytesConn{r: bytes.NewReader(data)}
		start := time.Now()
		sni, replay, err := peekServerName(c, time.Second)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("peek took %v", d)
		}
		if !bytes.HasPrefix(data, replay) {
			t.Fatalf("replay bytes are not a prefix of the input:\n%q\n%q", replay, data)
		}
		if err == nil && len(sni) > 255 {
			t.Fatalf("a server name of %d bytes", len(sni))
		}
	})
}

// bytesConn is a net.Conn whose reads come from a byte slice and whose
// writes vanish.
type bytesConn struct {
	r *bytes.Reader
}

func (c *bytesConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *bytesConn) Write(p []byte) (int, error) { return len(p), nil }
func (c *bytesConn) Close() error                { return nil }
func (c *bytesConn) LocalAddr() net.Addr         { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9443} }
func (c *bytesConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000}
}
func (c *bytesConn) SetDeadline(t time.Time) error      { return nil }
func (c *bytesConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *bytesConn) SetWriteDeadline(t time.Time) error { return nil }

var _ io.Reader = (*bytesConn)(nil)
