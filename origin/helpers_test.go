package origin

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgegate/edgegate/internal/pki"
	"github.com/edgegate/edgegate/origin/accesslog"
	"github.com/rs/zerolog"
)

// exampleConfig copies configs/NAME into a temporary directory with the
// replacements applied (old, new, old, new...; each old must occur) and
// returns the path. Relative paths in it then point into that directory.
func exampleConfig(t *testing.T, dir, name string, repl ...string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "configs", name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	for i := 0; i+1 < len(repl); i += 2 {
		if !strings.Contains(s, repl[i]) {
			t.Fatalf("%s: %q not found to replace", name, repl[i])
		}
		s = strings.ReplaceAll(s, repl[i], repl[i+1])
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// runServer loads path, starts the load balancer and stops it (checking
// that Run returns nil) at the end of the test.
func runServer(t *testing.T, path string) *Server {
	t.Helper()
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	select {
	case <-srv.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("server not ready after 10s")
	}
	if len(srv.Addrs()) != len(cfg.Origin.Listeners) {
		cancel()
		t.Fatalf("Run failed before binding: %v", <-done)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(40 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return srv
}

// waitFor polls cond every 10ms until it holds or limit passes.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) time.Time {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if cond() {
			return time.Now()
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", limit, what)
	return time.Time{}
}

// targetState returns a target's state from the server.
func targetState(srv *Server, group, addr string) string {
	for _, g := range srv.TargetHealth() {
		if g.Name != group {
			continue
		}
		for _, th := range g.Targets {
			if th.Address == addr {
				return th.State
			}
		}
	}
	return ""
}

func waitState(t *testing.T, srv *Server, group, addr, state string) time.Time {
	t.Helper()
	return waitFor(t, 10*time.Second, fmt.Sprintf("%s in %s to be %s", addr, group, state), func() bool {
		return targetState(srv, group, addr) == state
	})
}

// testPKI holds the certificates of the mutual TLS tests, written under
// dir/certs as configs/origin-edge.yaml names them.
type testPKI struct {
	originCA *pki.Authority // signs the origin tier's server certificate
	edgeCA   *pki.Authority // the trust store: signs edges' client certificates
	good     *pki.Leaf      // edge client certificate
	expired  *pki.Leaf      // edge CA, but past its NotAfter
	revoked  *pki.Leaf      // edge CA, but on the CRL
	stranger *pki.Leaf      // valid, from another CA
}

func newTestPKI(t *testing.T, dir string) *testPKI {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	p := &testPKI{}
	var err error
	p.originCA, err = pki.NewAuthority("origin test CA")
	must(err)
	p.edgeCA, err = pki.NewAuthority("edge client CA")
	must(err)
	other, err := pki.NewAuthority("someone else's CA")
	must(err)
	server, err := p.originCA.Issue(pki.LeafOptions{Names: []string{"alb.example.test", "127.0.0.1"}})
	must(err)
	p.good, err = p.edgeCA.Issue(pki.LeafOptions{Names: []string{"edge-1.example.test"}, Client: true})
	must(err)
	p.expired, err = p.edgeCA.Issue(pki.LeafOptions{Names: []string{"edge-old.example.test"}, Client: true,
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	must(err)
	p.revoked, err = p.edgeCA.Issue(pki.LeafOptions{Names: []string{"edge-stolen.example.test"}, Client: true})
	must(err)
	p.stranger, err = other.Issue(pki.LeafOptions{Names: []string{"viewer.example.test"}, Client: true})
	must(err)
	certs := filepath.Join(dir, "certs")
	must(os.MkdirAll(certs, 0o755))
	_, _, err = server.WriteFiles(certs, "origin")
	must(err)
	must(p.edgeCA.WriteFile(filepath.Join(certs, "edge-ca.pem")))
	crl, err := p.edgeCA.RevocationList(p.revoked.Cert)
	must(err)
	must(os.WriteFile(filepath.Join(certs, "edge-ca.crl"), crl, 0o644))
	return p
}

// clientTLS is a client configuration that trusts the origin CA and always
// presents leaf (even one the server's CA list would exclude, as curl
// does); nil presents none.
func (p *testPKI) clientTLS(leaf *pki.Leaf) *tls.Config {
	return &tls.Config{
		RootCAs:    p.originCA.Pool(),
		ServerName: "alb.example.test",
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if leaf == nil {
				return &tls.Certificate{}, nil
			}
			c := leaf.TLS()
			return &c, nil
		},
	}
}

// httpClient sends every request to addr with tlsCfg.
func httpClient(addr string, tlsCfg *tls.Config, keepAlive bool) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		},
		TLSClientConfig:   tlsCfg,
		ForceAttemptHTTP2: true,
		DisableKeepAlives: !keepAlive,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// appReply is what a testApp answers.
type appReply struct {
	App     string      `json:"app"`
	Host    string      `json:"host"`
	Remote  string      `json:"remote"`
	Headers http.Header `json:"headers"`
}

// testApp is an application server (a target) that can be stopped and
// started again on the same address.
type testApp struct {
	t        *testing.T
	name     string
	addr     string
	cert     *tls.Certificate // HTTPS when set
	sick     atomic.Bool      // /healthz answers 503
	hung     atomic.Bool      // every request (health checks too) waits without an answer until the client gives up
	requests atomic.Int64
	sleeping atomic.Int64 // requests in their ?sleep= now

	mu  sync.Mutex
	srv *http.Server
}

func startApp(t *testing.T, name, host string, cert *tls.Certificate) *testApp {
	t.Helper()
	a := &testApp{t: t, name: name, addr: net.JoinHostPort(host, "0"), cert: cert}
	a.start()
	t.Cleanup(a.stop)
	return a
}

func (a *testApp) start() {
	a.t.Helper()
	ln, err := net.Listen("tcp", a.addr)
	if err != nil {
		a.t.Fatalf("app %s: %v", a.name, err)
	}
	a.addr = ln.Addr().String()
	mux := http.NewServeMux()
	hang := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if a.hung.Load() {
				<-r.Context().Done() // accepted, never answered: a hung process
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if a.sick.Load() {
			http.Error(w, "sick", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		a.requests.Add(1)
		if d, err := time.ParseDuration(r.URL.Query().Get("sleep")); err == nil {
			a.sleeping.Add(1)
			defer a.sleeping.Add(-1)
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(appReply{App: a.name, Host: r.Host, Remote: r.RemoteAddr, Headers: r.Header})
	})
	srv := &http.Server{Handler: hang(mux), ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: log.New(io.Discard, "", 0)} // TCP health checks close without a handshake
	if a.cert != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*a.cert}}
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	a.mu.Lock()
	a.srv = srv
	a.mu.Unlock()
	go srv.Serve(ln)
}

// stop closes the listener and every connection at once, like a crash.
func (a *testApp) stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.srv != nil {
		a.srv.Close()
		a.srv = nil
	}
}

// startEcho starts a plain TCP target that answers each line with
// "NAME:line".
func startEcho(t *testing.T, name, host string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					if _, err := fmt.Fprintf(c, "%s:%s\n", name, sc.Text()); err != nil {
						return
					}
				}
			})
		}
	})
	return ln.Addr().String()
}

// get sends GET url and decodes the app's reply.
func get(c *http.Client, url string, hdr ...string) (*http.Response, appReply, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, appReply{}, err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, appReply{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp, appReply{}, err
	}
	var r appReply
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &r); err != nil {
			return resp, r, fmt.Errorf("reply %q: %w", body, err)
		}
	}
	return resp, r, nil
}

// readLog returns every access log record written under dir, waiting
// (bounded) until at least want records are there.
func readLog(t *testing.T, dir string, want int) []accesslog.Record {
	t.Helper()
	var recs []accesslog.Record
	waitFor(t, 5*time.Second, fmt.Sprintf("%d access log lines", want), func() bool {
		recs = nil
		files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
		for _, f := range files {
			fh, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			sc := accesslog.NewScanner(fh)
			for sc.Scan() {
				recs = append(recs, sc.Record())
			}
			fh.Close()
			if err := sc.Err(); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
		}
		return len(recs) >= want
	})
	return recs
}

// certPool returns a pool of the leaves' certificates.
func certPool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// tlsRefused connects to addr with cfg, sends a request and returns nil
// if the server refused the connection with a TLS alert (in TLS 1.3 the
// client's handshake completes before the server has checked its
// certificate, so the alert arrives on the first read).
func tlsRefused(addr string, cfg *tls.Config) error {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err == nil {
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err == nil {
			_, err = c.Read(make([]byte, 1))
		}
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" {
		return nil
	}
	return fmt.Errorf("got %v; want a TLS alert from the server", err)
}

// isRefused reports whether err looks like a TLS refusal by the server
// (an alert) or a connection it closed.
func isRefused(err error) bool {
	var op *net.OpError
	return err != nil && ((errors.As(err, &op) && op.Op == "remote error") || strings.Contains(err.Error(), "tls:") ||
		errors.Is(err, io.EOF) || strings.Contains(err.Error(), "connection reset"))
}
