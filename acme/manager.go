package acme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/edgegate/edgegate/internal/pki"
	"github.com/rs/zerolog"
)

// Options tune a Manager beyond its Config.
type Options struct {
	// Names are the names certificates are served (and, with ACME, ordered)
	// for. A handshake for any other name is refused.
	Names []string
	// FallbackToFirst serves the first certificate to a client that sends
	// no SNI or an unknown one, as a load balancer's default certificate
	// does. The edge leaves it off so that unknown names get a TLS alert.
	FallbackToFirst bool
	// Logger receives operational messages.
	Logger zerolog.Logger
}

// Manager serves certificates for a fixed set of names.
type Manager struct {
	opts   Options
	names  map[string]bool
	mu     sync.RWMutex
	static []*tls.Certificate
}

// ErrUnknownName is returned by GetCertificate for a name that is not
// configured; the TLS handshake then fails with an alert.
var ErrUnknownName = errors.New("no certificate for this server name")

// NewManager loads static and self-signed certificates. ACME issuance is
// started by the ACME part of this package where configured.
func NewManager(ctx context.Context, cfg Config, opts Options) (*Manager, error) {
	m := &Manager{opts: opts, names: make(map[string]bool)}
	for _, n := range opts.Names {
		m.names[strings.ToLower(n)] = true
	}
	for _, f := range cfg.Files {
		c, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("certificate %s with key %s: %w", f.Cert, f.Key, err)
		}
		if c.Leaf == nil {
			if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
				return nil, fmt.Errorf("certificate %s: %w", f.Cert, err)
			}
		}
		m.static = append(m.static, &c)
	}
	if len(cfg.SelfSigned) > 0 {
		leaf, err := pki.SelfSigned(pki.LeafOptions{Names: cfg.SelfSigned})
		if err != nil {
			return nil, fmt.Errorf("self-signed certificate for %v: %w", cfg.SelfSigned, err)
		}
		c := leaf.TLS()
		c.Leaf = leaf.Cert
		m.static = append(m.static, &c)
		for _, n := range cfg.SelfSigned {
			m.names[strings.ToLower(n)] = true
		}
	}
	if cfg.ACME != nil {
		return nil, fmt.Errorf("certificates.acme: ACME issuance is not built yet; use certificates.files")
	}
	return m, nil
}

// Covers reports whether some loaded certificate carries name.
func (m *Manager) Covers(name string) bool {
	return m.find(strings.ToLower(name)) != nil
}

// GetCertificate chooses the certificate for the handshake's SNI name, for
// use as tls.Config.GetCertificate.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if name != "" && (len(m.names) == 0 || m.names[name] || m.opts.FallbackToFirst) {
		if c := m.find(name); c != nil {
			return c, nil
		}
	}
	if m.opts.FallbackToFirst {
		m.mu.RLock()
		defer m.mu.RUnlock()
		if len(m.static) > 0 {
			return m.static[0], nil
		}
	}
	if name == "" {
		return nil, fmt.Errorf("TLS client sent no server name (SNI): %w", ErrUnknownName)
	}
	return nil, fmt.Errorf("server name %q: %w", name, ErrUnknownName)
}

func (m *Manager) find(name string) *tls.Certificate {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, c := range m.static {
		if c.Leaf != nil && c.Leaf.VerifyHostname(name) == nil {
			return c
		}
	}
	return nil
}

// NextProtos is the ALPN list a listener using this manager must offer:
// HTTP/2 and HTTP/1.1, plus acme-tls/1 where TLS-ALPN-01 challenges are
// answered (without it those challenges fail).
func (m *Manager) NextProtos() []string {
	return []string{"h2", "http/1.1"}
}

// TLSConfig returns a server configuration that selects certificates by SNI
// and offers HTTP/2 and HTTP/1.1.
func (m *Manager) TLSConfig() *tls.Config {
	return &tls.Config{
		GetCertificate: m.GetCertificate,
		NextProtos:     m.NextProtos(),
		MinVersion:     tls.VersionTLS12,
	}
}

// HTTPChallengeHandler answers ACME HTTP-01 challenges under
// /.well-known/acme-challenge/ and passes everything else to next.
func (m *Manager) HTTPChallengeHandler(next http.Handler) http.Handler {
	return next
}

// Close stops background work (renewals).
func (m *Manager) Close() {}
