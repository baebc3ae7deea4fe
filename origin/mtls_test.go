package origin

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/internal/pki"
	"github.com/edgegate/edgegate/origin/accesslog"
)

// edgeEnv is configs/origin-edge.yaml running on loopback: two HTTP apps
// and two TCP echo targets on 127.0.0.2 and 127.0.0.3, the load balancer
// on 127.0.0.1.
type edgeEnv struct {
	dir         string
	pki         *testPKI
	a, b        *testApp
	echoA       string
	echoB       string
	srv         *Server
	http        string // listener addresses
	https       string
	tls         string
	admin       string
	httpsListen string // HTTPS:PORT
}

func startEdgeEnv(t *testing.T, repl ...string) *edgeEnv {
	t.Helper()
	e, path := newEdgeEnv(t, repl...)
	e.started(t, runServer(t, path))
	return e
}

// newEdgeEnv starts the targets and writes the config.
func newEdgeEnv(t *testing.T, repl ...string) (*edgeEnv, string) {
	t.Helper()
	e := &edgeEnv{dir: t.TempDir()}
	e.pki = newTestPKI(t, e.dir)
	e.a = startApp(t, "a", "127.0.0.2", nil)
	e.b = startApp(t, "b", "127.0.0.3", nil)
	e.echoA = startEcho(t, "A", "127.0.0.2")
	e.echoB = startEcho(t, "B", "127.0.0.3")
	repl = append([]string{
		"port: 80\n", "port: 0\n      address: 127.0.0.1\n",
		"port: 443\n", "port: 0\n      address: 127.0.0.1\n",
		"port: 8443\n", "port: 0\n      address: 127.0.0.1\n",
		`"127.0.0.2:8080", "127.0.0.3:8080"`, fmt.Sprintf("%q, %q", e.a.addr, e.b.addr),
		`"127.0.0.2:7000", "127.0.0.3:7000"`, fmt.Sprintf("%q, %q", e.echoA, e.echoB),
		`"127.0.0.1:9902"`, `"127.0.0.1:0"`,
	}, repl...)
	return e, exampleConfig(t, e.dir, "origin-edge.yaml", repl...)
}

// started notes the running server's addresses and waits for every
// target to be healthy.
func (e *edgeEnv) started(t *testing.T, srv *Server) {
	t.Helper()
	e.srv = srv
	addrs := e.srv.Addrs()
	e.http, e.https, e.tls = addrs[0].String(), addrs[1].String(), addrs[2].String()
	e.admin = e.srv.AdminAddr().String()
	e.httpsListen = "HTTPS:" + strconv.Itoa(addrs[1].(*net.TCPAddr).Port)
	waitState(t, e.srv, "app", e.a.addr, StateHealthy)
	waitState(t, e.srv, "app", e.b.addr, StateHealthy)
	waitState(t, e.srv, "stream", e.echoA, StateHealthy)
	waitState(t, e.srv, "stream", e.echoB, StateHealthy)
}

func TestHTTPSMutualTLS(t *testing.T) {
	e := startEdgeEnv(t)
	const url = "https://alb.example.test/some/path?q=1"

	refused := []struct {
		name   string
		leaf   *pki.Leaf
		reason string
	}{
		{"no certificate", nil, accesslog.ReasonClientCertificateMissing},
		{"another CA", e.pki.stranger, accesslog.ReasonClientCertificateUntrusted},
		{"expired", e.pki.expired, accesslog.ReasonClientCertificateExpired},
		{"revoked", e.pki.revoked, accesslog.ReasonClientCertificateRevoked},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			resp, _, err := get(httpClient(e.https, e.pki.clientTLS(tt.leaf), false), url)
			if err == nil {
				t.Fatalf("request succeeded with status %d; want the handshake refused", resp.StatusCode)
			}
			if err := tlsRefused(e.https, e.pki.clientTLS(tt.leaf)); err != nil {
				t.Fatal(err)
			}
		})
	}

	good := httpClient(e.https, e.pki.clientTLS(e.pki.good), true)
	seen := map[string]int{}
	for i := range 4 {
		resp, r, err := get(good, url,
			HeaderClientCertSubject, "CN=forged", "X_Client_Cert_Issuer", "CN=forged",
			"x-client-cert-extra", "forged", "X-Forwarded-For", "192.0.2.7")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if resp.StatusCode != http.StatusOK || resp.Proto != "HTTP/2.0" {
			t.Fatalf("request %d: %s %s; want 200 over HTTP/2", i, resp.Proto, resp.Status)
		}
		seen[r.App]++
		c := e.pki.good.Cert
		want := map[string]string{
			HeaderClientCertSubject:  c.Subject.String(),
			HeaderClientCertIssuer:   c.Issuer.String(),
			HeaderClientCertSerial:   fmt.Sprintf("%X", c.SerialNumber),
			HeaderClientCertValidity: "NotBefore=" + c.NotBefore.UTC().Format(time.RFC3339) + ";NotAfter=" + c.NotAfter.UTC().Format(time.RFC3339),
			"X-Forwarded-For":        "192.0.2.7, 127.0.0.1",
			"X-Forwarded-Proto":      "https",
			"X-Forwarded-Port":       strings.TrimPrefix(e.httpsListen, "HTTPS:"),
		}
		for k, v := range want {
			if got := r.Headers.Values(k); len(got) != 1 || got[0] != v {
				t.Errorf("request %d: target saw %s = %q, want %q", i, k, got, v)
			}
		}
		if !strings.Contains(r.Headers.Get(HeaderClientCertLeaf), "BEGIN%20CERTIFICATE") {
			t.Errorf("%s = %q", HeaderClientCertLeaf, r.Headers.Get(HeaderClientCertLeaf))
		}
		for k := range r.Headers {
			n := strings.ToLower(strings.ReplaceAll(k, "_", "-"))
			if strings.HasPrefix(n, "x-client-cert-") && !slices.Contains([]string{HeaderClientCertSubject, HeaderClientCertIssuer,
				HeaderClientCertSerial, HeaderClientCertValidity, HeaderClientCertLeaf}, k) {
				t.Errorf("forged header %s reached the target", k)
			}
		}
		if r.Host != "alb.example.test" {
			t.Errorf("target saw Host %q", r.Host)
		}
	}
	if seen["a"] != 2 || seen["b"] != 2 {
		t.Errorf("round robin spread 4 requests as %v; want 2 on each target", seen)
	}

	recs := readLog(t, filepath.Join(e.dir, "logs"), 2*len(refused)+4)
	var reasons []string
	ok := 0
	for _, r := range recs {
		if r.Listener != e.httpsListen {
			continue
		}
		switch {
		case r.ErrorReason != "":
			reasons = append(reasons, r.ErrorReason)
			if r.Type != accesslog.TypeHTTPS || r.ELBStatus != 0 || r.Target != "" {
				t.Errorf("refused handshake logged as %s", r.String())
			}
		case r.ELBStatus == 200:
			ok++
			if r.Type != accesslog.TypeH2 || r.TargetStatus != 200 || r.TargetGroup != "app" || r.SSLProtocol != "TLSv1.3" ||
				r.ClientCertSubject != e.pki.good.Cert.Subject.String() || r.DomainName != "alb.example.test" ||
				!strings.HasPrefix(r.Request, "GET https://alb.example.test:") || !strings.HasSuffix(r.Request, "/some/path?q=1 HTTP/2.0") ||
				(r.Target != e.a.addr && r.Target != e.b.addr) || r.RequestProcessing < 0 || r.TargetProcessing < 0 || r.SentBytes == 0 {
				t.Errorf("request logged as %s", r.String())
			}
		}
	}
	slices.Sort(reasons)
	wantReasons := []string{}
	for _, tt := range refused {
		wantReasons = append(wantReasons, tt.reason, tt.reason) // the HTTP client's and the raw connection's
	}
	slices.Sort(wantReasons)
	if !slices.Equal(reasons, wantReasons) || ok != 4 {
		t.Errorf("access log: refusals %v, %d ok requests; want %v and 4", reasons, ok, wantReasons)
	}

	metrics := adminGet(t, e.admin, "/metrics")
	for _, want := range []string{
		fmt.Sprintf(`edgegate_origin_client_tls_errors_total{listener=%q,reason="ClientCertificateRevoked"} 2`, e.httpsListen),
		fmt.Sprintf(`edgegate_origin_requests_total{listener=%q,code="200"} 4`, e.httpsListen),
		fmt.Sprintf(`edgegate_origin_target_healthy{target_group="app",target=%q} 1`, e.a.addr),
		`edgegate_origin_healthy_targets{target_group="app"} 2`,
		"# TYPE edgegate_origin_target_requests_total counter",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func adminGet(t *testing.T, addr, path string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
	}
	return string(b)
}

func TestTLSOffloadMutualTLS(t *testing.T) {
	e := startEdgeEnv(t)
	dial := func(leaf *pki.Leaf) (*tls.Conn, error) {
		cfg := e.pki.clientTLS(leaf)
		cfg.RootCAs, cfg.InsecureSkipVerify = nil, true // the listener's certificate is self-signed
		cfg.ServerName = "stream.example.test"
		d := &net.Dialer{Timeout: 5 * time.Second}
		return tls.DialWithDialer(d, "tcp", e.tls, cfg)
	}
	talk := func(c *tls.Conn, line string) (string, error) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := fmt.Fprintf(c, "%s\n", line); err != nil {
			return "", err
		}
		return bufio.NewReader(c).ReadString('\n')
	}

	var got []string
	for i := range 4 {
		c, err := dial(e.pki.good)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		if name := c.ConnectionState().PeerCertificates[0].Subject.CommonName; name != "stream.example.test" {
			t.Errorf("listener certificate for %q", name)
		}
		reply, err := talk(c, "hello")
		c.Close()
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		got = append(got, strings.TrimSpace(reply))
	}
	for i := 1; i < len(got); i++ {
		if got[i] == got[i-1] || (got[i] != "A:hello" && got[i] != "B:hello") {
			t.Fatalf("replies %v; want A:hello and B:hello alternating per connection", got)
		}
	}

	for _, leaf := range []*pki.Leaf{nil, e.pki.stranger, e.pki.revoked} {
		c, err := dial(leaf)
		if err == nil {
			_, err = talk(c, "let me in")
			c.Close()
		}
		if !isRefused(err) {
			t.Errorf("bad client: %v; want the handshake refused", err)
		}
	}

	listener := "TLS:" + strconv.Itoa(e.srv.Addrs()[2].(*net.TCPAddr).Port)
	recs := readLog(t, filepath.Join(e.dir, "logs"), 7)
	served, refusedN := 0, 0
	for _, r := range recs {
		if r.Listener != listener {
			continue
		}
		if r.Type != accesslog.TypeTLS {
			t.Errorf("type %s on a TLS listener", r.Type)
		}
		if r.ErrorReason != "" {
			refusedN++
			continue
		}
		served++
		if r.ReceivedBytes != 6 || r.SentBytes != 8 || r.TargetGroup != "stream" || r.ClientCertSubject == "" ||
			(r.Target != e.echoA && r.Target != e.echoB) || r.DomainName != "stream.example.test" || r.ELBStatus != 0 {
			t.Errorf("connection logged as %s", r.String())
		}
	}
	if served != 4 || refusedN != 3 {
		t.Errorf("logged %d served and %d refused connections; want 4 and 3", served, refusedN)
	}
}

func TestHTTPRedirect(t *testing.T) {
	e := startEdgeEnv(t)
	c := httpClient(e.http, nil, false)
	tests := []struct {
		method, host, path, want string
	}{
		{http.MethodGet, "alb.example.test", "/a/b?c=d&e", "https://alb.example.test/a/b?c=d&e"},
		{http.MethodHead, "alb.example.test:80", "/", "https://alb.example.test/"},
		{http.MethodPost, "[2001:db8::1]:80", "/form", "https://[2001:db8::1]/form"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.host, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, "http://"+tt.host+tt.path, nil)
			req.Host = tt.host
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != tt.want {
				t.Fatalf("%d Location %q; want 301 %q", resp.StatusCode, resp.Header.Get("Location"), tt.want)
			}
		})
	}
	recs := readLog(t, filepath.Join(e.dir, "logs"), len(tests))
	for _, r := range recs {
		if r.Type != accesslog.TypeHTTP || r.ELBStatus != 301 || r.Actions != "redirect" || !strings.HasPrefix(r.RedirectURL, "https://") ||
			r.TargetStatus != 0 || r.Target != "" || r.TargetProcessing != accesslog.NotReached {
			t.Errorf("redirect logged as %s", r.String())
		}
	}
	if e.a.requests.Load()+e.b.requests.Load() != 0 {
		t.Error("a redirected request reached a target")
	}
}
