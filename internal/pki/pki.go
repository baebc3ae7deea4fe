// Package pki issues X.509 certificates from a private authority: for tests
// that need real TLS with chosen names, dates and CAs, for the demo's private
// CA, and for the origin tier's generated self-signed listener certificates.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Authority is a certificate authority able to issue leaf certificates.
type Authority struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	pem  []byte
}

// NewAuthority creates a self-signed CA valid from an hour ago for ten years.
func NewAuthority(commonName string) (*Authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"edgegate"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("pki: CA %s: %w", commonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: CA %s: %w", commonName, err)
	}
	return &Authority{Cert: cert, Key: key, pem: pemBlock("CERTIFICATE", der)}, nil
}

// CertPEM returns the authority's certificate in PEM form.
func (a *Authority) CertPEM() []byte { return append([]byte(nil), a.pem...) }

// Pool returns a pool holding only this authority.
func (a *Authority) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(a.Cert)
	return p
}

// LeafOptions describes a certificate to issue.
type LeafOptions struct {
	// Names are DNS names or IP addresses for the subject alternative names.
	Names []string
	// CommonName defaults to the first name.
	CommonName string
	// NotBefore and NotAfter default to an hour ago and a year from now.
	NotBefore, NotAfter time.Time
	// Client marks the certificate for client authentication (mutual TLS);
	// otherwise it is for servers.
	Client bool
}

// Leaf is an issued certificate with its key.
type Leaf struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte // leaf followed by the issuing authority, as servers send it
	KeyPEM  []byte
}

// TLS returns the leaf as a tls.Certificate.
func (l *Leaf) TLS() tls.Certificate {
	c, err := tls.X509KeyPair(l.CertPEM, l.KeyPEM)
	if err != nil {
		// The pair was produced by this package; failure means a bug here.
		panic(fmt.Sprintf("pki: own key pair does not load: %v", err))
	}
	return c
}

// Issue signs a leaf certificate.
func (a *Authority) Issue(o LeafOptions) (*Leaf, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: leaf key: %w", err)
	}
	der, err := x509.CreateCertificate(rand.Reader, leafTemplate(o), a.Cert, key.Public(), a.Key)
	if err != nil {
		return nil, fmt.Errorf("pki: issue %v: %w", o.Names, err)
	}
	return newLeaf(der, key, a.pem)
}

// SelfSigned creates a self-signed server certificate for names, as a load
// balancer listener uses when no other certificate is configured.
func SelfSigned(o LeafOptions) (*Leaf, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: key: %w", err)
	}
	tmpl := leafTemplate(o)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("pki: self-signed %v: %w", o.Names, err)
	}
	return newLeaf(der, key, nil)
}

func leafTemplate(o LeafOptions) *x509.Certificate {
	now := time.Now()
	if o.NotBefore.IsZero() {
		o.NotBefore = now.Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = now.Add(365 * 24 * time.Hour)
	}
	cn := o.CommonName
	if cn == "" && len(o.Names) > 0 {
		cn = o.Names[0]
	}
	t := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"edgegate"}},
		NotBefore:    o.NotBefore,
		NotAfter:     o.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if o.Client {
		t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	for _, n := range o.Names {
		if ip := net.ParseIP(n); ip != nil {
			t.IPAddresses = append(t.IPAddresses, ip)
		} else {
			t.DNSNames = append(t.DNSNames, n)
		}
	}
	return t
}

func newLeaf(der []byte, key *ecdsa.PrivateKey, chain []byte) (*Leaf, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parse issued certificate: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: marshal key: %w", err)
	}
	certPEM := append(pemBlock("CERTIFICATE", der), chain...)
	return &Leaf{Cert: cert, Key: key, CertPEM: certPEM, KeyPEM: pemBlock("PRIVATE KEY", kder)}, nil
}

// RevocationList returns a PEM CRL signed by the authority that revokes the
// given certificates.
func (a *Authority) RevocationList(revoked ...*x509.Certificate) ([]byte, error) {
	return a.RevocationListUntil(time.Now().Add(24*time.Hour), revoked...)
}

// RevocationListUntil is RevocationList with the given next update time
// (a committed example CRL must stay current for years).
func (a *Authority) RevocationListUntil(next time.Time, revoked ...*x509.Certificate) ([]byte, error) {
	now := time.Now()
	tmpl := &x509.RevocationList{
		Number:     big.NewInt(now.UnixNano()),
		ThisUpdate: now.Add(-time.Minute),
		NextUpdate: next,
	}
	for _, c := range revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: now.Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, a.Cert, a.Key)
	if err != nil {
		return nil, fmt.Errorf("pki: CRL: %w", err)
	}
	return pemBlock("X509 CRL", der), nil
}

// WriteFiles writes the leaf's certificate chain and key as NAME.pem and
// NAME-key.pem in dir (key readable by the owner only) and returns the paths.
func (l *Leaf) WriteFiles(dir, name string) (certFile, keyFile string, err error) {
	certFile = filepath.Join(dir, name+".pem")
	keyFile = filepath.Join(dir, name+"-key.pem")
	if err := os.WriteFile(certFile, l.CertPEM, 0o644); err != nil {
		return "", "", fmt.Errorf("pki: %w", err)
	}
	if err := os.WriteFile(keyFile, l.KeyPEM, 0o600); err != nil {
		return "", "", fmt.Errorf("pki: %w", err)
	}
	return certFile, keyFile, nil
}

// WriteFile writes the authority's certificate as PEM to path.
func (a *Authority) WriteFile(path string) error {
	if err := os.WriteFile(path, a.pem, 0o644); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(fmt.Sprintf("pki: random serial: %v", err))
	}
	return n.Add(n, big.NewInt(1))
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
