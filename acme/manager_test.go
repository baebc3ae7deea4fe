package acme

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"

	"github.com/edgegate/edgegate/internal/pki"
	"github.com/rs/zerolog"
)

func TestManagerServesOnlyConfiguredNames(t *testing.T) {
	ca, err := pki.NewAuthority("test CA")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	www, err := ca.Issue(pki.LeafOptions{Names: []string{"www.example.test"}})
	if err != nil {
		t.Fatal(err)
	}
	wild, err := ca.Issue(pki.LeafOptions{Names: []string{"*.img.example.test"}})
	if err != nil {
		t.Fatal(err)
	}
	c1, k1, _ := www.WriteFiles(dir, "www")
	c2, k2, _ := wild.WriteFiles(dir, "wild")
	cfg := Config{Files: []KeyPair{{c1, k1}, {c2, k2}}}

	m, err := NewManager(context.Background(), cfg, Options{Names: []string{"www.example.test", "a.img.example.test"}, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		sni      string
		wantCert *pki.Leaf
	}{
		{"www.example.test", www},
		{"WWW.example.test.", www},
		{"a.img.example.test", wild},
		{"b.img.example.test", nil}, // the certificate covers it, but it is not configured
		{"other.example.test", nil},
		{"", nil},
	}
	for _, tt := range tests {
		c, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: tt.sni})
		if tt.wantCert == nil {
			if err == nil || !errors.Is(err, ErrUnknownName) {
				t.Errorf("SNI %q: got a certificate (err %v), want ErrUnknownName", tt.sni, err)
			}
			continue
		}
		if err != nil || !c.Leaf.Equal(tt.wantCert.Cert) {
			t.Errorf("SNI %q: wrong certificate (err %v)", tt.sni, err)
		}
	}

	lb, err := NewManager(context.Background(), Config{SelfSigned: []string{"lb.internal"}}, Options{FallbackToFirst: true, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	c, err := lb.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil || c.Leaf.Subject.CommonName != "lb.internal" {
		t.Fatalf("fallback certificate: %v", err)
	}

	if _, err := NewManager(context.Background(), Config{Files: []KeyPair{{c1, k2}}}, Options{}); err == nil || !strings.Contains(err.Error(), c1) {
		t.Fatalf("mismatched key pair: %v, want an error naming %s", err, c1)
	}
}
