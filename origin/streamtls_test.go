package origin

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgegate/edgegate/internal/pki"
	"github.com/edgegate/edgegate/origin/accesslog"
)

// startTLSEcho is a target that speaks TLS (self-signed, as targets
// commonly are) and answers each line with "name:line".
func startTLSEcho(t *testing.T, name, host string) string {
	t.Helper()
	leaf, err := pki.SelfSigned(pki.LeafOptions{Names: []string{"target.internal"}, CommonName: name})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	ln := tls.NewListener(raw, &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}})
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
				if err := c.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
					return
				}
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					if _, err := fmt.Fprintf(c, "%s:%s\n", name, sc.Text()); err != nil {
						return
					}
				}
			})
		}
	})
	return raw.Addr().String()
}

// refusedAddr is an address on host where nothing listens.
func refusedAddr(t *testing.T, host string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// startNoTLS is a target that accepts connections (its TCP health check
// passes) and closes them at once, so a TLS handshake with it fails.
func startNoTLS(t *testing.T, host string) string {
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
			c.Close()
		}
	})
	return ln.Addr().String()
}

// TestStreamToTLSTargets: a TLS listener re-encrypts to a TLS target group,
// skipping a healthy target whose TLS handshake fails; when every target refuses, the viewer's
// connection is closed and the line names the last target tried and
// TargetConnectionError.
func TestStreamToTLSTargets(t *testing.T) {
	dir := t.TempDir()
	front, err := pki.SelfSigned(pki.LeafOptions{Names: []string{"stream.example.test"}})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := front.WriteFiles(dir, "front")
	if err != nil {
		t.Fatal(err)
	}
	echo := startTLSEcho(t, "tls-echo", "127.0.0.2")
	noTLS := startNoTLS(t, "127.0.0.3")
	dead2, dead3 := refusedAddr(t, "127.0.0.4"), refusedAddr(t, "127.0.0.5")
	logDir := filepath.Join(dir, "logs")
	cfg := fmt.Sprintf(`origin:
  listeners:
    - {protocol: TLS, port: 0, address: 127.0.0.1, certificates: {files: [{cert: %q, key: %q}]}, default_action: {forward: mixed}}
    - {protocol: TLS, port: 0, address: 127.0.0.1, certificates: {files: [{cert: %q, key: %q}]}, default_action: {forward: dead}}
  target_groups:
    - {name: mixed, protocol: TLS, targets: [%q, %q], health_check: {protocol: TCP, interval: 1h}}
    - {name: dead, protocol: TLS, targets: [%q, %q], health_check: {interval: 1h}}
  logs: {dir: %q}
`, certFile, keyFile, certFile, keyFile, noTLS, echo, dead2, dead3, logDir)
	path := filepath.Join(dir, "origin.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := runServer(t, path)
	addrs := srv.Addrs()
	viewerTLS := &tls.Config{RootCAs: certPool(front.Cert), ServerName: "stream.example.test"}
	dial := func(addr string) *tls.Conn {
		t.Helper()
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, viewerTLS)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		return c
	}
	// Round robin starts on either target: two connections try both orders.
	for i := range 2 {
		c := dial(addrs[0].String())
		if _, err := fmt.Fprintf(c, "ping%d\n", i); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || line != fmt.Sprintf("tls-echo:ping%d\n", i) {
			t.Fatalf("connection %d through the TLS group: %q, %v", i, line, err)
		}
		c.Close()
	}
	c := dial(addrs[1].String())
	_, _ = fmt.Fprintf(c, "lost\n") // may fail: the balancer closes at once
	if line, err := bufio.NewReader(c).ReadString('\n'); err == nil {
		t.Fatalf("every target refuses, yet the viewer read %q", line)
	}
	c.Close()
	recs := readLog(t, logDir, 3)
	var failed *accesslog.Record
	for i, r := range recs {
		if r.TargetGroup != "" && strings.Contains(r.TargetGroup, "dead") || r.ErrorReason == accesslog.ReasonTargetConnectionError {
			failed = &recs[i]
		}
	}
	if failed == nil || failed.ErrorReason != accesslog.ReasonTargetConnectionError || (failed.Target != dead2 && failed.Target != dead3) {
		t.Fatalf("want a TargetConnectionError line naming the last dead target tried (%s or %s); got %+v", dead2, dead3, recs)
	}
}
