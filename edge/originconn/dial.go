package originconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Error is a failure to reach an origin, carrying its cause in words for
// the operational log, e.g. "x509: certificate is valid for
// alb.example.test, not lb-123.elb.example.test". The dialer returns it
// (wrapped by net/http), and so does a read that exceeds ResponseTimeout.
type Error struct {
	Kind     Kind   // how the edge classifies the failure
	Origin   string // the origin's domain name
	Addr     string // the address dialled, HOST:PORT ("" when the name did not resolve)
	Attempts int    // connection attempts made (0 for failures after connecting)
	Err      error  // the cause
}

// Error says which origin and address failed, and why.
func (e *Error) Error() string {
	s := "origin " + e.Origin
	if e.Addr != "" {
		s += " at " + e.Addr
	}
	if e.Attempts > 1 {
		s += fmt.Sprintf(" (%d attempts)", e.Attempts)
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns the cause, so errors.As finds the x509 or net error.
func (e *Error) Unwrap() error { return e.Err }

// Timeout reports whether the origin timed out, so that code which only
// knows net.Error still sees a timeout as one.
func (e *Error) Timeout() bool { return e.Kind == KindTimeout }

// Temporary completes net.Error; no origin failure is promised to pass.
func (e *Error) Temporary() bool { return false }

// Sentinels that tell the probe which timeout fired; both are wrapped
// inside an Error of KindTimeout.
var (
	errConnectTimeout  = errors.New("connection_timeout exceeded")
	errResponseTimeout = errors.New("response_timeout exceeded")
)

// hooks let the probe watch a dial without changing it; the edge's
// transport has none. They may be called from several goroutines.
type hooks struct {
	dialed        func(addr string)                      // a TCP connection was made to addr
	handshake     func(state tls.ConnectionState)        // a TLS handshake succeeded
	certRequested func(info *tls.CertificateRequestInfo) // the origin asked for a client certificate
}

// dialer connects to one origin; one is shared by all connections of a
// transport.
type dialer struct {
	o        Options // with defaults applied
	tlsConf  *tls.Config
	resolver *net.Resolver
	hooks    *hooks
}

func newDialer(o Options, h *hooks) (*dialer, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("origin %s: %w", o.DomainName, err)
	}
	d := &dialer{o: o, hooks: h, resolver: net.DefaultResolver}
	if o.Resolver != "" {
		server := o.Resolver
		d.resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var nd net.Dialer
			return nd.DialContext(ctx, network, server)
		}}
	}
	d.tlsConf = &tls.Config{
		ServerName: o.DomainName,
		RootCAs:    o.RootCAs,
		MinVersion: o.MinVersion,
		MaxVersion: o.MaxVersion,
		// HTTP/1.1 only, as CloudFront speaks to origins; offering h2 would let
		// the origin pick a protocol this transport does not use.
		NextProtos: []string{"http/1.1"},
		// Resumption makes the handshakes of new pooled connections cheap.
		ClientSessionCache: tls.NewLRUClientSessionCache(64),
		// A callback rather than Certificates: Go would silently send no
		// certificate when it does not match the CAs the origin lists, and the
		// origin's refusal would then look like a missing certificate.
		GetClientCertificate: func(info *tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if h != nil && h.certRequested != nil {
				h.certRequested(info)
			}
			if o.ClientCertificate != nil {
				return o.ClientCertificate, nil
			}
			return &tls.Certificate{}, nil
		},
	}
	return d, nil
}

// endpoint is where a request for addr (the URL's HOST:PORT) goes: the
// name to verify, and the host and port to dial.
func (d *dialer) endpoint(addr string, useTLS bool) (name, host, port string, err error) {
	urlHost, urlPort, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", "", fmt.Errorf("origin address %q: %w", addr, err)
	}
	name = d.o.DomainName
	if name == "" {
		name = urlHost
	}
	host, port = name, urlPort
	p := d.o.HTTPPort
	if useTLS {
		p = d.o.HTTPSPort
	}
	if p != 0 {
		port = strconv.Itoa(p)
	}
	if d.o.ConnectTo != "" {
		h, cp, _ := splitConnectTo(d.o.ConnectTo) // validated in withDefaults
		host = h
		if cp != "" {
			port = cp
		}
	}
	return name, host, port, nil
}

// dial connects, with TLS when useTLS, retrying up to ConnectionAttempts.
// The returned conn enforces ResponseTimeout (see timedConn).
func (d *dialer) dial(ctx context.Context, addr string, useTLS bool) (net.Conn, error) {
	name, host, port, err := d.endpoint(addr, useTLS)
	if err != nil {
		return nil, &Error{Kind: KindConnect, Origin: addr, Err: err}
	}
	var lastErr error
	var lastAddr string
	attempts := 0
	for attempts < d.o.ConnectionAttempts {
		attempts++
		conn, a, err := d.attempt(ctx, name, host, port, useTLS)
		if err == nil {
			return newTimedConn(conn, d.o.ResponseTimeout, name, a), nil
		}
		lastErr, lastAddr = err, a
		if ctx.Err() != nil || !retryable(err) {
			break
		}
	}
	return nil, d.failure(ctx, name, lastAddr, attempts, lastErr)
}

// attempt is one try: resolve, connect, handshake, all within
// ConnectionTimeout. It returns the address it dialled last.
func (d *dialer) attempt(ctx context.Context, name, host, port string, useTLS bool) (net.Conn, string, error) {
	actx, cancel := context.WithTimeoutCause(ctx, d.o.ConnectionTimeout, errConnectTimeout)
	defer cancel()
	ips, err := d.resolve(actx, host)
	if err != nil {
		return nil, "", err
	}
	var conn net.Conn
	var addr string
	for i, ip := range ips {
		addr = net.JoinHostPort(ip.String(), port)
		// Share the attempt's time among the addresses left, as net.Dialer
		// does, so that one dead address does not use it all.
		dctx, dcancel := actx, context.CancelFunc(func() {})
		if dl, ok := actx.Deadline(); ok && len(ips)-i > 1 {
			dctx, dcancel = context.WithDeadline(actx, time.Now().Add(time.Until(dl)/time.Duration(len(ips)-i)))
		}
		var nd net.Dialer
		conn, err = nd.DialContext(dctx, "tcp", addr)
		dcancel()
		if err == nil {
			break
		}
	}
	if err != nil {
		return nil, addr, err
	}
	if d.hooks != nil && d.hooks.dialed != nil {
		d.hooks.dialed(addr)
	}
	if !useTLS {
		return conn, addr, nil
	}
	cfg := d.tlsConf
	if cfg.ServerName != name {
		cfg = cfg.Clone() // no DomainName: verify the request's host
		cfg.ServerName = name
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(actx); err != nil {
		conn.Close()
		return nil, addr, err
	}
	if d.hooks != nil && d.hooks.handshake != nil {
		d.hooks.handshake(tc.ConnectionState())
	}
	return tc, addr, nil
}

// resolve returns the addresses of host through the configured resolver.
func (d *dialer) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	ips, err := d.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && d.o.Resolver != "" {
			// Go names the server from /etc/resolv.conf even when Dial went
			// elsewhere: name the one actually asked.
			c := *dnsErr
			c.Server = d.o.Resolver
			return nil, &c
		}
		return nil, err
	}
	if len(ips) == 0 {
		return nil, &net.DNSError{Err: "no addresses", Name: host, Server: d.o.Resolver, IsNotFound: true}
	}
	for i := range ips {
		ips[i] = ips[i].Unmap()
	}
	return ips, nil
}

// retryable says whether another attempt could succeed: a dropped SYN or a
// refused or reset connection may be transient; a certificate, an alert
// from the origin or a name that does not exist will not change.
func retryable(err error) bool {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return !dnsErr.IsNotFound
	}
	var verr *tls.CertificateVerificationError
	var rhe tls.RecordHeaderError
	if errors.As(err, &verr) || errors.As(err, &rhe) || isRemoteAlert(err) {
		return false
	}
	return true
}

// failure turns the last attempt's error into an Error of the right Kind.
func (d *dialer) failure(ctx context.Context, name, addr string, attempts int, err error) *Error {
	e := &Error{Origin: name, Addr: addr, Attempts: attempts, Err: err}
	var dnsErr *net.DNSError
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		e.Kind = KindCanceled
	case ctx.Err() != nil:
		e.Kind = KindTimeout // the caller's own deadline
	case errors.As(err, &dnsErr):
		e.Kind = KindDNS
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		e.Kind = KindTimeout
		e.Err = fmt.Errorf("%w: no connection within %s: %w", errConnectTimeout, d.o.ConnectionTimeout, err)
	default:
		e.Kind = KindConnect
	}
	return e
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isRemoteAlert reports a TLS alert sent by the origin ("remote error: tls:
// certificate required"): the origin refused the handshake.
func isRemoteAlert(err error) bool {
	var oe *net.OpError
	for e := err; errors.As(e, &oe); e = oe.Err {
		if oe.Op == "remote error" {
			return true
		}
	}
	return false
}
