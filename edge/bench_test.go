package edge

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/internal/pki"
	"github.com/rs/zerolog"
)

// benchWriter is a ResponseWriter that keeps nothing but the status, so
// that a benchmark counts the edge's own work and allocations.
type benchWriter struct {
	h      http.Header
	status int
	n      int
}

// serve answers r afresh into w, as a new response.
func (w *benchWriter) serve(s *Server, r *http.Request) {
	clear(w.h)
	w.status, w.n = 0, 0
	s.serveViewer(w, r)
}

func (w *benchWriter) Header() http.Header { return w.h }
func (w *benchWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *benchWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.n += len(p)
	return len(p), nil
}
func (w *benchWriter) Flush() {}

// benchOrigin answers every path with the same 1 KiB object, cacheable
// for 5 minutes, or with no-store under /nostore/. It builds nothing per
// request, so that a benchmark's allocations are mostly the edge's.
type benchOrigin struct{}

var benchBody = []byte(strings.Repeat("0123456789abcdef", 64))

func (benchOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["Content-Type"] = []string{"application/octet-stream"}
	h["Content-Length"] = []string{"1024"}
	if strings.HasPrefix(r.URL.Path, "/nostore/") {
		h["Cache-Control"] = []string{"no-store"}
	} else {
		h["Cache-Control"] = []string{"max-age=300"}
	}
	_, _ = w.Write(benchBody)
}

// benchEdge is an edge (not listening) in front of a real HTTPS origin that
// answers cacheable 1 KiB objects, with standard logs on, and a request
// for it as a TLS 1.3 viewer connection would present it.
func benchEdge(b *testing.B, distribution string) (*Server, func(path string) *http.Request) {
	b.Helper()
	dir := b.TempDir()
	ca, err := pki.NewAuthority("bench CA")
	if err != nil {
		b.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := ca.WriteFile(caFile); err != nil {
		b.Fatal(err)
	}
	issue := func(name string) *pki.Leaf {
		l, err := ca.Issue(pki.LeafOptions{Names: []string{name}})
		if err != nil {
			b.Fatal(err)
		}
		return l
	}
	viewer := issue("www.example.test")
	cert, key, err := viewer.WriteFiles(dir, "viewer")
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		b.Fatal(err)
	}
	origin := &http.Server{
		Handler:           benchOrigin{},
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{issue("app.example.test").TLS()}},
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          quietLog(),
	}
	go func() { _ = origin.ServeTLS(l, "", "") }()
	b.Cleanup(func() { origin.Close() })
	cfgText := fmt.Sprintf(`edge:
  location: BNC1
  listen: {http: "off", https: "off"}
  certificates:
    files: [{cert: %q, key: %q}]
  logs: {dir: %q}
distributions:
  - aliases: [www.example.test]
    origins: [{id: app, domain_name: app.example.test, connect_to: %q, trusted_ca: %q}]
%s
`, cert, key, filepath.Join(dir, "logs"), l.Addr().String(), caFile, distribution)
	cfg, err := ParseConfig("bench edge config", []byte(cfgText))
	if err != nil {
		b.Fatalf("config: %v\n%s", err, cfgText)
	}
	s, err := New(context.Background(), cfg, Options{Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			b.Error(err)
		}
	})
	state := &tls.ConnectionState{Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_128_GCM_SHA256,
		ServerName: "www.example.test", HandshakeComplete: true, NegotiatedProtocol: "http/1.1"}
	newRequest := func(path string) *http.Request {
		r, err := http.NewRequest(http.MethodGet, "https://www.example.test"+path, nil)
		if err != nil {
			b.Fatal(err)
		}
		r.RequestURI = path
		r.RemoteAddr = "192.0.2.7:53211"
		r.TLS = state
		r.Header.Set("User-Agent", "bench/1.0")
		r.Header.Set("Accept", "*/*")
		return r
	}
	return s, newRequest
}

// BenchmarkCachedHit is a 1 KiB cache hit through the edge's handler, from
// routing to the standard log line, with the allocations it costs.
func BenchmarkCachedHit(b *testing.B) {
	s, newRequest := benchEdge(b, `    default_behavior: {target: app, cache_policy: {default_ttl: 1h, key: {query_strings: none}}}`)
	r := newRequest("/hit.txt")
	w := &benchWriter{h: http.Header{}}
	s.serveViewer(w, r) // the miss that fills the cache
	if w.status != http.StatusOK {
		b.Fatalf("first request: status %d", w.status)
	}
	serve := func() { w.serve(s, r) }
	serve()
	if got := w.h.Get("X-Cache"); got != "Hit from edgegate" || w.status != http.StatusOK || w.n < 1000 {
		b.Fatalf("second request: %d, %d bytes, X-Cache %q; want a 200 hit", w.status, w.n, got)
	}
	b.ReportAllocs()
	for b.Loop() {
		serve()
	}
}

// BenchmarkPassThrough is a 1 KiB response on a behavior with caching
// disabled: the proxy path to the origin over a pooled TLS connection. The
// origin runs in the same process, so its own work and allocations (its
// net/http server reading the request and writing the response) are
// counted too.
func BenchmarkPassThrough(b *testing.B) {
	s, newRequest := benchEdge(b, `    default_behavior: {target: app, cache_policy: disabled}`)
	r := newRequest("/pass.txt")
	w := &benchWriter{h: http.Header{}}
	serve := func() { w.serve(s, r) }
	serve()
	if got := w.h.Get("X-Cache"); got != "Miss from edgegate" || w.status != http.StatusOK || w.n < 1000 {
		b.Fatalf("first request: %d, %d bytes, X-Cache %q; want a 200 miss", w.status, w.n, got)
	}
	b.ReportAllocs()
	for b.Loop() {
		serve()
	}
}

// BenchmarkMiss is a 1 KiB miss that the origin answers with no-store, on
// a caching behavior: the cache's lookup, collapsed fetch and pass-through
// of the unstorable response, over a pooled TLS connection (the origin's
// own work counted too, as in BenchmarkPassThrough).
func BenchmarkMiss(b *testing.B) {
	s, newRequest := benchEdge(b, `    default_behavior: {target: app, cache_policy: {default_ttl: 1h, key: {query_strings: none}}}`)
	r := newRequest("/nostore/1k.bin")
	w := &benchWriter{h: http.Header{}}
	serve := func() { w.serve(s, r) }
	serve()
	serve()
	if got := w.h.Get("X-Cache"); got != "Miss from edgegate" || w.status != http.StatusOK || w.n != 1024 {
		b.Fatalf("second request: %d, %d bytes, X-Cache %q; want a 200 miss", w.status, w.n, got)
	}
	b.ReportAllocs()
	for b.Loop() {
		serve()
	}
}

// BenchmarkMissConcurrent is BenchmarkMiss with 8 viewers per core asking
// for the same no-store object at once, as the bench-edge miss test does:
// what collapsing costs when only one viewer may have the response.
func BenchmarkMissConcurrent(b *testing.B) {
	s, newRequest := benchEdge(b, `    default_behavior: {target: app, cache_policy: {default_ttl: 1h, key: {query_strings: none}}}`)
	w := &benchWriter{h: http.Header{}}
	s.serveViewer(w, newRequest("/nostore/1k.bin"))
	if w.status != http.StatusOK || w.n != 1024 {
		b.Fatalf("first request: %d, %d bytes", w.status, w.n)
	}
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		r := newRequest("/nostore/1k.bin")
		w := &benchWriter{h: http.Header{}}
		for pb.Next() {
			w.serve(s, r)
			if w.status != http.StatusOK || w.n != 1024 {
				b.Errorf("%d, %d bytes", w.status, w.n)
				return
			}
		}
	})
}

// BenchmarkCachedHitH2 is BenchmarkCachedHit over real HTTP/2 on loopback:
// TLS, net/http's HTTP/2 server (a goroutine per stream, whose stack growth
// the handler's frames decide) and a client running concurrent streams on
// one connection. The client's work is counted too.
func BenchmarkCachedHitH2(b *testing.B) {
	s, _ := benchEdge(b, `    default_behavior: {target: app, cache_policy: {default_ttl: 1h, key: {query_strings: none}}}`)
	ts := httptest.NewUnstartedServer(http.HandlerFunc(s.serveViewer))
	ts.EnableHTTP2 = true
	ts.StartTLS()
	b.Cleanup(ts.Close)
	tr := &http.Transport{
		ForceAttemptHTTP2: true,
		// The test server's certificate names 127.0.0.1, not the
		// distribution; the edge routes by SNI and Host.
		TLSClientConfig: &tls.Config{ServerName: "www.example.test", InsecureSkipVerify: true},
	}
	b.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	get := func() error {
		req, err := http.NewRequest(http.MethodGet, ts.URL+"/hit.txt", nil)
		if err != nil {
			return err
		}
		req.Host = "www.example.test"
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK || n != 1024 || resp.ProtoMajor != 2 {
			return fmt.Errorf("%s, %d, %d bytes, %v; want HTTP/2 200 with 1024 bytes", resp.Proto, resp.StatusCode, n, err)
		}
		return nil
	}
	for range 2 { // the miss that fills the cache, then a hit
		if err := get(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.SetParallelism(5) // 10 concurrent streams on 2 cores, as bench-edge's -m10
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := get(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
