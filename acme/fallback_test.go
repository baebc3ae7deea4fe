package acme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/edgegate/edgegate/internal/testpebble"
)

// While the primary CA is down, a new name is issued by the fallback CA
// (which requires External Account Binding); once the primary is back, the
// renewal of that name goes to it again.
func TestFallbackCAAndBack(t *testing.T) {
	names := map[string]string{"fb.example.test": "127.0.0.1", "new.example.test": "127.0.0.1"}
	r := newRigWith(t, names, testpebble.Config{Validity: 20 * time.Second}, 0)
	const keyID, macKey = "kid-1", "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
	second := testpebble.Start(t, testpebble.Config{DNS: r.dns.Addr(), HTTPPort: r.httpPort, TLSPort: r.tlsPort,
		Validity: 20 * time.Second, EAB: map[string]string{keyID: macKey}})
	cfg := r.config(ChallengeHTTP01)
	cfg.ACME.Fallback = []FallbackIssuer{{Directory: second.Directory, Email: "ops@example.test", TrustedRoots: second.APIRoots,
		EAB: &EABConfig{KeyID: keyID, MACKey: macKey}}}
	if ps := cfg.Validate(); len(ps) > 0 {
		t.Fatalf("config problems: %v", ps)
	}
	first := r.pebble
	issuerOf := caIdentifier(t, first, second)
	viewer := bothRootsViewer(t, r, first, second)

	m1 := r.serve(cfg, Options{renewCheck: time.Second}, "fb.example.test")
	waitFor(t, 60*time.Second, "www's certificate", func() bool { return m1.Covers("fb.example.test") })
	if got := issuerOf(servedCert(t, viewer, "fb.example.test")); got != "first" {
		t.Fatalf("www issued by the %s CA, want the first", got)
	}
	m1.Close()

	first.Stop()
	secondOrders := second.Orders()
	r.httpLn, r.tlsLn = relisten(t, r.httpLn), relisten(t, r.tlsLn)
	m2 := r.serve(cfg, Options{renewCheck: time.Second}, "fb.example.test", "new.example.test")
	waitFor(t, 60*time.Second, "new's certificate", func() bool { return m2.Covers("new.example.test") })
	if got := issuerOf(servedCert(t, viewer, "new.example.test")); got != "second" {
		t.Fatalf("with the first CA down, new issued by the %s CA, want the second", got)
	}
	if second.Orders() == secondOrders {
		t.Fatal("the second CA saw no order")
	}

	if err := first.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "new's renewal by the first CA", func() bool {
		return issuerOf(servedCert(t, viewer, "new.example.test")) == "first"
	})
}

// relisten closes a rig listener and listens again at its address, so
// that a second Manager can serve the rig's ports.
func relisten(t *testing.T, ln net.Listener) net.Listener {
	t.Helper()
	addr := ln.Addr().String()
	ln.Close()
	nl, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return nl
}

// caIdentifier returns a function naming the Pebble ("first", "second")
// whose intermediate signed a leaf.
func caIdentifier(t *testing.T, first, second *testpebble.Pebble) func(*x509.Certificate) string {
	t.Helper()
	keys := map[string]string{}
	for name, p := range map[string]*testpebble.Pebble{"first": first, "second": second} {
		roots, err := loadRoots(p.APIRoots)
		if err != nil {
			t.Fatal(err)
		}
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
		resp, err := c.Get(p.Management + "/intermediates/0")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		block, _ := pem.Decode(b)
		if block == nil {
			t.Fatalf("no intermediate from %s", p.Management)
		}
		ic, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		keys[string(ic.SubjectKeyId)] = name
	}
	return func(c *x509.Certificate) string {
		if c == nil {
			return "none"
		}
		if n, ok := keys[string(c.AuthorityKeyId)]; ok {
			return n
		}
		return "unknown"
	}
}

// bothRootsViewer is the rig's viewer trusting both CAs' issuing roots.
func bothRootsViewer(t *testing.T, r *rig, ps ...*testpebble.Pebble) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	for _, p := range ps {
		b, err := os.ReadFile(p.IssuerRoots)
		if err != nil || !pool.AppendCertsFromPEM(b) {
			t.Fatalf("issuing root of %s: %v", p.Directory, err)
		}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, r.tlsLn.Addr().String())
		},
	}}
}

// servedCert is the leaf served for host, or nil when the request fails.
func servedCert(t *testing.T, c *http.Client, host string) *x509.Certificate {
	resp, err := c.Get("https://" + host + "/")
	if err != nil {
		t.Logf("%s: %v", host, err)
		return nil
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.TLS.PeerCertificates[0]
}
