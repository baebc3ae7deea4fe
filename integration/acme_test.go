package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/edgegate/edgegate/internal/pki"
	"github.com/edgegate/edgegate/internal/syncbuf"
	"github.com/edgegate/edgegate/internal/testdns"
	"github.com/edgegate/edgegate/internal/testpebble"
	"github.com/edgegate/edgegate/internal/testredis"
)

const site = "www.example.test"

// acmeRig is Pebble, DNS and an HTTPS origin for edges started as
// processes: every edge listens on its own loopback address on the same
// two ports, which is where Pebble validates.
type acmeRig struct {
	t                    *testing.T
	dir                  string
	dns                  *testdns.Server
	pebble               *testpebble.Pebble
	httpPort, tlsPort    int
	originAddr, originCA string
	roots                *x509.CertPool
}

func newACMERig(t *testing.T, siteIP string, edgeIPs ...string) *acmeRig {
	t.Helper()
	r := &acmeRig{t: t, dir: t.TempDir()}
	var err error
	if r.httpPort, err = testpebble.FreePort(edgeIPs...); err != nil {
		t.Fatal(err)
	}
	if r.tlsPort, err = testpebble.FreePort(edgeIPs...); err != nil {
		t.Fatal(err)
	}
	r.dns = testdns.Start(t, map[string]string{site: siteIP})
	r.pebble = testpebble.Start(t, testpebble.Config{DNS: r.dns.Addr(), HTTPPort: r.httpPort, TLSPort: r.tlsPort})
	pem, err := os.ReadFile(r.pebble.IssuerRoots)
	if err != nil {
		t.Fatal(err)
	}
	r.roots = x509.NewCertPool()
	if !r.roots.AppendCertsFromPEM(pem) {
		t.Fatal("no root from Pebble's /roots/0")
	}

	ca, err := pki.NewAuthority("integration origin CA")
	if err != nil {
		t.Fatal(err)
	}
	r.originCA = filepath.Join(r.dir, "origin-ca.pem")
	if err := ca.WriteFile(r.originCA); err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(pki.LeafOptions{Names: []string{"origin.example.test"}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			fmt.Fprintf(w, "hello from the origin: %s", req.URL.Path)
		}),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}},
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { srv.Close() })
	r.originAddr = ln.Addr().String()
	return r
}

// edgeConfig is an edge on ip with ACME certificates from the rig's Pebble.
func (r *acmeRig) edgeConfig(ip, storage string) string {
	return fmt.Sprintf(`edge:
  location: TST1
  listen: {http: %q, https: %q}
  resolver: %q
  certificates:
    acme:
      directory: %q
      email: ops@example.test
      trusted_roots: %q
      challenges: [http-01, tls-alpn-01]
      http_port: %d
      tls_port: %d
    storage: %q
  logs: {dir: %q}
distributions:
  - aliases: [%s]
    origins: [{id: o, domain_name: origin.example.test, connect_to: %q, trusted_ca: %q}]
    default_behavior: {target: o, cache_policy: disabled}
`, net.JoinHostPort(ip, strconv.Itoa(r.httpPort)), net.JoinHostPort(ip, strconv.Itoa(r.tlsPort)), r.dns.Addr(),
		r.pebble.Directory, r.pebble.APIRoots, r.httpPort, r.tlsPort, storage, filepath.Join(r.dir, "logs-"+ip), site,
		r.originAddr, r.originCA)
}

// edgeProc is an edgegate edge process.
type edgeProc struct {
	ip     string
	cmd    *execCmd
	stderr *syncbuf.Buffer
}

func (r *acmeRig) startEdge(ip, storage string) *edgeProc {
	r.t.Helper()
	cfg := filepath.Join(r.dir, "edge-"+ip+".yaml")
	if err := os.WriteFile(cfg, []byte(r.edgeConfig(ip, storage)), 0o644); err != nil {
		r.t.Fatal(err)
	}
	p := &edgeProc{ip: ip, stderr: &syncbuf.Buffer{}}
	p.cmd = startBinary(r.t, p.stderr, "edge", "-config", cfg)
	r.t.Cleanup(func() {
		p.stop(r.t)
		if r.t.Failed() {
			r.t.Logf("edge %s log:\n%s", ip, p.stderr.String())
		}
	})
	return p
}

// stop ends the edge with SIGTERM, as an operator's restart does.
func (p *edgeProc) stop(t *testing.T) {
	t.Helper()
	p.cmd.stop(syscall.SIGTERM, 30*time.Second)
}

// certificate waits until the edge serves a certificate for the site that
// chains to Pebble's root, and returns it.
func (r *acmeRig) certificate(p *edgeProc) *x509.Certificate {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	return waitCertificate(ctx, r.t, site, net.JoinHostPort(p.ip, strconv.Itoa(r.tlsPort)), r.roots, p.cmd, p.stderr)
}

// viewerGet fetches the site through the edge on ip, trusting only Pebble.
func (r *acmeRig) viewerGet(ip string) error {
	resp, err := viewerClient(r.roots, ip).Get("https://" + net.JoinHostPort(site, strconv.Itoa(r.tlsPort)) + "/hello")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// Two edges sharing one Redis, started together for the same name: one
// order at the CA, the same certificate on both, and a restart of either
// orders nothing.
func TestClusterOrdersOnce(t *testing.T) {
	redis := testredis.Start(t)
	r := newACMERig(t, "127.0.0.2", "127.0.0.2", "127.0.0.3")
	a := r.startEdge("127.0.0.2", redis.URL())
	b := r.startEdge("127.0.0.3", redis.URL())
	ca, cb := r.certificate(a), r.certificate(b)
	if !ca.Equal(cb) {
		t.Fatalf("the edges serve different certificates: serial %x and %x", ca.SerialNumber, cb.SerialNumber)
	}
	for _, ip := range []string{"127.0.0.2", "127.0.0.3"} {
		if err := r.viewerGet(ip); err != nil {
			t.Fatalf("viewer through %s: %v", ip, err)
		}
	}
	if n := r.pebble.Orders(); n != 1 {
		t.Fatalf("Pebble saw %d orders from the cluster, want 1", n)
	}

	b.stop(t)
	b = r.startEdge("127.0.0.3", redis.URL())
	if c := r.certificate(b); !c.Equal(ca) {
		t.Fatalf("restarted edge serves serial %x, want %x", c.SerialNumber, ca.SerialNumber)
	}
	if n := r.pebble.Orders(); n != 1 {
		t.Fatalf("Pebble saw %d orders after a restart, want still 1", n)
	}
}

// A single edge with file storage: a restart loads the certificate and
// places no order.
func TestRestartOrdersNothing(t *testing.T) {
	r := newACMERig(t, "127.0.0.1", "127.0.0.1")
	storage := "file://" + filepath.Join(r.dir, "certs")
	e := r.startEdge("127.0.0.1", storage)
	first := r.certificate(e)
	if err := r.viewerGet("127.0.0.1"); err != nil {
		t.Fatalf("viewer: %v", err)
	}
	before := r.pebble.Orders()
	e.stop(t)
	e = r.startEdge("127.0.0.1", storage)
	if c := r.certificate(e); !c.Equal(first) {
		t.Fatalf("restarted edge serves serial %x, want %x", c.SerialNumber, first.SerialNumber)
	}
	if err := r.viewerGet("127.0.0.1"); err != nil {
		t.Fatalf("viewer after restart: %v", err)
	}
	if n := r.pebble.Orders() - before; n != 0 {
		t.Fatalf("the restart placed %d orders, want 0", n)
	}
}

// A name whose DNS points elsewhere: no order, and a log line that says so.
func TestNameElsewhereOrdersNothing(t *testing.T) {
	r := newACMERig(t, "127.0.0.9", "127.0.0.1")
	e := r.startEdge("127.0.0.1", "file://"+filepath.Join(r.dir, "certs"))
	want := site + " resolves to 127.0.0.9, which is not this edge"
	deadline := time.Now().Add(60 * time.Second)
	for !bytes.Contains([]byte(e.stderr.String()), []byte(want)) {
		if time.Now().After(deadline) || e.cmd.exited() {
			t.Fatalf("no log line %q:\n%s", want, e.stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n := r.pebble.Orders(); n != 0 {
		t.Fatalf("Pebble saw %d orders, want 0", n)
	}
}
