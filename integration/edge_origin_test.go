package integration

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/edge"
	"github.com/edgegate/edgegate/internal/pki"
	"github.com/edgegate/edgegate/origin"
	"github.com/rs/zerolog"
)

// The whole path as DESIGN §1 draws it: viewer → edge (viewer TLS) → origin
// tier over HTTPS with mutual TLS (the edge's client certificate, verified
// against the edge CA) → two applications. A viewer that goes to the origin
// tier directly, without the edge's certificate, is refused.
func TestEdgeThroughOriginTierWithMutualTLS(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	edgeCA, err := pki.NewAuthority("edge CA")
	must(err)
	originCA, err := pki.NewAuthority("origin CA")
	must(err)
	edgeCAFile, originCAFile := filepath.Join(dir, "edge-ca.pem"), filepath.Join(dir, "origin-ca.pem")
	must(edgeCA.WriteFile(edgeCAFile))
	must(originCA.WriteFile(originCAFile))
	issue := func(ca *pki.Authority, name, file string, client bool) (string, string) {
		leaf, err := ca.Issue(pki.LeafOptions{Names: []string{name}, Client: client})
		must(err)
		c, k, err := leaf.WriteFiles(dir, file)
		must(err)
		return c, k
	}
	viewerCert, viewerKey := issue(edgeCA, "www.example.test", "viewer", false)
	edgeClientCert, edgeClientKey := issue(edgeCA, "edge.example.test", "edge-client", true)
	originCert, originKey := issue(originCA, "origin.example.test", "origin", false)

	var targets []string
	for _, ip := range []string{"127.0.0.2", "127.0.0.3"} {
		l, err := net.Listen("tcp", ip+":0")
		must(err)
		srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "app at %s; client cert %q", ip, r.Header.Get("X-Client-Cert-Subject"))
		})}
		go func() { _ = srv.Serve(l) }()
		t.Cleanup(func() { srv.Close() })
		targets = append(targets, fmt.Sprintf("%q", l.Addr().String()))
	}

	ocfg, err := origin.ParseConfig("origin test config", []byte(fmt.Sprintf(`origin:
  listeners:
    - protocol: HTTPS
      address: 127.0.0.4
      port: 0
      certificates: {files: [{cert: %q, key: %q}]}
      mutual_tls: {mode: verify, trust_store: %q}
      default_action: {forward: app}
  target_groups:
    - name: app
      protocol: HTTP
      targets: [%s]
      health_check: {protocol: HTTP, path: /, interval: 200ms, timeout: 100ms, healthy_threshold: 2, unhealthy_threshold: 2}
`, originCert, originKey, edgeCAFile, strings.Join(targets, ", "))))
	must(err)
	osrv, err := origin.New(ocfg, zerolog.Nop())
	must(err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- osrv.Run(ctx) }()
	select {
	case <-osrv.Ready():
	case err := <-ran:
		t.Fatalf("origin tier: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("origin tier not ready in 10s")
	}
	originAddr := osrv.Addrs()[0].String()

	ecfg, err := edge.ParseConfig("edge test config", []byte(fmt.Sprintf(`edge:
  location: INT1
  listen: {http: "127.0.0.1:0", https: "127.0.0.1:0"}
  certificates: {files: [{cert: %q, key: %q}]}
distributions:
  - aliases: [www.example.test]
    origins:
      - id: lb
        domain_name: origin.example.test
        connect_to: %q
        trusted_ca: %q
        client_certificate: {cert: %q, key: %q}
    default_behavior: {target: lb, cache_policy: disabled}
`, viewerCert, viewerKey, originAddr, originCAFile, edgeClientCert, edgeClientKey)))
	must(err)
	esrv, err := edge.New(ctx, ecfg, edge.Options{Logger: zerolog.Nop()})
	must(err)
	must(esrv.Start(ctx))
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = esrv.Shutdown(sctx)
	}()

	viewer := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: edgeCA.Pool()},
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", esrv.Addr("https"))
		},
	}}
	seen := map[string]bool{}
	for i := range 8 {
		resp, err := viewer.Get("https://www.example.test/page")
		must(err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "CN=edge.example.test") {
			t.Fatalf("request %d: %d %q (want 200 and the edge's certificate subject at the app)", i, resp.StatusCode, body)
		}
		seen[strings.SplitN(string(body), ";", 2)[0]] = true
	}
	if len(seen) != 2 {
		t.Errorf("requests reached %v, want both apps", seen)
	}

	// Straight to the origin tier without the edge's client certificate.
	direct := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: originCA.Pool(), ServerName: "origin.example.test"},
	}}
	if resp, err := direct.Get("https://" + originAddr + "/page"); err == nil {
		resp.Body.Close()
		t.Fatalf("a viewer without the edge's certificate reached the origin tier: %d", resp.StatusCode)
	}
}
