// Package acme obtains and serves TLS certificates for edgegate's listeners:
// static files, generated self-signed pairs, and certificates issued and
// renewed over ACME with certmagic, for exactly the configured names.
//
// The edge's viewer listeners and the origin tier's listeners share it; it
// knows nothing of either.
//
// ACME: each Manager has its own certmagic cache and config. Its listeners
// answer the challenges (HTTP-01 through HTTPChallengeHandler, TLS-ALPN-01
// through GetCertificate); certmagic's solvers are pointed at a loopback
// port the Manager holds, so they never bind a port of their own, and
// challenge data goes through storage, so any node of a cluster sharing a
// Redis storage answers for the node that ordered. Handshakes never order:
// only the configured names are managed, in the background (ManageAsync).
//
// Before an order, the certmagic Issuer (guardedIssuer, called with the
// name's cluster-wide lock held) checks the name's failed-validation budget
// in storage and pre-checks that the name reaches this edge or cluster: a
// random token, published in storage, fetched by the name through the
// configured resolver on the HTTP-01 port (over TLS on the TLS-ALPN-01 port
// when http-01 is off). A failure is logged and certmagic retries later,
// with its backoff, instead of spending a validation at the CA.
package acme

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
)

// Config is the `certificates` block of an edge or an origin-tier listener.
type Config struct {
	// ACME, when set, obtains certificates for the configured names from an
	// ACME CA (Let's Encrypt, Pebble in tests).
	ACME *IssuerConfig `yaml:"acme"`
	// Files are static certificate/key pairs (PEM). Each is served for the
	// names its certificate carries.
	Files []KeyPair `yaml:"files"`
	// SelfSigned lists names for which a self-signed pair is generated at
	// start, as a load balancer does for an internal listener.
	SelfSigned []string `yaml:"self_signed"`
	// Storage is where ACME certificates, keys and locks live:
	// file:///var/lib/edgegate (default) or redis://host:6379/0 for a cluster.
	Storage string `yaml:"storage"`
}

// IssuerConfig describes an ACME certificate authority account.
type IssuerConfig struct {
	// Directory is the CA's directory URL.
	Directory string `yaml:"directory"`
	// Email is the account contact, used by the CA for expiry notices.
	Email string `yaml:"email"`
	// TrustedRoots is a PEM file of roots to trust for the CA's own API (a
	// private or test CA such as Pebble); system roots otherwise.
	TrustedRoots string `yaml:"trusted_roots"`
	// Profile is the certificate profile every order (first and renewal)
	// names: classic, tlsserver, shortlived (Let's Encrypt, 2026) or any
	// profile the CA's directory advertises in meta.profiles; the CA's
	// default when empty. It is checked against the directory at start.
	Profile string `yaml:"profile"`
	// EAB is the External Account Binding the CA requires to open an
	// account (ZeroSSL, Google Trust Services).
	EAB *EABConfig `yaml:"eab"`
	// Fallback lists further CAs, tried in order when this one cannot
	// issue (an outage, a rate-limit pause); a renewal tries this one
	// first again. Challenges, DNS and ports are shared.
	Fallback []FallbackIssuer `yaml:"fallback"`
	// Challenges lists the enabled challenge types: http-01, tls-alpn-01,
	// or dns-01 alone (certmagic uses the DNS challenge exclusively), which
	// needs DNS and is the only one that allows wildcard names. Empty means
	// http-01 and tls-alpn-01.
	Challenges []string `yaml:"challenges"`
	// DNS is the DNS provider for the dns-01 challenge.
	DNS *DNSConfig `yaml:"dns"`
	// HTTPPort is the port on which the CA validates HTTP-01 challenges and
	// on which the pre-check fetches its token: 80 (RFC 8555) unless a test
	// CA such as Pebble is configured to use the edge's other HTTP port.
	HTTPPort int `yaml:"http_port"`
	// TLSPort is the port on which the CA validates TLS-ALPN-01 challenges
	// (443 unless a test CA is configured otherwise); the pre-check uses it
	// when http-01 is off.
	TLSPort int `yaml:"tls_port"`
}

// FallbackIssuer is a further ACME CA of an IssuerConfig: its own
// directory, account and profile.
type FallbackIssuer struct {
	Directory    string     `yaml:"directory"`
	Email        string     `yaml:"email"`
	TrustedRoots string     `yaml:"trusted_roots"`
	Profile      string     `yaml:"profile"`
	EAB          *EABConfig `yaml:"eab"`
}

// EABConfig is an External Account Binding credential (RFC 8555 §7.3.4)
// as the CA hands it out.
type EABConfig struct {
	// KeyID is the key identifier.
	KeyID string `yaml:"key_id"`
	// MACKey is the HMAC key, base64url-encoded.
	MACKey string `yaml:"mac_key"`
}

// issuers is the primary CA followed by its fallbacks, each as an
// IssuerConfig sharing the primary's challenges, DNS and ports.
func (a *IssuerConfig) issuers() []*IssuerConfig {
	out := []*IssuerConfig{a}
	for _, f := range a.Fallback {
		c := *a
		c.Fallback = nil
		c.Directory, c.Email, c.TrustedRoots, c.Profile, c.EAB = f.Directory, f.Email, f.TrustedRoots, f.Profile, f.EAB
		out = append(out, &c)
	}
	return out
}

// KeyPair names a PEM certificate chain file and its private key file.
type KeyPair struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Challenge types understood in IssuerConfig.Challenges.
const (
	ChallengeHTTP01    = "http-01"
	ChallengeTLSALPN01 = "tls-alpn-01"
	ChallengeDNS01     = "dns-01"
)

// dns01 reports whether the DNS-01 challenge is configured.
func (a *IssuerConfig) dns01() bool {
	return a != nil && slices.Contains(a.Challenges, ChallengeDNS01)
}

// NameProblem says why this certificates block cannot obtain a certificate
// for name (an alias or server name), or "" when it can: a wildcard needs
// the dns-01 challenge, an IP address the shortlived profile. A block with
// static files may serve such a name from them.
func (c *Config) NameProblem(name string) string {
	if c.ACME == nil || len(c.Files) > 0 {
		return ""
	}
	if strings.HasPrefix(name, "*.") && !c.ACME.dns01() {
		return fmt.Sprintf("%s: a wildcard certificate needs the DNS-01 challenge: set certificates.acme.challenges: [dns-01] and certificates.acme.dns, or put its certificate in certificates.files", name)
	}
	if net.ParseIP(name) != nil && c.ACME.Profile != ProfileShortlived {
		return fmt.Sprintf("%s: an IP address certificate needs certificates.acme.profile: shortlived (the only profile Let's Encrypt issues them under), or put its certificate in certificates.files", name)
	}
	return ""
}

// ProfileShortlived is Let's Encrypt's profile of 160-hour certificates,
// the only one under which it issues IP-address certificates.
const ProfileShortlived = "shortlived"

// Problem is a configuration problem at a key path relative to the
// certificates block, so that the caller can place it in its file.
type Problem struct {
	Key     string
	Message string
}

// Validate reports problems in the block. It does not touch the network.
func (c *Config) Validate() []Problem {
	var ps []Problem
	for i, f := range c.Files {
		if f.Cert == "" {
			ps = append(ps, Problem{fmt.Sprintf("files[%d].cert", i), "missing certificate file"})
		}
		if f.Key == "" {
			ps = append(ps, Problem{fmt.Sprintf("files[%d].key", i), "missing key file"})
		}
	}
	if a := c.ACME; a != nil {
		for i, iss := range a.issuers() {
			key := "acme."
			if i > 0 {
				key = fmt.Sprintf("acme.fallback[%d].", i-1)
			}
			u, err := url.Parse(iss.Directory)
			if iss.Directory == "" || err != nil || u.Scheme != "https" || u.Host == "" {
				ps = append(ps, Problem{key + "directory", fmt.Sprintf("%q is not an https:// ACME directory URL", iss.Directory)})
			}
			if iss.Profile != "" && !validProfileName(iss.Profile) {
				ps = append(ps, Problem{key + "profile", fmt.Sprintf("%q is not a profile name (letters, digits, '-', '_', '.')", iss.Profile)})
			}
			if e := iss.EAB; e != nil {
				if e.KeyID == "" {
					ps = append(ps, Problem{key + "eab.key_id", "missing"})
				}
				if b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(e.MACKey, "=")); err != nil || len(b) == 0 {
					ps = append(ps, Problem{key + "eab.mac_key", "missing or not base64url"})
				}
			}
		}
		if a.HTTPPort < 0 || a.HTTPPort > 65535 {
			ps = append(ps, Problem{"acme.http_port", fmt.Sprintf("%d is not a TCP port", a.HTTPPort)})
		}
		if a.TLSPort < 0 || a.TLSPort > 65535 {
			ps = append(ps, Problem{"acme.tls_port", fmt.Sprintf("%d is not a TCP port", a.TLSPort)})
		}
		for i, ch := range a.Challenges {
			switch {
			case ch != ChallengeHTTP01 && ch != ChallengeTLSALPN01 && ch != ChallengeDNS01:
				ps = append(ps, Problem{fmt.Sprintf("acme.challenges[%d]", i), fmt.Sprintf("unknown challenge %q (use http-01, tls-alpn-01 or dns-01)", ch)})
			case ch == ChallengeDNS01 && len(a.Challenges) > 1:
				ps = append(ps, Problem{fmt.Sprintf("acme.challenges[%d]", i), "dns-01 is used alone: certmagic solves every name over DNS when it is configured"})
			}
		}
		switch {
		case a.dns01() && a.DNS == nil:
			ps = append(ps, Problem{"acme.dns", "missing: dns-01 needs a DNS provider ({provider: rfc2136, server, tsig: {name, algorithm, secret}})"})
		case a.DNS != nil && !a.dns01():
			ps = append(ps, Problem{"acme.dns", "set, but challenges has no dns-01: add challenges: [dns-01] or remove dns"})
		case a.DNS != nil:
			ps = append(ps, a.DNS.validate()...)
		}
	}
	if s := c.Storage; s != "" && !strings.HasPrefix(s, "file://") && !strings.HasPrefix(s, "redis://") &&
		!strings.HasPrefix(s, "rediss://") && !strings.HasPrefix(s, "redis-cluster://") {
		ps = append(ps, Problem{"storage", fmt.Sprintf("%q: use file:///path or redis://host:port/db", s)})
	}
	if c.ACME == nil && len(c.Files) == 0 && len(c.SelfSigned) == 0 {
		ps = append(ps, Problem{"", "no certificate source: set acme, files or self_signed"})
	}
	return ps
}

// validProfileName accepts the names CAs use for profiles (classic,
// tlsserver, shortlived, 6days...), so that a typo such as a stray space
// is reported here rather than by the CA.
func validProfileName(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}
