package integration

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A SIGHUP that adds an alias orders a certificate for that name alone:
// the certificate the edge holds is kept, and the new name is served once
// its order completes, without a restart.
func TestReloadOrdersOnlyNewNames(t *testing.T) {
	const extra = "www2.example.test"
	r := newACMERig(t, "127.0.0.1", "127.0.0.1")
	r.dns.Set(extra, "127.0.0.1")
	storage := "file://" + filepath.Join(r.dir, "certs")
	e := r.startEdge("127.0.0.1", storage)
	first := r.certificate(e)
	if n := r.pebble.Orders(); n != 1 {
		t.Fatalf("%d orders for one name", n)
	}
	cfg := filepath.Join(r.dir, "edge-127.0.0.1.yaml")
	text := strings.Replace(r.edgeConfig("127.0.0.1", storage), "aliases: ["+site+"]", "aliases: ["+site+", "+extra+"]", 1)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.cmd.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(r.tlsPort))
	waitCertificate(ctx, t, extra, addr, r.roots, e.cmd, e.stderr)
	if c := r.certificate(e); !c.Equal(first) {
		t.Errorf("the reload replaced the certificate of %s (serial %x, was %x)", site, c.SerialNumber, first.SerialNumber)
	}
	if n := r.pebble.Orders(); n != 2 {
		t.Errorf("Pebble saw %d orders after adding one alias, want 2", n)
	}
	if e.cmd.exited() {
		t.Fatal("the edge ended on SIGHUP")
	}
}
