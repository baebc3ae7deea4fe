package origin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgegate/edgegate/acme"
	"github.com/edgegate/edgegate/internal/reuseport"
	"github.com/edgegate/edgegate/origin/accesslog"
	"github.com/rs/zerolog"
)

// acmeTLS1 is the ALPN protocol of ACME TLS-ALPN-01 challenges.
const acmeTLS1 = "acme-tls/1"

// listener is the runtime of one configured listener.
type listener struct {
	s        *Server
	cfg      Listener
	name     string // PROTOCOL:PORT once bound
	port     int
	log      zerolog.Logger
	verifier *clientVerifier // nil without mutual TLS
	timeouts Timeouts        // of the config the listener was made from

	mgr       *acme.Manager // HTTPS and TLS: set by setupTLS
	tlsConfig *tls.Config
	ln        *pausableListener
	// handedOver is set when a reload's successor inherited the socket:
	// the listener then stops accepting without closing it.
	handedOver atomic.Bool
	// fresh holds HTTP connections accepted whose first request has not
	// been read yet, which a drain must let arrive (see quiesce).
	fresh connStates

	group  *targetGroup // default forward; nil for a redirect
	routes []sniRoute

	// HTTP and HTTPS listeners.
	http     *http.Server
	handler  *httpHandler
	inflight sync.WaitGroup // handlers, which outlive the server for upgraded connections

	// conns tracks raw connections this package owns: TLS handshakes in
	// progress (HTTPS) and whole TCP/TLS streams.
	conns connSet
}

// sniRoute is a compiled SNIRoute.
type sniRoute struct {
	name     string // lower case, without a leading "*."
	wildcard bool
	g        *targetGroup
}

func (r sniRoute) match(sni string) bool {
	if !r.wildcard {
		return sni == r.name
	}
	head, rest, ok := strings.Cut(sni, ".")
	return ok && head != "" && rest == r.name
}

func newListener(s *Server, cfg *Config, idx int, lc Listener, groups map[string]*targetGroup) (*listener, error) {
	l := &listener{s: s, cfg: lc, timeouts: cfg.Origin.Timeouts, log: s.log.With().Str("listener", lc.Protocol).Logger()}
	l.conns.init()
	if m := lc.MutualTLS; m != nil && m.Mode == MTLSVerify {
		v, err := loadClientVerifier(m)
		if err != nil {
			return nil, cfg.errorf(fmt.Sprintf("origin.listeners[%d].mutual_tls", idx), "%v", err)
		}
		l.verifier = v
	}
	if lc.DefaultAction.Forward != "" {
		l.group = groups[lc.DefaultAction.Forward]
	}
	for _, r := range lc.SNIRoutes {
		name := strings.ToLower(strings.TrimSuffix(r.ServerName, "."))
		l.routes = append(l.routes, sniRoute{name: strings.TrimPrefix(name, "*."), wildcard: strings.HasPrefix(name, "*."), g: groups[r.Forward]})
	}
	if lc.Protocol == ProtocolHTTP || lc.Protocol == ProtocolHTTPS {
		l.handler = newHTTPHandler(l)
		to := cfg.Origin.Timeouts
		l.http = &http.Server{
			Handler:           l.handler,
			ReadHeaderTimeout: to.ReadHeader.D(),
			IdleTimeout:       to.Idle.D(),
			MaxHeaderBytes:    int(to.MaxHeaderBytes),
			ErrorLog:          log.New(listenerLog{l}, "", 0),
			ConnState:         l.connState,
			// TLSConfig stays nil: connections arrive with their handshake
			// done, and a nil TLSConfig makes Serve set up HTTP/2 for those
			// that negotiated h2.
		}
	}
	return l, nil
}

// setupTLS loads or obtains the listener's certificates.
func (l *listener) setupTLS(ctx context.Context) error {
	if l.cfg.Certificates == nil {
		return nil
	}
	mgr, err := acme.NewManager(ctx, *l.cfg.Certificates, acme.Options{
		Names: l.cfg.ServerNames, FallbackToFirst: true, Logger: l.log,
	})
	if err != nil {
		return fmt.Errorf("listener %s:%d: %w", l.cfg.Protocol, *l.cfg.Port, err)
	}
	l.mgr = mgr
	acmeALPN := slices.Contains(mgr.NextProtos(), acmeTLS1)
	protos := mgr.NextProtos()
	if l.cfg.Protocol == ProtocolTLS {
		// The stream is opaque: offering h2 or http/1.1 would tell clients
		// something about the targets we do not know.
		protos = nil
		if acmeALPN {
			protos = []string{acmeTLS1}
		}
	}
	cfg := &tls.Config{
		GetCertificate: mgr.GetCertificate,
		NextProtos:     protos,
		MinVersion:     tls.VersionTLS12,
	}
	if l.verifier != nil {
		// An ACME CA validating TLS-ALPN-01 has no client certificate; give
		// it a configuration that offers nothing but acme-tls/1, so that a
		// client cannot use the same door to reach the targets (such
		// connections are closed after the handshake).
		challenge := cfg.Clone()
		challenge.NextProtos = []string{acmeTLS1}
		l.verifier.apply(cfg)
		if acmeALPN {
			cfg.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
				if slices.Contains(h.SupportedProtos, acmeTLS1) {
					return challenge, nil
				}
				return nil, nil
			}
		}
	}
	l.tlsConfig = cfg
	return nil
}

func (l *listener) bind(ctx context.Context, lc *net.ListenConfig) error {
	addr := net.JoinHostPort(l.cfg.Address, strconv.Itoa(*l.cfg.Port))
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listener %s %s: %w", l.cfg.Protocol, addr, err)
	}
	l.adopt(ln)
	return nil
}

// inherit serves from the socket of a listener a reload retires, when it is
// bound where this one's config asks: connections queued on it are then
// accepted here instead of being reset when the old listener closes.
func (l *listener) inherit(old *listener) error {
	ln, err := reuseport.Inherit(old.ln.Listener)
	if err != nil {
		return fmt.Errorf("listener %s: %w", old.name, err)
	}
	old.handedOver.Store(true)
	l.adopt(ln)
	return nil
}

func (l *listener) adopt(ln net.Listener) {
	l.ln = newPausableListener(ln)
	l.name = listenerName(l.cfg.Protocol, ln.Addr())
	if ta, ok := ln.Addr().(*net.TCPAddr); ok {
		l.port = ta.Port
	}
	l.log = l.s.log.With().Str("listener", l.name).Logger()
}

// serve runs until shutdown; it returns nil after a shutdown.
func (l *listener) serve(ctx context.Context) error {
	switch l.cfg.Protocol {
	case ProtocolHTTP, ProtocolHTTPS:
		var h http.Handler = l.handler
		if l.cfg.Protocol == ProtocolHTTP {
			// Port 80 answers HTTP-01 challenges for every ACME listener,
			// those a reload adds included.
			h = l.s.challengeHandler(l.handler)
		}
		l.http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			l.inflight.Add(1)
			defer l.inflight.Done()
			h.ServeHTTP(w, r)
		})
		l.http.BaseContext = func(net.Listener) context.Context { return ctx }
		var err error
		if l.tlsConfig == nil {
			err = l.http.Serve(l.ln)
		} else {
			hl := &handoffListener{ln: l.ln, conns: make(chan net.Conn), done: make(chan struct{})}
			accepted := make(chan struct{})
			go func() {
				defer close(accepted)
				acceptLoop(l.ln, l.log, func(c net.Conn) {
					if !l.conns.add(c) {
						c.Close()
						return
					}
					go func() {
						defer l.conns.done(c)
						l.handshakeHTTPS(ctx, hl, c)
					}()
				})
			}()
			err = l.http.Serve(hl)
			hl.Close()
			<-accepted
		}
		l.inflight.Wait()
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	default:
		acceptLoop(l.ln, l.log, func(c net.Conn) {
			if !l.conns.add(c) {
				c.Close()
				return
			}
			go func() {
				defer l.conns.done(c)
				l.serveStream(ctx, c)
			}()
		})
		l.conns.wg.Wait()
		return nil
	}
}

// shutdown stops accepting and waits for work in progress until ctx ends,
// then closes what is left.
func (l *listener) shutdown(ctx context.Context) {
	if l.http != nil {
		l.quiesce(ctx)
		// Pending TLS handshakes would never be served: end them now.
		l.conns.closeAll(false)
		if err := l.http.Shutdown(ctx); err != nil {
			l.log.Warn().Err(err).Msg("drain timed out; closing remaining connections")
			l.http.Close()
		}
		l.conns.closeAll(true)
		return
	}
	l.ln.Close()
	if !l.conns.wait(ctx) {
		l.log.Warn().Int("connections", l.conns.count()).Msg("drain timed out; closing remaining connections")
		l.conns.closeAll(true)
	}
}

// quiesceWait bounds how long a drain waits for connections accepted just
// before it to send their first request.
const quiesceWait = 2 * time.Second

// quiesce stops accepting and lets what was already accepted arrive before
// the HTTP server's Shutdown, which closes a connection whose request it
// reads after Shutdown began: a viewer that connected just before a reload
// or a stop would otherwise lose its request. Keep-alives end, so each
// connection closes after the response it is serving.
func (l *listener) quiesce(ctx context.Context) {
	l.ln.pause()
	if !l.handedOver.Load() {
		l.ln.closeSocket() // new connections are refused at once
	} // else the successor accepts from the same socket
	l.http.SetKeepAlivesEnabled(false)
	wctx, cancel := context.WithTimeout(ctx, quiesceWait)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for l.fresh.count() > 0 || l.conns.count() > 0 {
		select {
		case <-wctx.Done():
			return
		case <-tick.C:
		}
	}
}

// handshakeHTTPS completes a client's TLS handshake before handing the
// connection to the HTTP server, so that a failed handshake (a refused
// client certificate above all) is logged with its reason.
func (l *listener) handshakeHTTPS(ctx context.Context, hl *handoffListener, raw net.Conn) {
	tc, ok := l.handshake(ctx, raw, accesslog.TypeHTTPS)
	if !ok {
		// Served connections are counted by connState; count this one here.
		l.s.metrics.add(mConnections, 1, "listener", l.name)
		return
	}
	if !hl.deliver(tc) {
		tc.Close()
	}
}

// handshake runs the server side of a TLS handshake with the handshake
// timeout. On failure it logs and counts the failure and closes raw.
func (l *listener) handshake(ctx context.Context, raw net.Conn, logType string) (*tls.Conn, bool) {
	start := time.Now()
	tc := tls.Server(raw, l.tlsConfig)
	hctx, cancel := context.WithTimeout(ctx, l.timeouts.TLSHandshake.D())
	err := tc.HandshakeContext(hctx)
	cancel()
	if err == nil && tc.ConnectionState().NegotiatedProtocol == acmeTLS1 {
		tc.Close() // a TLS-ALPN-01 validation: the certificate was the answer
		return nil, false
	}
	if err == nil {
		return tc, true
	}
	raw.Close()
	reason := handshakeReason(err)
	l.s.metrics.add(mClientTLSErrors, 1, "listener", l.name, "reason", reason)
	ev := l.log.Debug()
	if l.verifier != nil && reason != accesslog.ReasonClientTLSNegotiationError {
		ev = l.log.Info()
	}
	ev.Str("client", raw.RemoteAddr().String()).Str("reason", reason).Err(err).Msg("client TLS handshake failed")
	l.s.logRecord(l, &accesslog.Record{
		Type: logType, Time: time.Now(), Listener: l.name, Client: raw.RemoteAddr().String(),
		RequestProcessing: time.Since(start), TargetProcessing: accesslog.NotReached, ResponseProcessing: accesslog.NotReached,
		TargetGroup: l.cfg.DefaultAction.Forward, DomainName: tc.ConnectionState().ServerName, ErrorReason: reason,
	})
	return nil, false
}

// connState counts HTTP connections.
func (l *listener) connState(c net.Conn, state http.ConnState) {
	l.fresh.set(c, state == http.StateNew)
	switch state {
	case http.StateNew:
		l.s.metrics.add(mConnections, 1, "listener", l.name)
		l.s.metrics.add(mActiveConnections, 1, "listener", l.name)
	case http.StateClosed, http.StateHijacked:
		l.s.metrics.add(mActiveConnections, -1, "listener", l.name)
	}
}

// acceptLoop accepts until ln is closed, calling handle for each
// connection on the accepting goroutine (handle starts its own goroutine
// after registering the connection, so that a drain cannot miss it). Accept errors other than a closed
// listener (such as running out of file descriptors) are retried after a
// growing pause of at most a second, as net/http does.
func acceptLoop(ln net.Listener, log zerolog.Logger, handle func(net.Conn)) {
	var pause time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			log.Error().Err(err).Stringer("retry_in", pause).Msg("accept failed")
			time.Sleep(pause)
			continue
		}
		pause = 0
		handle(c)
	}
}

// pausableListener can stop accepting without closing its socket, for a
// listener whose socket a reload's successor inherited: closing it would
// be harmless (the successor holds a duplicate), but Accept must stop
// taking connections the successor is there to serve.
type pausableListener struct {
	net.Listener
	paused    chan struct{}
	pauseOnce sync.Once
	closed    chan struct{}
	closeOnce sync.Once
	sockOnce  sync.Once
	sockErr   error
}

func newPausableListener(ln net.Listener) *pausableListener {
	return &pausableListener{Listener: ln, paused: make(chan struct{}), closed: make(chan struct{})}
}

// Accept returns what the socket accepts until paused; once paused it
// waits for Close and reports a closed listener.
func (p *pausableListener) Accept() (net.Conn, error) {
	c, err := p.Listener.Accept()
	if err == nil {
		return c, nil
	}
	select {
	case <-p.paused:
		<-p.closed
		return nil, net.ErrClosed
	default:
		return nil, err
	}
}

// pause ends Accept: a deadline in the past wakes a blocked Accept on this
// descriptor only, not on the successor's duplicate.
func (p *pausableListener) pause() {
	p.pauseOnce.Do(func() {
		close(p.paused)
		if d, ok := p.Listener.(interface{ SetDeadline(time.Time) error }); ok {
			_ = d.SetDeadline(time.Now())
		}
	})
}

// closeSocket closes the descriptor, once; a paused Accept still waits for
// Close, so that the HTTP server sees its listener closed only by its own
// Shutdown (and returns ErrServerClosed, not an accept error).
func (p *pausableListener) closeSocket() error {
	p.sockOnce.Do(func() { p.sockErr = p.Listener.Close() })
	return p.sockErr
}

// Close closes the descriptor and ends a paused Accept.
func (p *pausableListener) Close() error {
	p.pause()
	p.closeOnce.Do(func() { close(p.closed) })
	return p.closeSocket()
}

// connStates tracks which HTTP connections are still in http.StateNew.
type connStates struct {
	mu sync.Mutex
	m  map[net.Conn]struct{}
}

func (cs *connStates) set(c net.Conn, isNew bool) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if isNew {
		if cs.m == nil {
			cs.m = map[net.Conn]struct{}{}
		}
		cs.m[c] = struct{}{}
	} else {
		delete(cs.m, c)
	}
}

func (cs *connStates) count() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.m)
}

// handoffListener gives the HTTP server connections whose TLS handshake
// this package has completed.
type handoffListener struct {
	ln    net.Listener
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (h *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-h.conns:
		return c, nil
	case <-h.done:
		return nil, net.ErrClosed
	}
}

// Close stops Accept and closes the underlying listener.
func (h *handoffListener) Close() error {
	h.once.Do(func() { close(h.done); h.ln.Close() })
	return nil
}

func (h *handoffListener) Addr() net.Addr { return h.ln.Addr() }

// deliver hands c to Accept; false once the listener is closed.
func (h *handoffListener) deliver(c net.Conn) bool {
	select {
	case h.conns <- c:
		return true
	case <-h.done:
		return false
	}
}

// connSet tracks connections owned by a listener and the goroutines
// serving them, for draining.
type connSet struct {
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	forced bool
	wg     sync.WaitGroup
}

func (cs *connSet) init() { cs.conns = map[net.Conn]struct{}{} }

// add registers c; false when the set is closed (shutting down).
func (cs *connSet) add(c net.Conn) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.closed {
		return false
	}
	cs.conns[c] = struct{}{}
	cs.wg.Add(1)
	return true
}

func (cs *connSet) done(c net.Conn) {
	cs.mu.Lock()
	delete(cs.conns, c)
	cs.mu.Unlock()
	cs.wg.Done()
}

func (cs *connSet) count() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.conns)
}

// closeAll refuses new connections and closes the current ones; forced
// marks them as cut short by the shutdown (for the access log).
func (cs *connSet) closeAll(forced bool) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.closed = true
	cs.forced = cs.forced || forced
	for c := range cs.conns {
		c.Close()
	}
}

// wasForced reports whether a shutdown closed connections.
func (cs *connSet) wasForced() bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.forced
}

// wait waits for every tracked connection to finish, or for ctx.
func (cs *connSet) wait(ctx context.Context) bool {
	done := make(chan struct{})
	go func() { cs.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// listenerLog turns net/http's error log lines into zerolog warnings of the
// listener (read at each line: the listener is named once bound).
type listenerLog struct{ l *listener }

func (w listenerLog) Write(p []byte) (int, error) {
	w.l.log.Warn().Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}

// challengeHandler answers the HTTP-01 challenges of the current ACME
// listeners, then next.
func (s *Server) challengeHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		ls := s.listeners
		s.mu.Unlock()
		h := next
		for _, o := range ls {
			if o.mgr != nil && o.cfg.Certificates.ACME != nil {
				h = o.mgr.HTTPChallengeHandler(h)
			}
		}
		h.ServeHTTP(w, r)
	})
}
