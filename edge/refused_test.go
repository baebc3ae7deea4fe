package edge

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgegate/edgegate/edge/accesslog"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Every malformed request form ends in a standard log line with
// CloudFront's result types, including those net/http refuses before a
// handler runs, and a viewer that breaks its own body is blamed for it.
func TestRefusedRequestsLogged(t *testing.T) {
	e := newTestEnv(t)
	var originCalls atomic.Int64
	origin, _ := e.httpsOrigin("127.0.0.2", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		originCalls.Add(1)
		_, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			return
		}
		fmt.Fprint(w, "ok")
	}), "app.example.test")
	re := e.startEdge(e.edgeConfig("  admin: {listen: \"127.0.0.1:0\"}", fmt.Sprintf(`    origins: [{id: app, domain_name: app.example.test, connect_to: %q, trusted_ca: %q}]
    default_behavior: {target: app, cache_policy: disabled, allowed_methods: [GET, HEAD, OPTIONS, PUT, POST, PATCH, DELETE]}`, origin, e.caFile)))

	const host = "Host: www.example.test\r\n"
	huge := strings.Repeat("x", 30<<10)
	for _, tc := range []struct {
		name     string
		tls      bool
		request  string
		status   int
		detailed accesslog.ResultType
		closed   bool // the edge must close the connection after answering
	}{
		{"garbage request line", true, "GARBAGE\r\n\r\n", 400, accesslog.ResultInvalidRequest, true},
		{"headers too large", true, "GET /big HTTP/1.1\r\n" + host + "X-Big: " + huge + "\r\n\r\n", 431, accesslog.ResultInvalidRequestHeader, true},
		{"URL too long", true, "GET /" + strings.Repeat("u", 9000) + " HTTP/1.1\r\n" + host + "\r\n", 414, accesslog.ResultInvalidRequest, false},
		{"two Host headers", true, "GET /h HTTP/1.1\r\n" + host + host + "\r\n", 400, accesslog.ResultInvalidRequestHeader, true},
		{"unknown transfer coding", true, "POST /te HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip\r\n\r\n", 501, accesslog.ResultInvalidRequest, true},
		{"HTTP on the HTTPS port", false, "GET /plain HTTP/1.1\r\n" + host + "\r\n", 400, accesslog.ResultInvalidRequest, true},
		{"Content-Length and Transfer-Encoding", true, "POST /smuggle HTTP/1.1\r\n" + host + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, accesslog.ResultInvalidRequestHeader, true},
		{"malformed chunked body", true, "POST /upload HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n", 400, accesslog.ResultClientCommError, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var conn net.Conn
			var err error
			if tc.tls {
				conn, err = tls.Dial("tcp", re.Addr("https"), &tls.Config{ServerName: "www.example.test", RootCAs: e.ca.Pool(), NextProtos: []string{"http/1.1"}})
			} else {
				conn, err = net.Dial("tcp", re.Addr("https"))
			}
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			go func() { _, _ = io.WriteString(conn, tc.request) }()
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no response: %v", err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.closed {
				_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				var ne net.Error
				if n, err := br.Read(make([]byte, 1)); err == nil || n > 0 || (errors.As(err, &ne) && ne.Timeout()) {
					t.Errorf("the connection stays open after the answer (%v)", err)
				}
			}
		})
	}

	// HTTP/2: a stream error (an upper-case header name) and a connection
	// error (DATA on stream 0).
	h2conn := func() (*tls.Conn, *http2.Framer) {
		c, err := tls.Dial("tcp", re.Addr("https"), &tls.Config{ServerName: "www.example.test", RootCAs: e.ca.Pool(), NextProtos: []string{"h2"}})
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
			t.Fatal(err)
		}
		fr := http2.NewFramer(c, c)
		if err := fr.WriteSettings(); err != nil {
			t.Fatal(err)
		}
		return c, fr
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "www.example.test"}, {":path", "/h2"}, {"X-Upper", "no"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	c1, fr1 := h2conn()
	if err := fr1.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	waitFrame(t, fr1, func(f http2.Frame) bool { _, ok := f.(*http2.RSTStreamFrame); return ok })
	c1.Close()
	c2, fr2 := h2conn()
	if err := fr2.WriteRawFrame(http2.FrameData, 0, 0, []byte("x")); err != nil {
		t.Fatal(err)
	}
	waitFrame(t, fr2, func(f http2.Frame) bool { _, ok := f.(*http2.GoAwayFrame); return ok })
	c2.Close()

	// net/http's own answer to a connection-specific header (400), and a
	// connection that negotiated h2 but sends HTTP/1: closed, logged.
	hb.Reset()
	enc = hpack.NewEncoder(&hb) // a new connection, a new table
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "www.example.test"}, {":path", "/h2-te"}, {"connection", "keep-alive"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	c3, fr3 := h2conn()
	if err := fr3.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	waitFrame(t, fr3, func(f http2.Frame) bool { d, ok := f.(*http2.DataFrame); return ok && d.StreamEnded() })
	c3.Close()
	c4, err := tls.Dial("tcp", re.Addr("https"), &tls.Config{ServerName: "www.example.test", RootCAs: e.ca.Pool(), NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = c4.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(c4, "GET /no-preface HTTP/1.1\r\n"+host+"\r\n")
	if b, _ := io.ReadAll(c4); len(b) > 0 {
		t.Errorf("HTTP/1 on an h2 connection was answered: %q", b)
	}
	c4.Close()

	// Port 80 logs what it refuses too.
	plain, err := net.Dial("tcp", re.Addr("http"))
	if err != nil {
		t.Fatal(err)
	}
	_ = plain.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(plain, "GET /x HTTP/1.1\r\n"+host+"Transfer-Encoding: identity, chunked\r\n\r\n")
	if resp, err := http.ReadResponse(bufio.NewReader(plain), nil); err != nil || resp.StatusCode != 501 {
		t.Errorf("port 80, two transfer codings: %v %v", resp, err)
	}
	plain.Close()

	// A good HTTP/2 request still carries its TLS details to the log, though
	// the server sees the decrypted stream.
	h2, err := re.client(true).Get("https://www.example.test/h2-ok")
	if err != nil {
		t.Fatal(err)
	}
	h2.Body.Close()
	if h2.ProtoMajor != 2 {
		t.Fatalf("not HTTP/2: %s", h2.Proto)
	}
	h2ID := h2.Header.Get("X-Edge-Request-Id")

	// Every request above has its line once the edge has stopped.
	recs := re.records()
	var mb bytes.Buffer
	re.writeMetrics(&mb)
	count := map[string]int{}
	for _, r := range recs {
		count[fmt.Sprintf("%s %d %s", r.DetailedResultType, r.Status, r.ProtocolVersion)]++
	}
	for key, n := range map[string]int{
		"InvalidRequest 400 ":               2, // garbage; HTTP on the HTTPS port (only "GET /" was read, as a TLS record)
		"InvalidRequestHeader 431 HTTP/1.1": 1,
		"InvalidRequest 414 HTTP/1.1":       1,
		"InvalidRequestHeader 400 HTTP/1.1": 2, // two Host headers; CL+TE
		"ClientCommError 400 HTTP/1.1":      1,
		"InvalidRequest 0 HTTP/2.0":         3, // a stream error, a connection error, no preface
		"InvalidRequestHeader 400 HTTP/2.0": 1, // net/http's own 400
	} {
		if count[key] != n {
			t.Errorf("%d lines %q, want %d; all: %v", count[key], key, n, count)
		}
	}
	if len(recs) != 14 {
		t.Errorf("%d log lines for 14 requests: %v", len(recs), count)
	}
	if count["InvalidRequest 501 HTTP/1.1"] != 2 {
		t.Errorf("port 80's 501 not logged: %v", count)
	}
	if r := byID(t, recs, h2ID); r.Protocol != "https" || r.ProtocolVersion != "HTTP/2.0" || !strings.HasPrefix(r.SSLProtocol, "TLSv1.") || r.SSLCipher == "" {
		t.Errorf("HTTP/2 line: %s %s %s %s", r.Protocol, r.ProtocolVersion, r.SSLProtocol, r.SSLCipher)
	}
	for _, r := range recs {
		if r.DetailedResultType == accesslog.ResultOriginReadError {
			t.Errorf("a viewer's fault blamed on the origin: %+v", r)
		}
	}
	if !strings.Contains(mb.String(), `detailed_result_type="InvalidRequestHeader",status="431"`) {
		t.Errorf("no metric for the 431:\n%s", mb.String())
	}
}

func waitFrame(t *testing.T, fr *http2.Framer, want func(http2.Frame) bool) {
	t.Helper()
	for range 20 {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading frames: %v", err)
		}
		if want(f) {
			return
		}
	}
	t.Fatal("the expected frame never came")
}
