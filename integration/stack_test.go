package integration

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgegate/edgegate/edge"
	"github.com/edgegate/edgegate/edge/accesslog"
	"github.com/edgegate/edgegate/internal/pki"
	"github.com/edgegate/edgegate/internal/syncbuf"
	"github.com/edgegate/edgegate/origin"
	"github.com/rs/zerolog"
)

// adversaryStack is an edge (in process, with its standard log) in front
// of an origin tier (HTTPS, in process) in front of a recording app: the
// topology an attacker faces, all on loopback.
type adversaryStack struct {
	t      *testing.T
	dir    string
	ca     *pki.Authority
	edge   *edge.Server
	oplog  *syncbuf.Buffer
	logDir string
	app    *recordingApp
	once   sync.Once
}

// appRequest is what the app saw of one request.
type appRequest struct {
	Method, URI, Host string
	Header            http.Header
	Body              string
	BodyErr           error
}

// recordingApp records every request except the origin tier's health
// checks, and answers with what it saw. Paths under /poison/ behave like
// an application that trusts the usual override headers (as Symfony,
// Rails and Rack-based apps do) and marks its answer cacheable by a
// shared cache: the attack surface of unkeyed-header poisoning.
type recordingApp struct {
	mu   sync.Mutex
	reqs []appRequest
}

func (a *recordingApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	a.mu.Lock()
	a.reqs = append(a.reqs, appRequest{Method: r.Method, URI: r.RequestURI, Host: r.Host, Header: r.Header.Clone(), Body: string(body), BodyErr: err})
	a.mu.Unlock()
	if strings.HasPrefix(r.URL.Path, "/poison") {
		poisonable(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	if r.URL.Query().Has("cache") {
		w.Header().Set("Cache-Control", "public, max-age=300")
	}
	fmt.Fprintf(w, "app: %s %s host=%s behavior=%s body=%d", r.Method, r.RequestURI, r.Host, r.Header.Get("X-Behavior"), len(body))
}

// poisonable answers as a naive application would: the override headers
// change the page, its links or its redirect, and the answer is cacheable
// without a Vary on any of them.
func poisonable(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	scheme := "https"
	if s := r.Header.Get("X-Forwarded-Scheme"); s != "" {
		scheme = s
	}
	if scheme == "http" { // Rack-style: "upgrade" to https, to the same path
		w.Header().Set("Location", "https://"+r.Host+r.URL.Path)
		w.WriteHeader(http.StatusMovedPermanently)
		return
	}
	host := "www.example.test"
	for _, h := range []string{"X-Forwarded-Host", "X-Host", "X-Forwarded-Server", "X-Original-Host"} {
		if v := r.Header.Get(h); v != "" {
			host = v
		}
	}
	if p := r.Header.Get("X-Forwarded-Port"); p != "" {
		host += ":" + p
	}
	page := r.URL.Path
	for _, h := range []string{"X-Original-URL", "X-Rewrite-URL"} {
		if v := r.Header.Get(h); v != "" {
			page = v
		}
	}
	method := r.Method
	if m := r.Header.Get("X-HTTP-Method-Override"); m != "" {
		method = m
	}
	if method == http.MethodDelete {
		w.WriteHeader(http.StatusMethodNotAllowed)
		fmt.Fprint(w, "deleted")
		return
	}
	if r.Header.Get("X-Forwarded-Prefix") != "" {
		page = r.Header.Get("X-Forwarded-Prefix") + page
	}
	fmt.Fprintf(w, `<script src="%s://%s/static/app.js"></script> page=%s`, scheme, host, page)
}

// requests returns what the app saw whose URI contains marker.
func (a *recordingApp) requests(marker string) []appRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []appRequest
	for _, r := range a.reqs {
		if strings.Contains(r.URI, marker) {
			out = append(out, r)
		}
	}
	return out
}

func (a *recordingApp) all() []appRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]appRequest(nil), a.reqs...)
}

// startAdversaryStack starts the app on 127.0.0.2, the origin tier on
// 127.0.0.3 and the edge on 127.0.0.1. The edge serves www.example.test
// (cached by default, /api/* uncached, /admin/* through an origin that
// marks its requests X-Behavior: admin, /poison-all/* cached with the
// AllViewer origin request policy) and other.example.test (another
// distribution on the same origin tier).
func startAdversaryStack(t *testing.T) *adversaryStack {
	t.Helper()
	s := &adversaryStack{t: t, dir: t.TempDir(), app: &recordingApp{}, oplog: &syncbuf.Buffer{}}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	var err error
	s.ca, err = pki.NewAuthority("adversary test CA")
	must(err)
	caFile := filepath.Join(s.dir, "ca.pem")
	must(s.ca.WriteFile(caFile))
	issue := func(file string, names ...string) (string, string) {
		leaf, err := s.ca.Issue(pki.LeafOptions{Names: names})
		must(err)
		c, k, err := leaf.WriteFiles(s.dir, file)
		must(err)
		return c, k
	}
	viewerCert, viewerKey := issue("viewer", "www.example.test", "other.example.test", "localhost")
	originCert, originKey := issue("origin", "origin.example.test")

	appLn, err := net.Listen("tcp", "127.0.0.2:0")
	must(err)
	appSrv := &http.Server{Handler: s.app, ReadHeaderTimeout: 10 * time.Second, ErrorLog: nil}
	go func() { _ = appSrv.Serve(appLn) }()
	t.Cleanup(func() { appSrv.Close() })

	ocfg, err := origin.ParseConfig("origin tier", []byte(fmt.Sprintf(`origin:
  listeners:
    - {protocol: HTTPS, address: 127.0.0.3, port: 0, certificates: {files: [{cert: %q, key: %q}]}, default_action: {forward: app}}
  target_groups:
    - name: app
      protocol: HTTP
      targets: [%q]
      health_check: {protocol: HTTP, path: /healthz, interval: 1s, timeout: 500ms, healthy_threshold: 2, unhealthy_threshold: 2}
`, originCert, originKey, appLn.Addr().String())))
	must(err)
	osrv, err := origin.New(ocfg, zerolog.Nop())
	must(err)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- osrv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-ran:
		case <-time.After(30 * time.Second):
			t.Error("origin tier did not stop in 30s")
		}
	})
	select {
	case <-osrv.Ready():
	case err := <-ran:
		t.Fatalf("origin tier: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("origin tier not ready in 10s")
	}
	originAddr := osrv.Addrs()[0].String()

	s.logDir = filepath.Join(s.dir, "logs")
	const methods = "[GET, HEAD, OPTIONS, PUT, POST, PATCH, DELETE]"
	origins := fmt.Sprintf(`    origins:
      - {id: lb, domain_name: origin.example.test, connect_to: %q, trusted_ca: %q, custom_headers: {X-Behavior: default}}
      - {id: lb-admin, domain_name: origin.example.test, connect_to: %q, trusted_ca: %q, custom_headers: {X-Behavior: admin}}
`, originAddr, caFile, originAddr, caFile)
	ecfg, err := edge.ParseConfig("adversary edge", []byte(fmt.Sprintf(`edge:
  location: ADV1
  listen: {http: "127.0.0.1:0", https: "127.0.0.1:0"}
  certificates: {files: [{cert: %q, key: %q}]}
  logs: {dir: %q}
distributions:
  - aliases: [www.example.test, localhost]
%s    default_behavior: {target: lb, allowed_methods: %s, cache_policy: {default_ttl: 0s, max_ttl: 1h, min_ttl: 0s}}
    behaviors:
      - {path_pattern: "/api/*", target: lb, cache_policy: disabled, allowed_methods: %s}
      - {path_pattern: "/admin/*", target: lb-admin, cache_policy: disabled, allowed_methods: [GET, HEAD]}
      - {path_pattern: "/poison-all/*", target: lb, origin_request_policy: AllViewer, cache_policy: {default_ttl: 0s, max_ttl: 1h, min_ttl: 0s}}
  - aliases: [other.example.test]
%s    default_behavior: {target: lb, cache_policy: disabled, allowed_methods: %s}
`, viewerCert, viewerKey, s.logDir, origins, methods, methods, origins, methods)))
	must(err)
	s.edge, err = edge.New(context.Background(), ecfg, edge.Options{Logger: zerolog.New(s.oplog)})
	must(err)
	must(s.edge.Start(context.Background()))
	t.Cleanup(s.stop)
	return s
}

// stop shuts the edge down (once) so that its standard log is complete.
func (s *adversaryStack) stop() {
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := s.edge.Shutdown(ctx); err != nil {
			s.t.Errorf("edge shutdown: %v", err)
		}
	})
}

// records stops the edge and reads back its standard log.
func (s *adversaryStack) records() []accesslog.Record {
	s.t.Helper()
	s.stop()
	files, err := filepath.Glob(filepath.Join(s.logDir, "*"))
	if err != nil {
		s.t.Fatal(err)
	}
	var out []accesslog.Record
	for _, f := range files {
		rc, err := accesslog.Open(f)
		if err != nil {
			s.t.Fatal(err)
		}
		r := accesslog.NewReader(rc, f)
		for {
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				s.t.Fatalf("standard log %s: %v", f, err)
			}
			out = append(out, *rec)
		}
		rc.Close()
	}
	return out
}

// dialTLS opens a viewer connection to the edge's HTTPS port with the
// given SNI and ALPN protocol.
func (s *adversaryStack) dialTLS(sni, alpn string) *tls.Conn {
	s.t.Helper()
	c, err := tls.Dial("tcp", s.edge.Addr("https"), &tls.Config{ServerName: sni, RootCAs: s.ca.Pool(), NextProtos: []string{alpn}})
	if err != nil {
		s.t.Fatalf("dial edge: %v", err)
	}
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	return c
}

// rawExchange sends raw bytes on a fresh HTTP/1.1 TLS connection and reads
// every response the edge sends until it closes the connection or stays
// silent for quiet. closed tells whether the edge closed it.
func (s *adversaryStack) rawExchange(raw string, quiet time.Duration) (resps []*http.Response, bodies []string, closed bool) {
	s.t.Helper()
	c := s.dialTLS("www.example.test", "http/1.1")
	defer c.Close()
	go func() { _, _ = io.WriteString(c, raw) }()
	br := bufio.NewReader(c)
	for {
		_ = c.SetReadDeadline(time.Now().Add(quiet))
		if _, err := br.Peek(1); err != nil {
			var ne net.Error
			return resps, bodies, !(errors.As(err, &ne) && ne.Timeout())
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			s.t.Fatalf("unreadable response after %d: %v", len(resps), err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resps, bodies = append(resps, resp), append(bodies, string(b))
	}
}

// viewer is a well-behaved HTTPS client of the edge for the given host.
func (s *adversaryStack) viewer(h2 bool) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, s.edge.Addr("https"))
		},
		TLSClientConfig:   &tls.Config{RootCAs: s.ca.Pool()},
		ForceAttemptHTTP2: h2,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	s.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// logLine finds the single standard log line whose URI stem is stem.
func logLine(t *testing.T, recs []accesslog.Record, stem string) (accesslog.Record, bool) {
	t.Helper()
	var found []accesslog.Record
	for _, r := range recs {
		if r.URIStem == stem {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		return accesslog.Record{}, false
	}
	return found[0], true
}
