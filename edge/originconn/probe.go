package originconn

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Report is the probe's verdict on an origin, in words an operator can act
// on.
type Report struct {
	OK      bool     // the edge would get a response from this origin
	Kind    Kind     // the failure as the edge would log it; KindNone when OK
	Summary string   // what happened, e.g. "the certificate is valid for ..., not ..."
	Fix     string   // what to change; "" when OK
	Details []string // address dialled, TLS version and cipher, the certificate, the HTTP status
	Err     error    // the error the edge would see; nil when OK
}

// String renders the report for a terminal.
func (r *Report) String() string {
	var b strings.Builder
	if r.OK {
		b.WriteString("OK: " + r.Summary + "\n")
	} else {
		head := "FAILED"
		if r.Kind != KindNone {
			head += fmt.Sprintf(" (%s; the edge would answer %s)", r.Kind, statusText(r.Kind))
		}
		b.WriteString(head + ": " + r.Summary + "\n")
		if r.Fix != "" {
			b.WriteString("Fix: " + r.Fix + "\n")
		}
	}
	for _, d := range r.Details {
		b.WriteString("  " + d + "\n")
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func statusText(k Kind) string {
	if s := k.Status(); s != 0 {
		return fmt.Sprint(s)
	}
	return "nothing (000)"
}

// probeRecorder watches the probe's dials through hooks.
type probeRecorder struct {
	mu        sync.Mutex
	addrs     []string
	state     *tls.ConnectionState
	requested *tls.CertificateRequestInfo
}

func (rec *probeRecorder) hooks() *hooks {
	return &hooks{
		dialed: func(addr string) {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			rec.addrs = append(rec.addrs, addr)
		},
		handshake: func(s tls.ConnectionState) {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			rec.state = &s
		},
		certRequested: func(info *tls.CertificateRequestInfo) {
			c := *info
			c.AcceptableCAs = slices.Clone(info.AcceptableCAs)
			rec.mu.Lock()
			defer rec.mu.Unlock()
			rec.requested = &c
		},
	}
}

// Probe connects to target exactly as the edge's transport would (same
// dialer, TLS configuration, retries and timeouts), sends GET, and reports
// what fails and how to fix it. An empty o.DomainName means target's host;
// the port rules of Options apply. When the handshake fails the probe may
// make a few more connections to learn which TLS versions the origin offers.
func Probe(ctx context.Context, o Options, target *url.URL) *Report {
	r := &Report{}
	if target == nil || (target.Scheme != "https" && target.Scheme != "http") || target.Hostname() == "" {
		r.Summary = fmt.Sprintf("%v is not an http:// or https:// URL", target)
		r.Fix = "Give the origin's URL, e.g. https://alb.example.com/."
		return r
	}
	if o.DomainName == "" {
		o.DomainName = target.Hostname()
	}
	rec := &probeRecorder{}
	d, err := newDialer(o, rec.hooks())
	if err != nil {
		r.Summary, r.Err = err.Error(), err
		r.Fix = "Correct the origin's settings."
		return r
	}
	tr := d.transport()
	defer tr.CloseIdleConnections()
	r.Details = append(r.Details, d.describeRoute(target))

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
	if err != nil {
		r.Summary, r.Err = err.Error(), err
		return r
	}
	req.Header.Set("User-Agent", "edgegate-probe")
	resp, err := tr.RoundTrip(req)
	var n int64
	if err == nil {
		// Read (a bounded part of) the body: an origin that breaks it midway
		// fails the edge too.
		n, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		r.Kind = ClassifyBodyError(err)
	} else {
		r.Kind = Classify(err)
	}
	rec.mu.Lock()
	addrs, state, requested := slices.Clone(rec.addrs), rec.state, rec.requested
	rec.mu.Unlock()

	if len(addrs) > 0 {
		r.Details = append(r.Details, "address dialled: "+strings.Join(addrs, ", "))
	}
	var certs []*x509.Certificate
	if state != nil {
		tlsLine := fmt.Sprintf("TLS: %s, %s", versionName(state.Version), tls.CipherSuiteName(state.CipherSuite))
		if state.NegotiatedProtocol != "" {
			tlsLine += ", ALPN " + state.NegotiatedProtocol
		}
		r.Details = append(r.Details, tlsLine)
		certs = state.PeerCertificates
	}
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) {
		certs = verr.UnverifiedCertificates
	}
	r.Details = append(r.Details, describeChain(certs)...)
	if requested != nil {
		r.Details = append(r.Details, describeCertRequest(requested, o.ClientCertificate))
	}
	if resp != nil {
		r.Details = append(r.Details, fmt.Sprintf("HTTP: GET %s → %s (%d bytes of body read)", target.RequestURI(), resp.Status, n))
	}

	if r.Kind == KindNone {
		r.OK = true
		r.Summary = fmt.Sprintf("%s answered %s", target, resp.Status)
		if addrs != nil {
			r.Summary += " through " + addrs[len(addrs)-1]
		}
		return r
	}
	r.Err = err
	r.Details = append(r.Details, "error: "+err.Error())
	r.Summary, r.Fix = d.explain(ctx, r.Kind, err, requested)
	return r
}

// describeRoute says how the origin is reached: by which name, and to
// which host through which resolver.
func (d *dialer) describeRoute(target *url.URL) string {
	s := fmt.Sprintf("origin: %s (sent as SNI; the certificate must carry it)", d.o.DomainName)
	switch {
	case d.o.ConnectTo != "":
		s += ", dialled at connect_to " + d.o.ConnectTo
	case d.o.Resolver != "":
		s += ", resolved by DNS server " + d.o.Resolver
	default:
		s += ", resolved by the system resolver"
	}
	if target.Scheme == "http" {
		s += ", plain HTTP"
	}
	return s
}

func describeChain(certs []*x509.Certificate) []string {
	var out []string
	for i, c := range certs {
		if i == 0 {
			out = append(out, fmt.Sprintf("certificate: subject %q, names %s, issuer %q, valid %s to %s",
				c.Subject.String(), namesOf(c), c.Issuer.String(), date(c.NotBefore), date(c.NotAfter)))
			continue
		}
		out = append(out, fmt.Sprintf("chain[%d]: subject %q, issuer %q, valid %s to %s",
			i, c.Subject.String(), c.Issuer.String(), date(c.NotBefore), date(c.NotAfter)))
	}
	return out
}

func describeCertRequest(info *tls.CertificateRequestInfo, have *tls.Certificate) string {
	s := "client certificate: requested by the origin"
	if cas := acceptableCAs(info); len(cas) > 0 {
		s += " (it accepts certificates issued by " + strings.Join(cas, "; ") + ")"
	}
	if have == nil {
		return s + "; none configured"
	}
	return s + "; sent " + certSubject(have)
}

// explain turns a failure into a summary and a fix.
func (d *dialer) explain(ctx context.Context, k Kind, err error, requested *tls.CertificateRequestInfo) (summary, fix string) {
	var e *Error
	addr := ""
	if errors.As(err, &e) {
		addr = e.Addr
	}
	switch k {
	case KindDNS:
		return d.explainDNS(err)
	case KindConnect:
		return d.explainConnect(ctx, err, addr, requested)
	case KindTimeout:
		if errors.Is(err, errResponseTimeout) {
			return fmt.Sprintf("connected to %s, but the origin then sent nothing for %s (response_timeout)", addr, d.o.ResponseTimeout),
				"Find out why the origin is slow (its logs, its own upstreams), or raise response_timeout if slow answers are expected."
		}
		attempts := ""
		if e != nil && e.Attempts > 1 {
			attempts = fmt.Sprintf(" in any of %d attempts", e.Attempts)
		}
		return fmt.Sprintf("no answer from %s within connection_timeout %s%s: packets are dropped on the way, or the address is wrong", orUnknown(addr), d.o.ConnectionTimeout, attempts),
			"Allow the edge through the origin's firewall or security group on that port, and check that DNS or connect_to lead to the origin; raise connection_timeout only if the path is known to be slow."
	case KindRead:
		return "the origin broke the response midway: " + rootCause(err),
			"Check the origin's logs for crashes or restarts, and anything between edge and origin that cuts connections; keepalive_timeout must be shorter than the origin's own idle timeout."
	case KindInvalidResponse:
		return "the origin's answer is not HTTP: " + rootCause(err),
			"Check that this port speaks HTTP (TLS on an http port, or another protocol, answers like this) and that protocol_policy and the ports are right."
	case KindHeaderTooBig:
		return fmt.Sprintf("the origin's response headers exceed %d bytes", d.o.MaxResponseHeaderBytes),
			"Make the origin send smaller headers (large cookies or debugging headers are the usual cause)."
	case KindCanceled:
		return "the probe was canceled before the origin answered", ""
	}
	return rootCause(err), ""
}

func (d *dialer) explainDNS(err error) (summary, fix string) {
	var dnsErr *net.DNSError
	errors.As(err, &dnsErr)
	name, server := d.o.DomainName, "the system resolver"
	if dnsErr != nil {
		name = dnsErr.Name
	}
	if d.o.Resolver != "" {
		server = "DNS server " + d.o.Resolver
	}
	fix = fmt.Sprintf("Create the DNS record for %s or correct domain_name; or set connect_to: HOST:PORT to dial the origin directly while %s stays the name sent and verified.", name, d.o.DomainName)
	if dnsErr != nil && dnsErr.IsNotFound {
		return fmt.Sprintf("the name %s does not resolve: %s has no such host", name, server), fix
	}
	return fmt.Sprintf("looking up %s at %s failed: %s", name, server, rootCause(err)),
		fmt.Sprintf("Check that %s answers; ", server) + fix
}

func (d *dialer) explainConnect(ctx context.Context, err error, addr string, requested *tls.CertificateRequestInfo) (summary, fix string) {
	name := d.o.DomainName
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) {
		return explainCertificate(name, verr)
	}
	if requested != nil && isRemoteAlert(err) {
		cas := acceptableCAs(requested)
		accepts := ""
		if len(cas) > 0 {
			accepts = " (the origin accepts certificates issued by " + strings.Join(cas, "; ") + ")"
		}
		if d.o.ClientCertificate == nil {
			return fmt.Sprintf("the origin requires a client certificate (mutual TLS) and the edge has none configured: %s", rootCause(err)),
				"Set client_certificate (cert and key) for this origin to a certificate from a CA the origin trusts" + accepts + "; with edgegate probe, pass -cert and -key."
		}
		return fmt.Sprintf("the origin rejected the edge's client certificate %s: %s", certSubject(d.o.ClientCertificate), rootCause(err)),
			"Use a client certificate issued by a CA in the origin's trust store" + accepts + ", valid now and for client authentication, or add its CA to the origin's mutual_tls trust_store."
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Sprintf("nothing accepts connections at %s (connection refused)", orUnknown(addr)),
			"Check that the origin listens on that address and port; correct https_port/http_port or connect_to to where it listens, and protocol_policy if it serves only HTTP or only HTTPS."
	}
	var rhe tls.RecordHeaderError
	if errors.As(err, &rhe) {
		return fmt.Sprintf("the origin at %s does not speak TLS (it answered %q)", orUnknown(addr), rhe.RecordHeader[:]),
			"It probably serves plain HTTP on this port: use protocol_policy http-only with its http_port, or point https_port at its TLS listener."
	}
	if addr != "" {
		if offered := d.offeredVersions(ctx, addr, name); len(offered) > 0 {
			allowed := d.allowedVersions()
			if !slices.ContainsFunc(offered, func(v uint16) bool { return slices.Contains(allowed, v) }) {
				return fmt.Sprintf("no TLS version in common: the origin offers %s, ssl_protocols allow %s", versionList(offered), versionList(allowed)),
					fmt.Sprintf("Add %s to the origin's ssl_protocols, or enable %s on the origin.", versionList(offered), versionList(allowed))
			}
		}
	}
	if isRemoteAlert(err) {
		return fmt.Sprintf("the origin refused the TLS handshake for %s: %s", name, rootCause(err)),
			fmt.Sprintf("Check that the origin has a certificate for %s (an origin tier picks it by SNI) and accepts ssl_protocols %s.", name, versionList(d.allowedVersions()))
	}
	return "could not connect: " + rootCause(err),
		fmt.Sprintf("Check that the origin serves TLS for %s at %s.", name, orUnknown(addr))
}

func explainCertificate(name string, verr *tls.CertificateVerificationError) (summary, fix string) {
	var leaf *x509.Certificate
	if len(verr.UnverifiedCertificates) > 0 {
		leaf = verr.UnverifiedCertificates[0]
	}
	var hostErr x509.HostnameError
	var authErr x509.UnknownAuthorityError
	var invErr x509.CertificateInvalidError
	switch {
	case errors.As(verr.Err, &hostErr):
		names := namesOf(hostErr.Certificate)
		return fmt.Sprintf("the origin's certificate is valid for %s, not %s (the name the edge asked for)", names, name),
			fmt.Sprintf("Set domain_name to a name the certificate carries (%s), with connect_to if DNS for that name does not lead to this origin; or install a certificate on the origin that includes %s.", names, name)
	case errors.As(verr.Err, &authErr):
		// Name the leaf's issuer: the CA to trust (Go reports the last
		// certificate it tried, which may be a root the origin sent along).
		c := leaf
		if c == nil {
			c = authErr.Cert
		}
		issuer := "an unknown issuer"
		what := "is issued by an unknown issuer, which the edge does not trust"
		if c != nil {
			issuer = fmt.Sprintf("%q", c.Issuer.String())
			what = "is issued by " + issuer + ", which the edge does not trust"
			if bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil {
				what = "is self-signed (" + issuer + "), which the edge does not trust"
			}
		}
		return fmt.Sprintf("the origin's certificate for %s %s", name, what),
			fmt.Sprintf("If %s is your private CA, set trusted_ca to a PEM file with its certificate (probe: -ca FILE); otherwise give the origin a certificate from a publicly trusted CA. An origin that does not send its intermediate certificate fails the same way: make it send the full chain.", issuer)
	case errors.As(verr.Err, &invErr) && invErr.Reason == x509.Expired:
		c := invErr.Cert
		if c == nil {
			c = leaf
		}
		now := time.Now()
		if c != nil && now.Before(c.NotBefore) {
			return fmt.Sprintf("the certificate %q is not valid before %s (now %s)", c.Subject.String(), date(c.NotBefore), date(now)),
				"Check the clocks of the edge and the origin; if they are right, wait for the certificate to become valid or install one valid now."
		}
		if c != nil {
			return fmt.Sprintf("the certificate %q expired on %s (now %s; valid from %s)", c.Subject.String(), date(c.NotAfter), date(now), date(c.NotBefore)),
				"Renew the origin's certificate (check why automatic renewal failed) and reload the origin; if the dates look right, check the edge's clock."
		}
	}
	return "the origin's certificate was rejected: " + rootCause(verr),
		fmt.Sprintf("Give the origin a server certificate for %s from a trusted CA, valid now and for server authentication.", name)
}

// offeredVersions learns which TLS versions the origin at addr completes a
// handshake with, one version per connection.
func (d *dialer) offeredVersions(ctx context.Context, addr, name string) []uint16 {
	var offered []uint16
	for _, v := range allVersions() {
		cfg := &tls.Config{
			ServerName: name, MinVersion: v, MaxVersion: v,
			// Only the version is learnt here; the certificate was judged by
			// the real handshake, and nothing is sent over this connection.
			InsecureSkipVerify:   true,
			GetClientCertificate: d.tlsConf.GetClientCertificate,
		}
		if d.handshakeOnce(ctx, addr, cfg) == nil {
			offered = append(offered, v)
		}
	}
	return offered
}

func (d *dialer) handshakeOnce(ctx context.Context, addr string, cfg *tls.Config) error {
	actx, cancel := context.WithTimeout(ctx, d.o.ConnectionTimeout)
	defer cancel()
	var nd net.Dialer
	conn, err := nd.DialContext(actx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	return tls.Client(conn, cfg).HandshakeContext(actx)
}

// allowedVersions are the versions the edge offers, Go's defaults filling
// an unset bound.
func (d *dialer) allowedVersions() []uint16 {
	lo, hi := d.o.MinVersion, d.o.MaxVersion
	if lo == 0 {
		lo = tls.VersionTLS12
	}
	if hi == 0 {
		hi = tls.VersionTLS13
	}
	var out []uint16
	for _, v := range allVersions() {
		if v >= lo && v <= hi {
			out = append(out, v)
		}
	}
	return out
}

func versionList(vs []uint16) string {
	names := make([]string, len(vs))
	for i, v := range vs {
		names[i] = versionName(v)
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// namesOf lists the names a certificate is valid for.
func namesOf(c *x509.Certificate) string {
	if c == nil {
		return "(no certificate)"
	}
	names := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		if c.Subject.CommonName != "" {
			return fmt.Sprintf("no names (only the common name %q, which is not checked)", c.Subject.CommonName)
		}
		return "no names"
	}
	return strings.Join(names, ", ")
}

func certSubject(c *tls.Certificate) string {
	leaf := c.Leaf
	if leaf == nil && len(c.Certificate) > 0 {
		leaf, _ = x509.ParseCertificate(c.Certificate[0])
	}
	if leaf == nil {
		return "(unreadable)"
	}
	return fmt.Sprintf("%q issued by %q", leaf.Subject.String(), leaf.Issuer.String())
}

// acceptableCAs decodes the distinguished names the origin lists in its
// certificate request.
func acceptableCAs(info *tls.CertificateRequestInfo) []string {
	var out []string
	for _, raw := range info.AcceptableCAs {
		var seq pkix.RDNSequence
		if rest, err := asn1.Unmarshal(raw, &seq); err != nil || len(rest) > 0 {
			continue
		}
		var n pkix.Name
		n.FillFromRDNSequence(&seq)
		out = append(out, fmt.Sprintf("%q", n.String()))
	}
	return out
}

func date(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func orUnknown(addr string) string {
	if addr == "" {
		return "the origin"
	}
	return addr
}

// rootCause is the innermost error's text, the words that say why.
func rootCause(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}
