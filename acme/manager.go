package acme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/edgegate/edgegate/internal/hostname"
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
	// Resolver is a DNS server (HOST:PORT) through which the pre-check
	// resolves a name before ordering it, so that it sees what the CA will
	// see; the system resolver when empty. The edge passes edge.resolver.
	Resolver string
	// Logger receives operational messages.
	Logger zerolog.Logger

	// renewCheck shortens certmagic's renewal check interval (10 min) for
	// tests with short-lived certificates.
	renewCheck time.Duration
	// expiryCheck shortens the expiry alerts' check interval (1 min).
	expiryCheck time.Duration
}

// Manager serves certificates for a fixed set of names.
type Manager struct {
	opts   Options
	names  map[string]bool
	mu     sync.RWMutex
	static []*tls.Certificate

	// ACME part; nil magic when certificates.acme is not configured.
	magic     *certmagic.Config
	cache     *certmagic.Cache
	issuers   []*certmagic.ACMEIssuer // primary CA first, then fallbacks
	acmeNames map[string]bool         // configured names no static file covers
	tlsALPN   bool
	pre       *precheck
	stop      context.CancelFunc
	closers   []func()
	closeOnce sync.Once
}

// ErrUnknownName is returned by GetCertificate for a name that is not
// configured; the TLS handshake then fails with an alert.
var ErrUnknownName = errors.New("no certificate for this server name")

// NewManager loads static and self-signed certificates and, where
// certificates.acme is configured, starts managing every configured name
// that no static certificate covers: it loads certificates from storage and
// orders missing ones in the background (ctx bounds only the set-up).
func NewManager(ctx context.Context, cfg Config, opts Options) (*Manager, error) {
	m := &Manager{opts: opts, names: make(map[string]bool)}
	for _, n := range opts.Names {
		m.names[normalize(n)] = true
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
			m.names[normalize(n)] = true
		}
	}
	if cfg.ACME != nil {
		if err := m.startACME(ctx, cfg); err != nil {
			m.Close()
			return nil, fmt.Errorf("certificates.acme: %w", err)
		}
	}
	return m, nil
}

// normalize is the form names are kept in: lower case without a final
// dot, and an IP address in its canonical form (::1, not 0:0::1).
func normalize(name string) string {
	if ip := net.ParseIP(strings.Trim(name, "[]")); ip != nil {
		return ip.String()
	}
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

// wildcardOf is the wildcard name that covers name (*.example.com for
// www.example.com), or "" for a name with a single label.
func wildcardOf(name string) string {
	if i := strings.IndexByte(name, '.'); i > 0 && i < len(name)-1 {
		return "*" + name[i:]
	}
	return ""
}

// localIP is the address a connection was accepted on, as an IP alias.
func localIP(c net.Conn) string {
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return ""
}

// Covers reports whether some loaded certificate carries name: a static
// one, or an ACME certificate already in memory.
func (m *Manager) Covers(name string) bool {
	name = normalize(name)
	if m.find(name) != nil {
		return true
	}
	return m.magic != nil && m.acmeNames[name] && len(m.cache.AllMatchingCertificates(name)) > 0
}

// Pending returns, sorted, the names this manager orders over ACME that
// have no certificate in memory yet: until a name has one, its viewers get
// a TLS alert. A readiness check waits for it to be empty.
func (m *Manager) Pending() []string {
	var out []string
	for n := range m.acmeNames {
		if !m.Covers(n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// GetCertificate chooses the certificate for the handshake's SNI name, for
// use as tls.Config.GetCertificate. ACME certificates come from memory
// only: a handshake never places an order (no on-demand TLS), and a
// TLS-ALPN-01 validation handshake is answered only for an ACME-managed
// name.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := normalize(hello.ServerName)
	if name == "" && hello.Conn != nil {
		// TLS clients send no SNI for an IP address: the address the
		// viewer connected to names the certificate (an IP alias).
		if ip := localIP(hello.Conn); ip != "" && m.names[ip] {
			name = ip
		}
	}
	known := name != "" && (len(m.names) == 0 || m.names[name] || m.names[wildcardOf(name)])
	if known && m.magic != nil && (m.acmeNames[name] || m.acmeNames[wildcardOf(name)]) {
		if slices.Contains(hello.SupportedProtos, precheckALPN) {
			return m.pre.tlsCert(hello.Context(), name)
		}
		if m.tlsALPN && slices.Contains(hello.SupportedProtos, acmeTLS1) {
			return m.magic.GetCertificate(hello)
		}
		if c, err := m.magic.GetCertificate(hello); err == nil {
			return c, nil
		}
	}
	if known || (name != "" && m.opts.FallbackToFirst) {
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
	if known {
		return nil, fmt.Errorf("server name %q: certificate not obtained yet: %w", name, ErrUnknownName)
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
	if m.tlsALPN {
		return []string{"h2", "http/1.1", acmeTLS1}
	}
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

// HTTPChallengeHandler answers ACME HTTP-01 challenges (this node's, or
// another cluster node's through shared storage) and the pre-check's own
// tokens under /.well-known/acme-challenge/ for configured names, and
// passes everything else to next.
func (m *Manager) HTTPChallengeHandler(next http.Handler) http.Handler {
	if m.magic == nil {
		return next
	}
	// Each CA's handler answers its own challenges (their data is kept
	// under the CA's key in storage) and passes the rest on.
	acmeHandler := next
	for i := len(m.issuers) - 1; i >= 0; i-- {
		acmeHandler = m.issuers[i].HTTPChallengeHandler(acmeHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, challengePath) {
			next.ServeHTTP(w, r)
			return
		}
		host := hostname.WithoutPort(r.Host)
		if !m.acmeNames[normalize(host)] {
			next.ServeHTTP(w, r) // never look up storage for names we do not manage
			return
		}
		if m.pre != nil && m.pre.serve(w, r) {
			return
		}
		acmeHandler.ServeHTTP(w, r)
	})
}

// Close stops background work (orders, renewals) and releases storage.
func (m *Manager) Close() {
	m.closeOnce.Do(func() {
		if m.stop != nil {
			m.stop()
		}
		if m.cache != nil {
			m.cache.Stop()
		}
		for i := len(m.closers) - 1; i >= 0; i-- {
			m.closers[i]()
		}
	})
}
