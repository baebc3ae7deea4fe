package originconn

import (
	"crypto/x509"
	"strings"
	"testing"
)

func verifyOpts(pool *x509.CertPool) x509.VerifyOptions {
	return x509.VerifyOptions{Roots: pool, DNSName: "origin.example.test"}
}

// The framer decides when a pooled connection is idle; feed each response
// in every split of sizes so that boundaries inside lines are covered.
func TestFramerFindsTheEndOfResponses(t *testing.T) {
	for _, tc := range []struct {
		name     string
		request  string
		response string
		idle     bool // the response is complete (false: still busy or not followed)
	}{
		{"content-length", "GET / HTTP/1.1\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", true},
		{"content-length, body short", "GET / HTTP/1.1\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhello", false},
		{"headers only so far", "GET / HTTP/1.1\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", false},
		{"zero length", "GET / HTTP/1.1\r\n", "HTTP/1.1 200 OK\r\ncontent-length:0\r\n\r\n", true},
		{"bare LF", "GET / HTTP/1.1\r\n", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", true},
		{"chunked with extension and trailer", "GET / HTTP/1.1\r\n",
			"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Sum: 1\r\n\r\n", true},
		{"chunked, last chunk missing", "GET / HTTP/1.1\r\n",
			"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", false},
		{"HEAD with a length", "HEAD / HTTP/1.1\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n", true},
		{"204", "GET / HTTP/1.1\r\n", "HTTP/1.1 204 No Content\r\n\r\n", true},
		{"304 with a length", "GET / HTTP/1.1\r\n", "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", true},
		{"100 then final", "PUT / HTTP/1.1\r\n", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true},
		{"100 only", "PUT / HTTP/1.1\r\n", "HTTP/1.1 100 Continue\r\n\r\n", false},
		{"until close", "GET / HTTP/1.0\r\n", "HTTP/1.0 200 OK\r\n\r\nanything", false},
		{"unknown coding", "GET / HTTP/1.1\r\n", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx", false},
		{"conflicting lengths", "GET / HTTP/1.1\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", false},
		{"garbage", "GET / HTTP/1.1\r\n", "SSH-2.0-OpenSSH\r\n\r\n", false},
		{"switching protocols", "GET / HTTP/1.1\r\n", "HTTP/1.1 101 Switching Protocols\r\n\r\n", false},
		{"long header line", "GET / HTTP/1.1\r\n", "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 10000) + "\r\nContent-Length: 1\r\n\r\n!", true},
	} {
		for _, size := range []int{1, 2, 3, 7, 64, 1 << 20} {
			var f framer
			if f.busy() {
				t.Fatal("a new connection is busy")
			}
			f.request([]byte(tc.request))
			f.request([]byte("Host: x\r\n\r\n")) // the rest of the request changes nothing
			if !f.busy() {
				t.Fatalf("%s: not busy after a request", tc.name)
			}
			for b := []byte(tc.response); len(b) > 0; {
				n := min(size, len(b))
				f.feed(b[:n])
				b = b[n:]
			}
			if f.busy() == tc.idle {
				t.Errorf("%s (pieces of %d): idle %v, want %v (state %d)", tc.name, size, !f.busy(), tc.idle, f.state)
			}
		}
	}
	// After an idle response the next request starts a new exchange.
	var f framer
	f.request([]byte("HEAD / HTTP/1.1\r\n"))
	f.feed([]byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"))
	f.request([]byte("GET / HTTP/1.1\r\n"))
	f.feed([]byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"))
	if !f.busy() {
		t.Error("GET after HEAD: the body was not awaited")
	}
	f.feed([]byte("abc"))
	if f.busy() {
		t.Error("GET after HEAD: still busy after the body")
	}
}
