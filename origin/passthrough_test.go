package origin

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/internal/pki"
)

func selfSignedApp(t *testing.T, name, host string, names ...string) (*testApp, *pki.Leaf) {
	t.Helper()
	leaf, err := pki.SelfSigned(pki.LeafOptions{Names: names, CommonName: name})
	if err != nil {
		t.Fatal(err)
	}
	c := leaf.TLS()
	return startApp(t, name, host, &c), leaf
}

func TestTCPPassthrough(t *testing.T) {
	a, leafA := selfSignedApp(t, "a", "127.0.0.2", "app.example.test")
	b, leafB := selfSignedApp(t, "b", "127.0.0.3", "app.example.test")
	admin, leafAdmin := selfSignedApp(t, "admin", "127.0.0.4", "admin.example.test")
	dir := t.TempDir()
	srv := runServer(t, exampleConfig(t, dir, "origin-passthrough.yaml",
		"port: 9443\n", "port: 0\n      address: 127.0.0.1\n",
		`"127.0.0.2:8443", "127.0.0.3:8443"`, fmt.Sprintf("%q, %q", a.addr, b.addr),
		`"127.0.0.4:8443"`, fmt.Sprintf("%q", admin.addr),
		`"127.0.0.1:9902"`, `"127.0.0.1:0"`))
	waitState(t, srv, "apps", a.addr, StateHealthy) // an HTTPS check through the app's own TLS
	waitState(t, srv, "apps", b.addr, StateHealthy)
	lb := srv.Addrs()[0].String()
	clientTLS := func(name string) *tls.Config {
		return &tls.Config{ServerName: name, RootCAs: certPool(leafA.Cert, leafB.Cert, leafAdmin.Cert)}
	}
	certOf := map[string]*pki.Leaf{"a": leafA, "b": leafB, "admin": leafAdmin}

	// New connections alternate, and the client sees each app's own
	// certificate (verified against the apps' self-signed ones).
	var order []string
	for i := range 4 {
		resp, r, err := get(httpClient(lb, clientTLS("app.example.test"), false), "https://app.example.test/")
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		if !resp.TLS.PeerCertificates[0].Equal(certOf[r.App].Cert) {
			t.Errorf("connection %d: answered by %s with %s's certificate? got subject %s", i, r.App, r.App, resp.TLS.PeerCertificates[0].Subject)
		}
		order = append(order, r.App)
	}
	for i := 1; i < len(order); i++ {
		if order[i] == order[i-1] {
			t.Fatalf("targets by connection: %v; want alternating", order)
		}
	}

	// Requests on one keep-alive connection stay on one target.
	keep := httpClient(lb, clientTLS("app.example.test"), true)
	// A passthrough connection lives until the client closes it: close it
	// before the drain, which would otherwise wait for it.
	t.Cleanup(keep.CloseIdleConnections)
	var first appReply
	for i := range 6 {
		resp, r, err := get(keep, "https://app.example.test/")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("keep-alive request %d: %v", i, err)
		}
		if i == 0 {
			first = r
		} else if r.App != first.App || r.Remote != first.Remote {
			t.Fatalf("keep-alive request %d went to %s from %s; the first went to %s from %s", i, r.App, r.Remote, first.App, first.Remote)
		}
	}

	// Bytes that are not TLS still reach the default group untouched: the
	// app's TLS server answers them with its plain-text complaint.
	c, err := net.DialTimeout("tcp", lb, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
	reply, _ := io.ReadAll(c)
	c.Close()
	if !strings.Contains(string(reply), "Client sent an HTTP request to an HTTPS server") {
		t.Errorf("plain text through the passthrough listener got %q", reply)
	}

	// The ClientHello's SNI routes to another group.
	resp, r, err := get(httpClient(lb, clientTLS("admin.example.test"), false), "https://admin.example.test/")
	if err != nil || r.App != "admin" || !resp.TLS.PeerCertificates[0].Equal(leafAdmin.Cert) {
		t.Fatalf("SNI admin.example.test: app %q, %v", r.App, err)
	}
}
