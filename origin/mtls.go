package origin

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/edgegate/edgegate/origin/accesslog"
)

// Headers carrying the verified client certificate to HTTP targets, in the
// manner of ALB's X-Amzn-Mtls-Clientcert-*. Any header starting with
// X-Client-Cert- (or spelled with underscores) that a client sends is
// removed first, so targets can trust them.
const (
	HeaderClientCertSubject  = "X-Client-Cert-Subject"       // RFC 2253 subject
	HeaderClientCertIssuer   = "X-Client-Cert-Issuer"        // RFC 2253 issuer
	HeaderClientCertSerial   = "X-Client-Cert-Serial-Number" // upper-case hex
	HeaderClientCertValidity = "X-Client-Cert-Validity"      // NotBefore=RFC3339;NotAfter=RFC3339
	HeaderClientCertLeaf     = "X-Client-Cert-Leaf"          // URL-encoded PEM
	clientCertHeaderPrefix   = "x-client-cert-"
)

// clientVerifier checks the client certificates of one mutual TLS listener
// against its trust store and revocation lists.
type clientVerifier struct {
	roots *x509.CertPool
	// revoked maps an issuer's raw subject to the revoked serial numbers
	// (decimal) of CRLs whose signature that issuer verified.
	revoked map[string]map[string]bool
}

// revokedError is a client certificate found on a CRL.
type revokedError struct {
	serial  *big.Int
	subject string
}

func (e *revokedError) Error() string {
	return fmt.Sprintf("client certificate %s (serial %X) is revoked", e.subject, e.serial)
}

// errNoClientCert is a client that sent no certificate to a verify listener.
var errNoClientCert = errors.New("client sent no certificate; this listener requires one (mutual TLS)")

// loadClientVerifier reads a trust store and optional CRL file.
func loadClientVerifier(m *MutualTLS) (*clientVerifier, error) {
	data, err := os.ReadFile(m.TrustStore)
	if err != nil {
		return nil, fmt.Errorf("trust store: %w", err)
	}
	certs, err := parseCerts(data)
	if err != nil {
		return nil, fmt.Errorf("trust store %s: %w", m.TrustStore, err)
	}
	v := &clientVerifier{roots: x509.NewCertPool(), revoked: map[string]map[string]bool{}}
	for _, c := range certs {
		v.roots.AddCert(c)
	}
	if m.CRL == "" {
		return v, nil
	}
	data, err = os.ReadFile(m.CRL)
	if err != nil {
		return nil, fmt.Errorf("crl: %w", err)
	}
	crls, err := parseCRLs(data)
	if err != nil {
		return nil, fmt.Errorf("crl %s: %w", m.CRL, err)
	}
	for i, crl := range crls {
		var issuer *x509.Certificate
		for _, c := range certs {
			if crl.CheckSignatureFrom(c) == nil {
				issuer = c
				break
			}
		}
		if issuer == nil {
			return nil, fmt.Errorf("crl %s: list %d (issuer %s) is not signed by a CA of the trust store", m.CRL, i+1, crl.Issuer)
		}
		set := v.revoked[string(issuer.RawSubject)]
		if set == nil {
			set = map[string]bool{}
			v.revoked[string(issuer.RawSubject)] = set
		}
		for _, e := range crl.RevokedCertificateEntries {
			set[e.SerialNumber.String()] = true
		}
	}
	return v, nil
}

func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM CERTIFICATE found")
	}
	return certs, nil
}

// parseCRLs reads PEM "X509 CRL" blocks, or one DER list.
func parseCRLs(data []byte) ([]*x509.RevocationList, error) {
	var out []*x509.RevocationList
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "X509 CRL" {
			continue
		}
		crl, err := x509.ParseRevocationList(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("list %d: %w", len(out)+1, err)
		}
		out = append(out, crl)
	}
	if len(out) > 0 {
		return out, nil
	}
	crl, err := x509.ParseRevocationList(data)
	if err != nil {
		return nil, fmt.Errorf("neither PEM X509 CRL blocks nor a DER list: %w", err)
	}
	return []*x509.RevocationList{crl}, nil
}

// apply sets up cfg to request a client certificate and verify it here, in
// VerifyConnection, rather than in crypto/tls: that way every refusal comes
// back as an error of ours whose reason is logged (missing, untrusted,
// expired, revoked). ClientCAs is still set so that clients are told which
// CAs are acceptable.
func (v *clientVerifier) apply(cfg *tls.Config) {
	cfg.ClientAuth = tls.RequestClientCert
	cfg.ClientCAs = v.roots
	cfg.VerifyConnection = v.verify
}

func (v *clientVerifier) verify(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errNoClientCert
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         v.roots,
		Intermediates: inter,
		CurrentTime:   time.Now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return fmt.Errorf("client certificate %s: %w", leaf.Subject, err)
	}
	for _, chain := range chains {
		for i := 0; i+1 < len(chain); i++ {
			if v.revoked[string(chain[i+1].RawSubject)][chain[i].SerialNumber.String()] {
				return &revokedError{serial: chain[i].SerialNumber, subject: chain[i].Subject.String()}
			}
		}
	}
	return nil
}

// handshakeReason names a client TLS handshake failure for the access log
// and metrics.
func handshakeReason(err error) string {
	var rev *revokedError
	var inv x509.CertificateInvalidError
	switch {
	case errors.Is(err, errNoClientCert):
		return accesslog.ReasonClientCertificateMissing
	case errors.As(err, &rev):
		return accesslog.ReasonClientCertificateRevoked
	case errors.As(err, &x509.UnknownAuthorityError{}):
		return accesslog.ReasonClientCertificateUntrusted
	case errors.As(err, &inv) && inv.Reason == x509.Expired:
		return accesslog.ReasonClientCertificateExpired
	case errors.As(err, &inv), errors.As(err, &x509.HostnameError{}):
		return accesslog.ReasonClientCertificateInvalid
	}
	return accesslog.ReasonClientTLSNegotiationError
}

// stripClientCertHeaders removes every client-supplied header that could be
// taken for one of ours: X-Client-Cert-* in any case, and the same names
// with underscores, which some servers (CGI, nginx with
// underscores_in_headers) treat as equal.
func stripClientCertHeaders(h http.Header) {
	for k := range h {
		n := strings.ToLower(strings.ReplaceAll(k, "_", "-"))
		if strings.HasPrefix(n, clientCertHeaderPrefix) {
			delete(h, k)
		}
	}
}

// setClientCertHeaders describes a verified client certificate to targets.
func setClientCertHeaders(h http.Header, leaf *x509.Certificate) {
	h.Set(HeaderClientCertSubject, headerSafe(leaf.Subject.String()))
	h.Set(HeaderClientCertIssuer, headerSafe(leaf.Issuer.String()))
	h.Set(HeaderClientCertSerial, fmt.Sprintf("%X", leaf.SerialNumber))
	h.Set(HeaderClientCertValidity, "NotBefore="+leaf.NotBefore.UTC().Format(time.RFC3339)+
		";NotAfter="+leaf.NotAfter.UTC().Format(time.RFC3339))
	h.Set(HeaderClientCertLeaf, url.PathEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}))))
}

// headerSafe escapes bytes that may not appear in a header value (a
// subject may hold any UTF-8, even control characters).
func headerSafe(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r > 0x7e }) {
		return s
	}
	var b strings.Builder
	for _, c := range []byte(s) {
		if c < 0x20 || c >= 0x7f {
			fmt.Fprintf(&b, "\\x%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}
