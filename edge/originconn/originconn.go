// Package originconn is how the edge connects to an origin: DNS or a
// connect_to override, TCP, TLS with the origin's domain name as SNI and as
// the name its certificate must carry, retries and timeouts as CloudFront
// applies them, and pooled HTTP/1.1 keep-alive connections.
//
// It is the one place that knows how, so that the edge's proxy and
// `edgegate probe` cannot disagree: when the edge answers 502 with
// OriginConnectError, the probe reproduces the very same handshake and says
// why in words (for instance "the certificate is valid for alb.example.test,
// not lb-123.elb.example.test") and what to change.
package originconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/edgegate/edgegate/internal/tlsname"
)

// Defaults, as CloudFront documents them for custom origins, except the
// keep-alive timeout.
const (
	DefaultConnectionAttempts = 3
	DefaultConnectionTimeout  = 10 * time.Second
	DefaultResponseTimeout    = 30 * time.Second
	// DefaultKeepaliveTimeout is 50s, not CloudFront's 5s: with 5s a pause
	// of a few seconds emptied the pool and every connection paid a new
	// TLS handshake (issue 14). 50s stays below the idle timeouts of the
	// usual origins (ALB and the origin tier 60s, nginx 75s), so the origin
	// does not close a connection the edge is about to reuse; an origin
	// with a shorter one (Apache's 5s) needs keepalive_timeout below it.
	DefaultKeepaliveTimeout       = 50 * time.Second
	DefaultMaxIdleConns           = 256
	DefaultMaxResponseHeaderBytes = 64 << 10
)

// Options describe one origin as the edge connects to it. The edge maps its
// configuration onto them; this package reads no YAML. Zero values take the
// defaults above.
type Options struct {
	// DomainName is sent as SNI and is the name the origin's certificate
	// must carry; it is also the name resolved, unless ConnectTo is set.
	// Empty means the host of each request's URL.
	DomainName string
	// ConnectTo is an optional HOST or HOST:PORT dialled instead of
	// resolving DomainName (like curl --resolve); SNI and certificate
	// verification still use DomainName.
	ConnectTo string
	// HTTPPort and HTTPSPort are the ports dialled for http:// and https://
	// requests. Zero means the port of the request's URL (80 or 443 unless
	// the URL names one). Ignored when ConnectTo has a port.
	HTTPPort, HTTPSPort int
	// RootCAs verify the origin's chain; nil means the system roots.
	RootCAs *x509.CertPool
	// MinVersion and MaxVersion bound the TLS versions offered (the
	// origin's ssl_protocols); zero leaves Go's defaults.
	MinVersion, MaxVersion uint16
	// ClientCertificate is presented when the origin asks for one (mutual
	// TLS to the origin tier).
	ClientCertificate *tls.Certificate
	// ConnectionAttempts is how many times TCP connect plus TLS handshake
	// are tried before giving up: 1 to 3.
	ConnectionAttempts int
	// ConnectionTimeout bounds each attempt (name resolution, connect and
	// handshake).
	ConnectionTimeout time.Duration
	// ResponseTimeout bounds the wait for the first byte of a response and
	// every gap between reads of its body (and between writes of a request
	// body), as CloudFront's origin response timeout does.
	ResponseTimeout time.Duration
	// KeepaliveTimeout is how long an idle pooled connection is kept.
	KeepaliveTimeout time.Duration
	// MaxIdleConns is the idle connections kept for the origin; Go's
	// default of 2 per host would cost a handshake per request under load.
	MaxIdleConns int
	// MaxResponseHeaderBytes limits the response header size; beyond it the
	// request fails with OriginHeaderTooBigError.
	MaxResponseHeaderBytes int64
	// Resolver is the HOST:PORT of a DNS server (queried over UDP, and TCP
	// for truncated answers) for DomainName and a ConnectTo name; empty
	// means the system resolver.
	Resolver string
}

// withDefaults validates o and fills in the defaults, so that a bad value is
// an error at start-up rather than a strange failure on the first request.
func (o Options) withDefaults() (Options, error) {
	if o.ConnectionAttempts == 0 {
		o.ConnectionAttempts = DefaultConnectionAttempts
	}
	if o.ConnectionAttempts < 1 || o.ConnectionAttempts > 3 {
		return o, fmt.Errorf("connection_attempts %d: must be 1 to 3", o.ConnectionAttempts)
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"connection_timeout", &o.ConnectionTimeout, DefaultConnectionTimeout},
		{"response_timeout", &o.ResponseTimeout, DefaultResponseTimeout},
		{"keepalive_timeout", &o.KeepaliveTimeout, DefaultKeepaliveTimeout},
	} {
		if *d.v < 0 {
			return o, fmt.Errorf("%s %s: must not be negative", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if o.MaxIdleConns == 0 {
		o.MaxIdleConns = DefaultMaxIdleConns
	}
	if o.MaxResponseHeaderBytes == 0 {
		o.MaxResponseHeaderBytes = DefaultMaxResponseHeaderBytes
	}
	if o.MaxIdleConns < 0 || o.MaxResponseHeaderBytes < 0 {
		return o, errors.New("max idle connections and max response header bytes must not be negative")
	}
	for _, p := range []struct {
		name string
		v    int
	}{{"http_port", o.HTTPPort}, {"https_port", o.HTTPSPort}} {
		if p.v < 0 || p.v > 65535 {
			return o, fmt.Errorf("%s %d: not a port", p.name, p.v)
		}
	}
	if o.MinVersion != 0 && o.MaxVersion != 0 && o.MinVersion > o.MaxVersion {
		return o, fmt.Errorf("ssl_protocols: minimum %s is above maximum %s", versionName(o.MinVersion), versionName(o.MaxVersion))
	}
	if o.ConnectTo != "" {
		if _, _, err := splitConnectTo(o.ConnectTo); err != nil {
			return o, err
		}
	}
	if o.Resolver != "" {
		if _, port, err := net.SplitHostPort(o.Resolver); err != nil || port == "" {
			return o, fmt.Errorf("resolver %q: want HOST:PORT", o.Resolver)
		}
	}
	return o, nil
}

// splitConnectTo accepts HOST or HOST:PORT (port "" when absent).
func splitConnectTo(s string) (host, port string, err error) {
	if h, p, err := net.SplitHostPort(s); err == nil {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", "", fmt.Errorf("connect_to %q: bad port", s)
		}
		return h, p, nil
	}
	if strings.ContainsAny(s, "/ ") || s == "" {
		return "", "", fmt.Errorf("connect_to %q: want HOST or HOST:PORT", s)
	}
	return strings.Trim(s, "[]"), "", nil
}

// LoadRoots returns the system roots plus the PEM certificates in file (an
// origin's trusted_ca); "" means the system roots only.
func LoadRoots(file string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		// No system store (a minimal container): the file alone must do.
		pool = x509.NewCertPool()
	}
	if file == "" {
		return pool, nil
	}
	pemData, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("trusted CA file: %w", err)
	}
	if !pool.AppendCertsFromPEM(pemData) {
		return nil, fmt.Errorf("trusted CA file %s: no PEM certificates in it", file)
	}
	return pool, nil
}

// ParseSSLProtocols maps ssl_protocols names (TLSv1, TLSv1.1, TLSv1.2,
// TLSv1.3) to the lowest and highest version allowed.
func ParseSSLProtocols(names []string) (lo, hi uint16, err error) {
	for _, n := range names {
		v, ok := versionByName(n)
		if !ok {
			return 0, 0, fmt.Errorf("ssl_protocols: %q: use TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3", n)
		}
		if lo == 0 || v < lo {
			lo = v
		}
		if v > hi {
			hi = v
		}
	}
	return lo, hi, nil
}

func versionByName(name string) (uint16, bool) {
	for _, v := range allVersions() {
		if versionName(v) == name {
			return v, true
		}
	}
	return 0, false
}

// allVersions lists the TLS versions an origin may speak, oldest first.
func allVersions() []uint16 {
	return []uint16{tls.VersionTLS10, tls.VersionTLS11, tls.VersionTLS12, tls.VersionTLS13}
}

// versionName names a TLS version as ssl_protocols does.
func versionName(v uint16) string { return tlsname.VersionOrHex(v) }

// NewTransport returns the pooled HTTP/1.1 transport for one origin; it
// serves http:// and https:// URLs. Connections go to ConnectTo or to the
// addresses of DomainName, with SNI DomainName and the chain and name
// verified, retried up to ConnectionAttempts times; see Options for the
// timeouts. Errors it returns are classified by Classify.
func NewTransport(o Options) (*http.Transport, error) {
	d, err := newDialer(o, nil)
	if err != nil {
		return nil, err
	}
	return d.transport(), nil
}

// transport builds the http.Transport around the dialer.
func (d *dialer) transport() *http.Transport {
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true) // CloudFront speaks HTTP/1.1 to origins
	return &http.Transport{
		Proxy:                  nil, // an edge dials its origins itself, never through $HTTPS_PROXY
		DialContext:            func(ctx context.Context, _, addr string) (net.Conn, error) { return d.dial(ctx, addr, false) },
		DialTLSContext:         func(ctx context.Context, _, addr string) (net.Conn, error) { return d.dial(ctx, addr, true) },
		Protocols:              protocols,
		MaxIdleConns:           d.o.MaxIdleConns,
		MaxIdleConnsPerHost:    d.o.MaxIdleConns,
		IdleConnTimeout:        d.o.KeepaliveTimeout,
		MaxResponseHeaderBytes: d.o.MaxResponseHeaderBytes,
		// A proxy must pass the origin's encoding through, not decompress it.
		DisableCompression: true,
		// Response time limits live on the connection (see timedConn), which
		// also covers gaps in the body; the transport's own header timeout
		// would only duplicate the first.
		ResponseHeaderTimeout: 0,
	}
}
