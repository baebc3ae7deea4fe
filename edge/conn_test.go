package edge

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Frames returns one response on an HTTP/2 stream as the server writes
// it: a HEADERS frame that leaves the stream open, then a DATA frame
// that ends it.
func h2Frames(t *testing.T) (headers, data []byte) {
	t.Helper()
	var out, block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	// The edge's own response: the refusal scan sees its request id.
	for _, f := range []hpack.HeaderField{{Name: ":status", Value: "200"}, {Name: "x-edge-request-id", Value: "test"}} {
		if err := enc.WriteField(f); err != nil {
			t.Fatal(err)
		}
	}
	fr := http2.NewFramer(&out, nil)
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	headers = bytes.Clone(out.Bytes())
	out.Reset()
	if err := fr.WriteData(1, true, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	return headers, bytes.Clone(out.Bytes())
}

// readWithin reads what one write delivered on a net.Pipe, failing after
// a bound (the hold is a millisecond).
func readWithin(t *testing.T, c net.Conn, d time.Duration) []byte {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(d)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return buf[:n]
}

// An HTTP/2 response's header block leaves with its body in one write
// (one TLS record, one segment); a header block whose body does not
// follow (an event stream) still leaves on its own, within the hold.
func TestViewerConnSendsHeadersWithTheirBody(t *testing.T) {
	headers, data := h2Frames(t)

	a, b := net.Pipe()
	defer b.Close()
	vc := &viewerConn{Conn: a, h2: true}
	defer vc.Close()
	go func() {
		_, _ = vc.Write(headers)
		_, _ = vc.Write(data)
	}()
	// net.Pipe hands one Write to one Read when the buffer is large
	// enough: both frames in the first read means one write.
	if got, want := readWithin(t, b, 5*time.Second), append(bytes.Clone(headers), data...); !bytes.Equal(got, want) {
		t.Fatalf("first write carried %x, want the header block and its body %x", got, want)
	}

	a2, b2 := net.Pipe()
	defer b2.Close()
	vc2 := &viewerConn{Conn: a2, h2: true}
	defer vc2.Close()
	go func() { _, _ = vc2.Write(headers) }()
	if got := readWithin(t, b2, 5*time.Second); !bytes.Equal(got, headers) {
		t.Fatalf("a header block without its body: got %x, want %x", got, headers)
	}
}

// Closing a viewer connection unblocks a write to a viewer that stopped
// reading, though a header block is held: Close does not wait for it.
func TestViewerConnCloseUnblocksAStuckWrite(t *testing.T) {
	headers, data := h2Frames(t)
	a, b := net.Pipe()
	defer b.Close()
	vc := &viewerConn{Conn: a, h2: true}
	if _, err := vc.Write(headers); err != nil { // held, nothing written yet
		t.Fatal(err)
	}
	wrote := make(chan error, 1)
	go func() {
		_, err := vc.Write(bytes.Repeat(data, 1000)) // nobody reads b: blocks
		wrote <- err
	}()
	closed := make(chan error, 1)
	go func() { closed <- vc.Close() }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for a write to a viewer that does not read")
	}
	select {
	case err := <-wrote:
		if err == nil {
			t.Fatal("a write to a closed connection succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stuck write did not return after Close")
	}
	if _, err := vc.Write(data); err == nil {
		t.Fatal("write after Close succeeded")
	}
	_, _ = io.Copy(io.Discard, b)
}

// The framing scan finds Content-Length and Transfer-Encoding among a
// request's header fields, in any case, however the request is cut into
// reads, and nothing after the blank line (a body that looks like a header).
func TestHeaderScanFindsFraming(t *testing.T) {
	for _, tc := range []struct {
		req    string
		cl, te bool
	}{
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", false, false},
		{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", true, false},
		{"POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\nCONTENT-LENGTH: 5\r\n\r\n", true, true},
		{"POST / HTTP/1.1\r\nUser-Agent: x Content-Length: 5\r\n\r\n", false, false},
		{"POST /Content-Length: HTTP/1.1\r\nX: y\r\n\r\nTransfer-Encoding: chunked\r\n", false, false},
		{"POST / HTTP/1.1\nTransfer-Encoding: chunked\n\nContent-Length: 1\n", false, true},
	} {
		for cut := 0; cut <= len(tc.req); cut++ {
			var h headerScan
			h.feed([]byte(tc.req[:cut]))
			h.feed([]byte(tc.req[cut:]))
			if h.contentLength != tc.cl || h.transferEncoding != tc.te {
				t.Fatalf("%q cut at %d: Content-Length %v, Transfer-Encoding %v; want %v, %v",
					tc.req, cut, h.contentLength, h.transferEncoding, tc.cl, tc.te)
			}
		}
	}
}
