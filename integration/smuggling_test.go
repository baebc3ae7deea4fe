package integration

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/edge/accesslog"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// smuggleMarker is in the target of every request an attack tries to hide
// inside another: it must never reach the app.
const smuggleMarker = "smuggled"

// TestSmuggling sends the request-smuggling and header-injection forms as
// raw bytes over TLS to an edge in front of the origin tier. For each it
// asserts the edge's answer, whether it closes the connection, how many
// requests reach the app, and the standard log line; after each, a
// well-behaved viewer on a fresh connection must get its own answer (no
// desynchronised origin connection), and nothing smuggled ever reaches the
// app.
func TestSmuggling(t *testing.T) {
	s := startAdversaryStack(t)
	const host = "Host: www.example.test\r\n"
	smuggled := "GET /api/" + smuggleMarker + " HTTP/1.1\r\n" + host + "\r\n"
	chunkedSmuggle := "0\r\n\r\n" + smuggled
	huge := strings.Repeat("x", 30<<10)
	type want struct {
		status   int
		closed   bool
		app      int                  // requests that reach the app; -1: at most one, with no body (the edge may have started forwarding)
		detailed accesslog.ResultType // of the log line ("" = no line expected: keep-alive still open is fine)
	}
	cases := []struct {
		name string
		path string // unique; the log line and the app's count are found by it
		req  func(path string) string
		want want
	}{
		{"CL.TE", "/api/cl-te", func(p string) string {
			return fmt.Sprintf("POST %s HTTP/1.1\r\n%sContent-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n%s", p, host, len(chunkedSmuggle), chunkedSmuggle)
		}, want{400, true, 0, accesslog.ResultInvalidRequestHeader}},
		{"TE.CL", "/api/te-cl", func(p string) string {
			return "POST " + p + " HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" + chunkedSmuggle
		}, want{400, true, 0, accesslog.ResultInvalidRequestHeader}},
		{"TE chunked, identity", "/api/te-list", func(p string) string {
			return "POST " + p + " HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked, identity\r\n\r\n" + chunkedSmuggle
		}, want{501, true, 0, accesslog.ResultInvalidRequest}},
		{"TE identity, chunked with CL", "/api/te-list-cl", func(p string) string {
			return "POST " + p + " HTTP/1.1\r\n" + host + "Content-Length: 5\r\nTransfer-Encoding: identity, chunked\r\n\r\n" + chunkedSmuggle
		}, want{501, true, 0, accesslog.ResultInvalidRequest}},
		{"two TE headers", "/api/te-two", func(p string) string {
			return "POST " + p + " HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n" + chunkedSmuggle
		}, want{501, true, 0, accesslog.ResultInvalidRequest}},
		{"TE xchunked", "/api/te-x", func(p string) string {
			return "POST " + p + " HTTP/1.1\r\n" + host + "Transfer-Encoding: xchunked\r\n\r\n" + chunkedSmuggle
		}, want{501, true, 0, accesslog.ResultInvalidRequest}},
		{"TE with leading whitespace and CL", "/api/te-ws", func(p string) string {
			return "POST " + p + " HTTP/1.1\r\n" + host + "Content-Length: 5\r\nTransfer-Encoding: \t chunked\r\n\r\n" + chunkedSmuggle
		}, want{400, true, 0, accesslog.ResultInvalidRequestHeader}},
		{"TE line with leading whitespace", "/api/te-line-ws", func(p string) string {
			return "POST " + p + " HTTP/1.1\r\n" + host + "Content-Length: 5\r\n Transfer-Encoding: chunked\r\n\r\n" + chunkedSmuggle
		}, want{400, true, 0, accesslog.ResultInvalidRequestHeader}},
		{"space before the colon", "/api/te-colon", func(p string) string {
			return "POST " + p + " HTTP/1.1\r\n" + host + "Content-Length: 5\r\nTransfer-Encoding : chunked\r\n\r\n" + chunkedSmuggle
		}, want{400, true, 0, accesslog.ResultInvalidRequestHeader}},
		{"TE on HTTP/1.0", "/api/te-10", func(p string) string {
			return "POST " + p + " HTTP/1.0\r\n" + host + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" + chunkedSmuggle
		}, want{400, true, 0, accesslog.ResultInvalidRequestHeader}},
		{"identical duplicate Content-Length", "/api/cl-dup", func(p string) string {
			return "POST " + p + " HTTP/1.1\r\n" + host + "Content-Length: 5\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
		}, want{200, true, 1, accesslog.ResultMiss}},
		{"differing Content-Length", "/api/cl-diff", func(p string) string {
			return "POST " + p + " HTTP/1.1\r\n" + host + "Content-Length: 5\r\nContent-Length: 46\r\n\r\nhello" + smuggled
		}, want{400, true, 0, accesslog.ResultInvalidRequestHeader}},
		{"Content-Length list", "/api/cl-list", func(p string) string {
			return "POST " + p + " HTTP/1.1\r\n" + host + "Content-Length: 5, 46\r\n\r\nhello" + smuggled
		}, want{400, true, 0, accesslog.ResultInvalidRequestHeader}},
		{"signed Content-Length", "/api/cl-plus", func(p string) string {
			return "POST " + p + " HTTP/1.1\r\n" + host + "Content-Length: +5\r\n\r\nhello" + smuggled
		}, want{400, true, 0, accesslog.ResultInvalidRequestHeader}},
		// RFC 9112 §5.2 allows either refusing obs-fold or replacing it with
		// a space before forwarding; net/http does the latter (checked
		// below: the app sees one header, no Transfer-Encoding).
		{"obs-fold", "/api/obs-fold", func(p string) string {
			return "GET " + p + " HTTP/1.1\r\n" + host + "X-Folded: a\r\n Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
		}, want{200, true, 1, accesslog.ResultMiss}},
		{"bare LF line ends", "/api/bare-lf", func(p string) string {
			return "GET " + p + " HTTP/1.1\nHost: www.example.test\nConnection: close\n\n"
		}, want{200, true, 1, accesslog.ResultMiss}},
		{"bare CR in a value", "/api/bare-cr", func(p string) string {
			return "GET " + p + " HTTP/1.1\r\n" + host + "X-Injected: a\rTransfer-Encoding: chunked\r\n\r\n"
		}, want{400, true, 0, accesslog.ResultInvalidRequestHeader}},
		{"NUL in a value", "/api/nul", func(p string) string {
			return "GET " + p + " HTTP/1.1\r\n" + host + "X-Injected: a\x00b\r\n\r\n"
		}, want{400, true, 0, accesslog.ResultInvalidRequestHeader}},
		{"duplicate Host", "/api/dup-host", func(p string) string {
			return "GET " + p + " HTTP/1.1\r\n" + host + "Host: other.example.test\r\n\r\n"
		}, want{400, true, 0, accesslog.ResultInvalidRequestHeader}},
		{"absolute form naming another distribution", "/api/abs-other", func(p string) string {
			return "GET https://other.example.test" + p + " HTTP/1.1\r\n" + host + "\r\n"
		}, want{421, false, 0, accesslog.ResultInvalidRequestCertificate}},
		{"absolute form naming an unknown host", "/api/abs-evil", func(p string) string {
			return "GET https://evil.test" + p + " HTTP/1.1\r\n" + host + "\r\n"
		}, want{421, false, 0, accesslog.ResultInvalidRequest}},
		{"Host of another distribution", "/api/host-other", func(p string) string {
			return "GET " + p + " HTTP/1.1\r\nHost: other.example.test\r\n\r\n"
		}, want{421, false, 0, accesslog.ResultInvalidRequestCertificate}},
		{"oversized headers", "/api/huge", func(p string) string {
			return "GET " + p + " HTTP/1.1\r\n" + host + "X-Big: " + huge + "\r\n\r\n"
		}, want{431, true, 0, accesslog.ResultInvalidRequestHeader}},
		{"chunk size overflow", "/api/chunk-overflow", func(p string) string {
			return "POST " + p + " HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\nffffffffffffffff1\r\nx\r\n0\r\n\r\n"
		}, want{400, true, -1, accesslog.ResultClientCommError}},
		{"chunk extension hiding a request", "/api/chunk-ext", func(p string) string {
			return "POST " + p + " HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5;ext=\"x\r\nhello\r\n0\r\n\r\n" + smuggled
		}, want{200, true, 1, accesslog.ResultMiss}}, // extensions end at the line's end: 5 bytes, then the end

	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resps, bodies, closed := s.rawExchange(tc.req(tc.path), 2*time.Second)
			if len(resps) == 0 {
				t.Fatalf("no response (connection closed: %v)", closed)
			}
			if len(resps) > 1 {
				t.Errorf("%d responses to one request, the second: %d %q", len(resps), resps[1].StatusCode, bodies[1])
			}
			if resps[0].StatusCode != tc.want.status {
				t.Errorf("status %d, want %d (%q)", resps[0].StatusCode, tc.want.status, bodies[0])
			}
			if closed != tc.want.closed {
				t.Errorf("connection closed: %v, want %v", closed, tc.want.closed)
			}
			got := s.app.requests(tc.path)
			if tc.want.app >= 0 && len(got) != tc.want.app || len(got) > 1 {
				t.Errorf("%d requests reached the app, want %d", len(got), tc.want.app)
			}
			if tc.want.app < 0 && len(got) == 1 && got[0].Body != "" {
				t.Errorf("the app got the body %q of a broken request", got[0].Body)
			}
			// A viewer on another connection gets its own answer: no origin
			// connection was left out of step.
			follow := fmt.Sprintf("/api/follow-%d", i)
			resp, err := s.viewer(false).Get("https://www.example.test" + follow)
			if err != nil {
				t.Fatalf("follow-up request: %v", err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(b), "GET "+follow+" ") {
				t.Errorf("follow-up request got %d %q", resp.StatusCode, b)
			}
		})
	}

	// HTTP/2: framing the HTTP/1.1 origin connection must not inherit.
	tenK := strings.Repeat("y", 10<<10)
	h2cases := []struct {
		name   string
		fields [][2]string
		data   string
		status int // 0: the stream or connection is reset; -1: either (a race with the handler)
		app    int // requests that reach the app
	}{
		// The handler may start, and even answer, before the excess DATA
		// arrives: the app then sees the request with the empty body it
		// declared, never more.
		{"h2 content-length shorter than DATA", [][2]string{{":method", "POST"}, {":path", "/api/h2-cl"}, {"content-length", "0"}}, smuggled, -1, -1},
		{"h2 transfer-encoding", [][2]string{{":method", "POST"}, {":path", "/api/h2-te"}, {"transfer-encoding", "chunked"}}, chunkedSmuggle, 400, 0},
		{"h2 CRLF in a value", [][2]string{{":method", "GET"}, {":path", "/api/h2-crlf"}, {"x-injected", "a\r\nTransfer-Encoding: chunked"}}, "", 0, 0},
		{"h2 CRLF in the path", [][2]string{{":method", "GET"}, {":path", "/api/h2-path HTTP/1.1\r\nHost: x\r\n\r\nGET /api/" + smuggleMarker}}, "", 0, 0},
		{"h2 host differs from :authority", [][2]string{{":method", "GET"}, {":path", "/api/h2-host"}, {"host", "other.example.test"}}, "", 200, 1},
		{"h2 :authority of another distribution", [][2]string{{":method", "GET"}, {":path", "/api/h2-authority"}, {":authority", "other.example.test"}}, "", 421, 0},
		{"h2 one oversized header", [][2]string{{":method", "GET"}, {":path", "/api/h2-huge"}, {"x-big", huge}}, "", 0, 0},
		{"h2 oversized header list", [][2]string{{":method", "GET"}, {":path", "/api/h2-many"}, {"x-a", tenK}, {"x-b", tenK}, {"x-c", tenK}}, "", 431, 0},
	}
	for _, tc := range h2cases {
		t.Run(tc.name, func(t *testing.T) {
			status, reset := s.h2Request(tc.fields, tc.data)
			if tc.status == 0 && !reset {
				t.Errorf("stream answered %d, want it reset", status)
			}
			if tc.status > 0 && status != tc.status {
				t.Errorf("status %d (reset %v), want %d", status, reset, tc.status)
			}
			var path string
			for _, f := range tc.fields {
				if f[0] == ":path" {
					path, _, _ = strings.Cut(f[1], " ")
				}
			}
			got := s.app.requests(path)
			for _, r := range got {
				if r.Body != "" {
					t.Errorf("the app got a body %q", r.Body)
				}
			}
			if tc.app >= 0 && len(got) != tc.app || len(got) > 1 {
				t.Errorf("%d requests reached the app, want %d", len(got), tc.app)
			}
		})
	}
	// HTTP/1 on a connection that negotiated h2 by ALPN: closed without an
	// answer (RFC 9113 §3.4), never served as HTTP/1.
	t.Run("h2 without the client preface", func(t *testing.T) {
		c := s.dialTLS("www.example.test", "h2")
		defer c.Close()
		_, _ = io.WriteString(c, "GET /api/h2-no-preface HTTP/1.1\r\n"+host+"\r\n")
		if b, _ := io.ReadAll(c); len(b) > 0 {
			t.Errorf("the edge answered %q", b)
		}
	})
	if r := s.app.requests("/api/h2-host"); len(r) != 1 || r[0].Host != "origin.example.test" || !strings.Contains(r[0].Header.Get("X-Behavior"), "default") {
		t.Errorf("h2 host vs :authority: the app saw %+v, want one request routed by :authority", r)
	}
	if r := s.app.requests("/api/obs-fold"); len(r) == 1 && (r[0].Header.Get("X-Folded") != "a Transfer-Encoding: chunked" || r[0].Header.Get("Transfer-Encoding") != "") {
		t.Errorf("obs-fold: the app saw %q", r[0].Header)
	}
	if r := s.app.requests("/api/chunk-ext"); len(r) == 1 && r[0].Body != "hello" {
		t.Errorf("chunk extension: the app got the body %q, want %q", r[0].Body, "hello")
	}

	for _, r := range s.app.all() {
		if strings.Contains(r.URI, smuggleMarker) {
			t.Errorf("a smuggled request reached the app: %s %s", r.Method, r.URI)
		}
	}
	recs := s.records()
	for _, tc := range cases {
		rec, ok := logLine(t, recs, tc.path)
		if !ok {
			t.Errorf("%s: no single standard log line for %s", tc.name, tc.path)
			continue
		}
		if rec.Status != tc.want.status || rec.DetailedResultType != tc.want.detailed {
			t.Errorf("%s: log line %d %s, want %d %s", tc.name, rec.Status, rec.DetailedResultType, tc.want.status, tc.want.detailed)
		}
	}
	for _, p := range []string{"/api/h2-host", "/api/h2-authority"} {
		if _, ok := logLine(t, recs, p); !ok {
			t.Errorf("no single standard log line for the HTTP/2 request %s", p)
		}
	}
	// net/http answers a connection-specific header (400) and a header list
	// over the limit (431) without running the edge's handler: the edge
	// logs them from the frames it sends (the path is not known there).
	n := 0
	for _, r := range recs {
		if r.ProtocolVersion == "HTTP/2.0" && r.Status == 0 && r.DetailedResultType == accesslog.ResultInvalidRequest {
			n++
		}
	}
	if n == 0 {
		t.Error("no log line for the HTTP/2 connection without a preface")
	}
	for _, st := range []int{400, 431} {
		n := 0
		for _, r := range recs {
			if r.ProtocolVersion == "HTTP/2.0" && r.Status == st && r.DetailedResultType == accesslog.ResultInvalidRequestHeader {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d HTTP/2 log lines with status %d InvalidRequestHeader, want 1", n, st)
		}
	}
}

// h2Request sends one HTTP/2 request (pseudo-headers filled in where the
// fields leave them out) with an optional body, and returns the status or
// whether the stream (or connection) was reset.
func (s *adversaryStack) h2Request(fields [][2]string, data string) (status int, reset bool) {
	s.t.Helper()
	c := s.dialTLS("www.example.test", "h2")
	defer c.Close()
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		s.t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := fr.WriteSettings(); err != nil {
		s.t.Fatal(err)
	}
	have := map[string]bool{}
	for _, f := range fields {
		have[f[0]] = true
	}
	all := fields
	for _, d := range [][2]string{{":scheme", "https"}, {":authority", "www.example.test"}} {
		if !have[d[0]] {
			all = append([][2]string{d}, all...)
		}
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	// Pseudo-headers first, as the protocol requires.
	for _, pseudo := range []bool{true, false} {
		for _, f := range all {
			if strings.HasPrefix(f[0], ":") == pseudo {
				_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
			}
		}
	}
	block := hb.Bytes()
	first := block[:min(len(block), 16<<10)]
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: first, EndStream: data == "", EndHeaders: len(first) == len(block)}); err != nil {
		s.t.Fatal(err)
	}
	for rest := block[len(first):]; len(rest) > 0; {
		n := min(len(rest), 16<<10)
		if err := fr.WriteContinuation(1, n == len(rest), rest[:n]); err != nil {
			s.t.Fatal(err)
		}
		rest = rest[n:]
	}
	if data != "" {
		if err := fr.WriteData(1, true, []byte(data)); err != nil {
			return 0, true
		}
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return status, true
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			if f.StreamID == 1 {
				for _, hf := range f.Fields {
					if hf.Name == ":status" {
						fmt.Sscan(hf.Value, &status)
					}
				}
				if f.StreamEnded() {
					return status, false
				}
			}
		case *http2.DataFrame:
			if f.StreamID == 1 && f.StreamEnded() {
				return status, false
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == 1 {
				return status, true
			}
		case *http2.GoAwayFrame:
			if f.ErrCode != http2.ErrCodeNo {
				return status, true
			}
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		}
	}
}

// TestDotSegmentRouting: every spelling of a path reaches the app in its
// normalised form through the behavior that form selects, so that a
// behavior (here /admin/*, GET only, through its own origin) cannot be
// dodged by a spelling the app would resolve differently.
func TestDotSegmentRouting(t *testing.T) {
	s := startAdversaryStack(t)
	for _, tc := range []struct {
		target   string
		method   string
		status   int
		behavior string // the behavior the app must see, "" when it must see nothing
		appPath  string
	}{
		{"/public/../admin/a", "GET", 200, "admin", "/admin/a"},
		{"/public/%2e%2e/admin/b", "GET", 200, "admin", "/admin/b"},
		{"/public/%2E%2E/admin/c", "GET", 200, "admin", "/admin/c"},
		{"/public/.%2e/admin/d", "GET", 200, "admin", "/admin/d"},
		{"//admin/e", "GET", 200, "admin", "/admin/e"},
		{"/./admin/f", "GET", 200, "admin", "/admin/f"},
		{"/%61dmin/g", "GET", 200, "admin", "/admin/g"},
		{"/public/../admin/h", "POST", 403, "", ""},
		{"/public/%2e%2e/admin/i", "DELETE", 403, "", ""},
		{"/%61dmin/j", "PUT", 403, "", ""},
		{"/../../admin/k", "POST", 403, "", ""},
		{"/public/..%2Fadmin/l", "POST", 200, "default", "/public/..%2Fadmin/l"},
		{"/public/..;/admin/m", "POST", 200, "default", "/public/..;/admin/m"},
		{"https://www.example.test/public/../admin/n", "POST", 403, "", ""},
	} {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			resps, bodies, _ := s.rawExchange(tc.method+" "+tc.target+" HTTP/1.1\r\nHost: www.example.test\r\nContent-Length: 0\r\n\r\n", time.Second)
			if len(resps) != 1 || resps[0].StatusCode != tc.status {
				t.Fatalf("got %d responses (%v), want one %d", len(resps), bodies, tc.status)
			}
			if tc.behavior == "" {
				return
			}
			if !strings.Contains(bodies[0], " "+tc.appPath+" ") || !strings.Contains(bodies[0], "behavior="+tc.behavior) {
				t.Errorf("the app answered %q, want it to see %s through the %s behavior", bodies[0], tc.appPath, tc.behavior)
			}
		})
	}
	// The invariant over everything the app saw: a path under /admin/ came
	// through the admin behavior and only such paths did, and no dot
	// segment survived.
	for _, r := range s.app.all() {
		p, _, _ := strings.Cut(r.URI, "?")
		admin := strings.HasPrefix(p, "/admin/")
		if admin != (r.Header.Get("X-Behavior") == "admin") {
			t.Errorf("the app saw %s %s through the %q behavior", r.Method, r.URI, r.Header.Get("X-Behavior"))
		}
		dec, _ := url.PathUnescape(p)
		if strings.Contains(p+"/", "/../") || strings.Contains(p+"/", "/./") || strings.Contains(strings.ToLower(p), "%2e") || (admin && dec != p) {
			t.Errorf("the app saw a path that is not normalised: %s", p)
		}
	}
}

// TestCachePoisoning: the unkeyed-header family that applications trust
// (forwarded host, scheme and port, URL rewrites, method overrides) must
// never change what another viewer gets from the cache, under the default
// origin request policy and under AllViewer, which forwards the most.
func TestCachePoisoning(t *testing.T) {
	s := startAdversaryStack(t)
	for i, h := range [][2]string{
		{"X-Forwarded-Host", "evil.test"},
		{"X-Host", "evil.test"},
		{"X-Forwarded-Server", "evil.test"},
		{"X-Original-Host", "evil.test"},
		{"X-Forwarded-Scheme", "http"},
		{"X-Forwarded-Proto", "http"},
		{"X-Forwarded-Port", "1337"},
		{"X-Forwarded-Prefix", "/evil"},
		{"X-Original-URL", "/admin/secret"},
		{"X-Rewrite-URL", "/admin/secret"},
		{"X-HTTP-Method-Override", "DELETE"},
		{"X-HTTP-Method", "DELETE"},
		{"X-Method-Override", "DELETE"},
	} {
		for _, c := range []struct {
			h2     bool
			prefix string
		}{{false, "/poison/"}, {true, "/poison/"}, {false, "/poison-all/"}, {true, "/poison-all/"}} {
			h2 := c.h2
			t.Run(fmt.Sprintf("%s h2=%v %s", h[0], h2, c.prefix), func(t *testing.T) {
				path := fmt.Sprintf("%s%d-%v", c.prefix, i, h2)
				viewer := s.viewer(h2)
				get := func(poison bool, suffix string) (int, string) {
					req, _ := http.NewRequest(http.MethodGet, "https://www.example.test"+path+suffix, nil)
					if poison {
						req.Header.Set(h[0], h[1])
					}
					resp, err := viewer.Do(req)
					if err != nil {
						t.Fatalf("GET %s: %v", path, err)
					}
					defer resp.Body.Close()
					b, _ := io.ReadAll(resp.Body)
					return resp.StatusCode, string(b)
				}
				// What a clean request gets, from a twin path (the query may
				// not be in the cache key; the path always is).
				_, twin := get(false, "-twin")
				clean := strings.Replace(twin, "page="+path+"-twin", "page="+path, 1)
				if !strings.Contains(clean, "https://") || !strings.HasSuffix(clean, "page="+path) {
					t.Fatalf("baseline %q", twin)
				}
				for range 2 { // the second is a hit if the first was stored
					get(true, "")
				}
				if n := len(s.app.requests(path + "-")); n != 1 || len(s.app.requests(path)) != 2 {
					t.Fatalf("the app saw %d requests of the path, want the attacker's first (and the twin)", len(s.app.requests(path))-n)
				}
				if status, body := get(false, ""); status != 200 || body != clean {
					t.Errorf("a viewer got %d %q after a request with %s: %s, want %q", status, body, h[0], h[1], clean)
				}
				if h[0] == "X-Forwarded-Proto" {
					_, twin := get(true, "-proto")
					if want := strings.Replace(clean, "page="+path, "page="+path+"-proto", 1); twin != want {
						t.Errorf("the viewer's X-Forwarded-Proto reached the app: %q", twin)
					}
				}
			})
		}
	}
}
