package testpebble

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"testing"
)

// Pebble starts from the pinned tool, publishes its issuing root, and has
// seen no order yet.
func TestStart(t *testing.T) {
	p := Start(t, Config{HTTPPort: 5002, TLSPort: 5001})
	b, err := os.ReadFile(p.IssuerRoots)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("no PEM in %s", p.IssuerRoots)
	}
	root, err := x509.ParseCertificate(blk.Bytes)
	if err != nil || !root.IsCA {
		t.Fatalf("issuing root: %v (CA %v)", err, err == nil && root.IsCA)
	}
	if n := p.Orders(); n != 0 {
		t.Fatalf("%d orders before any client", n)
	}
}
