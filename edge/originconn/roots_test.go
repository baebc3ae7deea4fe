package originconn

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgegate/edgegate/internal/pki"
)

func TestLoadRoots(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "private CA")
	caFile := filepath.Join(dir, "ca.pem")
	if err := ca.WriteFile(caFile); err != nil {
		t.Fatal(err)
	}
	leaf := issue(t, ca, pki.LeafOptions{Names: []string{"origin.example.test"}})

	pool, err := LoadRoots(caFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Cert.Verify(verifyOpts(pool)); err != nil {
		t.Errorf("a certificate from the trusted_ca file does not verify: %v", err)
	}
	system, err := LoadRoots("")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Cert.Verify(verifyOpts(system)); err == nil {
		t.Error("the private CA is trusted without being configured")
	}

	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadRoots(empty); err == nil || !strings.Contains(err.Error(), empty) || !strings.Contains(err.Error(), "no PEM certificates") {
		t.Errorf("file without certificates: %v", err)
	}
	missing := filepath.Join(dir, "missing.pem")
	if _, err := LoadRoots(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: %v", err)
	}
}
