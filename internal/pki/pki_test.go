package pki

import (
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
	"time"
)

func TestIssueVerifies(t *testing.T) {
	ca, err := NewAuthority("test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(LeafOptions{Names: []string{"alb.example.test", "127.0.0.2"}})
	if err != nil {
		t.Fatal(err)
	}
	opts := x509.VerifyOptions{Roots: ca.Pool(), DNSName: "alb.example.test"}
	if _, err := leaf.Cert.Verify(opts); err != nil {
		t.Fatalf("verify for its own name: %v", err)
	}
	opts.DNSName = "lb-123.elb.example.test"
	if _, err := leaf.Cert.Verify(opts); err == nil || !strings.Contains(err.Error(), "alb.example.test") {
		t.Fatalf("verify for another name = %v, want a name mismatch naming alb.example.test", err)
	}
	expired, err := ca.Issue(LeafOptions{Names: []string{"old.example.test"}, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := expired.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "old.example.test"}); err == nil {
		t.Fatal("expired certificate verified")
	}
	pair := leaf.TLS()
	if len(pair.Certificate) != 2 {
		t.Fatalf("chain has %d certificates, want leaf and CA", len(pair.Certificate))
	}
	self, err := SelfSigned(LeafOptions{Names: []string{"app.example.test"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair(self.CertPEM, self.KeyPEM); err != nil {
		t.Fatal(err)
	}
	crl, err := ca.RevocationList(leaf.Cert)
	if err != nil || !strings.Contains(string(crl), "X509 CRL") {
		t.Fatalf("CRL: %v", err)
	}
}
