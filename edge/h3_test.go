package edge

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/edge/accesslog"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// h3Client reaches the edge's UDP listener for any www/api.example.test
// URL over HTTP/3, trusting only the test CA.
func (re *runningEdge) h3Client() *http.Client {
	udp := re.quicAddr()
	tr := &http3.Transport{
		TLSClientConfig: &tls.Config{RootCAs: re.e.ca.Pool()},
		Dial: func(ctx context.Context, _ string, tlsCfg *tls.Config, cfg *quic.Config) (*quic.Conn, error) {
			return quic.DialAddr(ctx, udp, tlsCfg, cfg)
		},
	}
	re.e.t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// quicAddr is the HTTP/3 listener's UDP address, "" when off.
func (s *Server) quicAddr() string {
	s.lnMu.RLock()
	defer s.lnMu.RUnlock()
	if s.quic == nil {
		return ""
	}
	return s.quic.pc.LocalAddr().String()
}

func TestHTTP3(t *testing.T) {
	e := newTestEnv(t)
	originAddr, _ := e.httpsOrigin("127.0.0.2", hello("app"), "app.example.test")
	re := e.startEdge(e.edgeConfig("", fmt.Sprintf(`    origins:
      - {id: app, domain_name: app.example.test, connect_to: %q, trusted_ca: %q}
    default_behavior: {target: app, response_headers_policy: SecurityHeadersPolicy}`, originAddr, e.caFile)))
	_, httpsPort, _ := net.SplitHostPort(re.Addr("https"))
	if _, udpPort, _ := net.SplitHostPort(re.quicAddr()); udpPort != httpsPort {
		t.Fatalf("HTTP/3 on UDP port %q, HTTPS on %s: want the same port", udpPort, httpsPort)
	}

	// HTTP/2 and HTTP/1.1 responses advertise HTTP/3 on the same port.
	for _, h2 := range []bool{true, false} {
		resp, _ := get(t, re.client(h2), "https://www.example.test/warm")
		want := `h3=":` + httpsPort + `"; ma=86400`
		if got := resp.Header.Get("Alt-Svc"); got != want || (h2 && resp.ProtoMajor != 2) {
			t.Errorf("%s: Alt-Svc %q, want %q", resp.Proto, got, want)
		}
	}

	c := re.h3Client()
	var ids []string
	for i, want := range []string{"Miss from edgegate", "Hit from edgegate"} {
		resp, err := c.Get("https://www.example.test/page")
		if err != nil {
			t.Fatalf("HTTP/3 request %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 3 || resp.StatusCode != 200 || !strings.Contains(string(body), "hello from app") {
			t.Fatalf("request %d: %s %d %q", i, resp.Proto, resp.StatusCode, body)
		}
		if got := resp.Header.Get("X-Cache"); got != want {
			t.Errorf("request %d: X-Cache %q, want %q", i, got, want)
		}
		if resp.Header.Get("Alt-Svc") != "" {
			t.Errorf("an HTTP/3 response advertises Alt-Svc")
		}
		if resp.Header.Get("Strict-Transport-Security") == "" {
			t.Errorf("HTTP/3 is HTTPS: the policy's HSTS is missing")
		}
		ids = append(ids, resp.Header.Get("X-Edge-Request-Id"))
	}
	recs := re.records() // stops the edge: HTTP/3 drains too
	rec := byID(t, recs, ids[1])
	if rec.ProtocolVersion != "HTTP/3.0" || rec.ResultType != accesslog.ResultHit || rec.Protocol != "https" ||
		rec.SSLProtocol != "TLSv1.3" || rec.SSLCipher == "" || rec.ClientIP != "127.0.0.1" {
		t.Errorf("log line: version %q result %s protocol %s ssl %q/%q client %s", rec.ProtocolVersion, rec.ResultType,
			rec.Protocol, rec.SSLProtocol, rec.SSLCipher, rec.ClientIP)
	}
}

// http_version decides what a distribution offers: no HTTP/3 handshake,
// Alt-Svc or HTTP/2 where it says so.
func TestHTTPVersion(t *testing.T) {
	e := newTestEnv(t)
	originAddr, _ := e.httpsOrigin("127.0.0.2", hello("app"), "app.example.test")
	for _, tt := range []struct {
		version string
		h2, h3  bool
	}{
		{"http1.1", false, false},
		{"http2", true, false},
		{"http3", false, true},
		{"http2and3", true, true},
	} {
		t.Run(tt.version, func(t *testing.T) {
			re := e.startEdge(e.edgeConfig("", fmt.Sprintf(`    http_version: %s
    origins:
      - {id: app, domain_name: app.example.test, connect_to: %q, trusted_ca: %q}
    default_behavior: {target: app}`, tt.version, originAddr, e.caFile)))
			resp, _ := get(t, re.client(true), "https://www.example.test/")
			if (resp.ProtoMajor == 2) != tt.h2 {
				t.Errorf("TCP answered with %s", resp.Proto)
			}
			if (resp.Header.Get("Alt-Svc") != "") != tt.h3 || (re.quicAddr() != "") != tt.h3 {
				t.Errorf("Alt-Svc %q, HTTP/3 listener %q", resp.Header.Get("Alt-Svc"), re.quicAddr())
			}
			if tt.h3 {
				if _, err := re.h3Client().Get("https://www.example.test/"); err != nil {
					t.Errorf("HTTP/3: %v", err)
				}
			}
		})
	}
}

// BenchmarkCachedObject reports requests per second for a cached 1 KiB
// object over HTTP/2 and over HTTP/3, each client on one connection with
// GOMAXPROCS*4 concurrent streams:
//
//	go test ./edge/ -run - -bench CachedObject -benchtime 3s
func BenchmarkCachedObject(b *testing.B) {
	e := newTestEnv(b)
	object := strings.Repeat("x", 1024)
	originAddr, _ := e.httpsOrigin("127.0.0.2", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, object)
	}), "app.example.test")
	re := e.startEdge(e.edgeConfig("", fmt.Sprintf(`    origins:
      - {id: app, domain_name: app.example.test, connect_to: %q, trusted_ca: %q}
    default_behavior: {target: app}`, originAddr, e.caFile)))
	for _, proto := range []string{"HTTP/2.0", "HTTP/3.0"} {
		b.Run(strings.ReplaceAll(strings.TrimSuffix(proto, ".0"), "/", ""), func(b *testing.B) {
			c := re.client(true)
			if proto == "HTTP/3.0" {
				c = re.h3Client()
			}
			get := func() error {
				resp, err := c.Get("https://www.example.test/1k")
				if err != nil {
					return err
				}
				n, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err == nil && (n != 1024 || resp.Proto != proto) {
					err = fmt.Errorf("%s, %d bytes", resp.Proto, n)
				}
				return err
			}
			if err := get(); err != nil { // fill the cache, open the connection
				b.Fatal(err)
			}
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := get(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}

// 0-RTT: a resuming viewer's GET goes in early data only where the
// distribution allows it; elsewhere the listener refuses early data.
func TestHTTP3ZeroRTT(t *testing.T) {
	e := newTestEnv(t)
	originAddr, _ := e.httpsOrigin("127.0.0.2", hello("app"), "app.example.test")
	for _, allow := range []bool{true, false} {
		t.Run(fmt.Sprintf("allow_0rtt=%v", allow), func(t *testing.T) {
			re := e.startEdge(e.edgeConfig("", fmt.Sprintf(`    allow_0rtt: %v
    origins:
      - {id: app, domain_name: app.example.test, connect_to: %q, trusted_ca: %q}
    default_behavior: {target: app}`, allow, originAddr, e.caFile)))
			tlsCfg := &tls.Config{RootCAs: e.ca.Pool(), ClientSessionCache: tls.NewLRUClientSessionCache(4),
				ServerName: "www.example.test", NextProtos: []string{http3.NextProtoH3}}
			// A first HTTP/3 request gets a session ticket.
			tr := &http3.Transport{TLSClientConfig: tlsCfg, Dial: func(ctx context.Context, _ string, tc *tls.Config, qc *quic.Config) (*quic.Conn, error) {
				return quic.DialAddr(ctx, re.quicAddr(), tc, qc)
			}}
			resp, err := tr.RoundTrip(httptestRequest(t, "https://www.example.test/early"))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			tr.Close()
			// Then connections resume it, offering early data. (They send
			// none: quic-go's HTTP/3 client races in 0-RTT under -race.)
			// The ticket may come after the first response, so a few rounds
			// are allowed.
			used := false
			for round := 0; round < 4 && !used; round++ {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				conn, err := quic.DialAddrEarly(ctx, re.quicAddr(), tlsCfg, nil)
				if err != nil {
					cancel()
					t.Fatalf("round %d: %v", round, err)
				}
				select {
				case <-conn.HandshakeComplete():
				case <-ctx.Done():
					t.Fatalf("round %d: handshake: %v", round, ctx.Err())
				}
				cancel()
				used = conn.ConnectionState().Used0RTT
				conn.CloseWithError(0, "")
			}
			if used != allow {
				t.Errorf("0-RTT used: %v, want %v", used, allow)
			}
		})
	}
}

// A QUIC handshake for a distribution that does not offer HTTP/3 fails,
// while another distribution's succeeds on the same listener.
func TestHTTP3OnlyWhereOffered(t *testing.T) {
	e := newTestEnv(t)
	originAddr, _ := e.httpsOrigin("127.0.0.2", hello("app"), "app.example.test")
	cfg := strings.Replace(e.edgeConfig("", fmt.Sprintf(`    origins:
      - {id: app, domain_name: app.example.test, connect_to: %q, trusted_ca: %q}
    default_behavior: {target: app}
  - aliases: [api.example.test]
    http_version: http2
    origins:
      - {id: app, domain_name: app.example.test, connect_to: %q, trusted_ca: %q}
    default_behavior: {target: app}`, originAddr, e.caFile, originAddr, e.caFile)), "aliases: [www.example.test, api.example.test]", "aliases: [www.example.test]", 1)
	re := e.startEdge(cfg)
	c := re.h3Client()
	if _, err := c.Get("https://www.example.test/"); err != nil {
		t.Fatalf("HTTP/3 to the http2and3 distribution: %v", err)
	}
	if resp, err := c.Get("https://api.example.test/"); err == nil {
		resp.Body.Close()
		t.Fatalf("HTTP/3 to the http2 distribution answered %s %d", resp.Proto, resp.StatusCode)
	}
	resp, _ := get(t, re.client(true), "https://api.example.test/")
	if resp.ProtoMajor != 2 || resp.Header.Get("Alt-Svc") != "" {
		t.Errorf("http2 distribution: %s, Alt-Svc %q", resp.Proto, resp.Header.Get("Alt-Svc"))
	}
}

// A reload that turns HTTP/3 off drains it: a request in flight finishes,
// and the listener is gone.
func TestHTTP3DrainOnReload(t *testing.T) {
	e := newTestEnv(t)
	arrived, release := make(chan struct{}), make(chan struct{})
	originAddr, _ := e.httpsOrigin("127.0.0.2", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(arrived)
			<-release
		}
		io.WriteString(w, "done")
	}), "app.example.test")
	dist := func(version string) string {
		return e.edgeConfig("", fmt.Sprintf(`    http_version: %s
    origins:
      - {id: app, domain_name: app.example.test, connect_to: %q, trusted_ca: %q}
    default_behavior: {target: app, cache_policy: disabled}`, version, originAddr, e.caFile))
	}
	re := e.startEdge(dist("http2and3"))
	c := re.h3Client()
	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := c.Get("https://www.example.test/slow")
		if err != nil {
			done <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{resp.StatusCode, string(b), err}
	}()
	select {
	case <-arrived:
	case r := <-done:
		t.Fatalf("request ended before reaching the origin: %+v", r)
	}
	cfg, err := ParseConfig("reloaded", []byte(dist("http2")))
	if err != nil {
		t.Fatal(err)
	}
	if err := re.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if a := re.quicAddr(); a != "" {
		t.Errorf("HTTP/3 still listening on %s after a reload to http2", a)
	}
	close(release)
	if r := <-done; r.err != nil || r.status != 200 || r.body != "done" {
		t.Errorf("in-flight HTTP/3 request across the reload: %+v", r)
	}
}

func TestUDPBufferAdvice(t *testing.T) {
	e := newTestEnv(t)
	re := e.startEdge(e.edgeConfig("", `    origins: [{id: app, domain_name: app.example.test}]
    default_behavior: {target: app}`))
	for _, tt := range []struct {
		value  string
		advice bool
	}{{"212992\n", true}, {"8388608\n", false}} {
		before := len(re.oplog.String())
		f := e.dir + "/rmem_max"
		if err := os.WriteFile(f, []byte(tt.value), 0o644); err != nil {
			t.Fatal(err)
		}
		re.adviseUDPBuffer(f)
		logged := re.oplog.String()[before:]
		if got := strings.Contains(logged, "sysctl -w net.core.rmem_max="); got != tt.advice {
			t.Errorf("rmem_max %s: advice logged %v, want %v:\n%s", strings.TrimSpace(tt.value), got, tt.advice, logged)
		}
	}
}

func httptestRequest(t *testing.T, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
