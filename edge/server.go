// Package edge is edgegate's edge tier: it answers viewers on HTTP (with a
// redirect to HTTPS) and HTTPS, routes each request by host and path to a
// behavior, re-originates over HTTPS to the behavior's origin with the
// origin's name as SNI and verified against its certificate, and ends
// every request in a CloudFront-compatible standard log line whose result
// types say exactly what happened.
package edge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"maps"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgegate/edgegate/acme"
	"github.com/edgegate/edgegate/cache"
	"github.com/edgegate/edgegate/edge/accesslog"
	"github.com/edgegate/edgegate/internal/reuseport"
	"github.com/rs/zerolog"
)

// Options are the run-time dependencies of a Server.
type Options struct {
	// Logger receives the operational log (JSON).
	Logger zerolog.Logger
	// ConfigPath is the file Reload reads again; Reload is refused when it
	// is empty (a config that came from elsewhere).
	ConfigPath string
}

// Server is one edge node. What a reload can change lives in a state
// snapshot that each request takes once, so a request runs on one config
// from start to end; the cache, the statistics and unchanged listeners,
// certificates and origin connection pools belong to the node and outlive
// reloads.
type Server struct {
	opts   Options
	log    zerolog.Logger
	stdlog *log.Logger
	st     atomic.Pointer[state]
	stats  *stats
	cache  *edgeCache
	// compress makes the compressed variants of behaviors with compress: true.
	compress *compressor

	accessMu sync.RWMutex // writers hold R while writing a line; a reload or reopen holds W to swap or close
	access   *accesslog.Writer

	reloadMu sync.Mutex // one reload at a time, and none during shutdown
	closed   bool       // Shutdown has begun; guarded by reloadMu

	baseCtx        context.Context
	stopBackground context.CancelFunc

	lnMu      sync.RWMutex
	listeners map[string]*listener // "http", "https", "admin"
	quic      *quicListener        // HTTP/3 beside "https"; nil when off
	retired   sync.WaitGroup       // servers of re-bound listeners still draining
	inflight  sync.WaitGroup
	openConns sync.WaitGroup // viewer connections not yet closed (their refused requests are logged on close)
	serveErr  chan error
}

// state is what one config compiles to.
type state struct {
	cfg       *Config
	certs     *acme.Manager
	challenge http.Handler // port 80: ACME HTTP-01 answers, else serveViewer
	byHost    map[string]*distribution
	dists     []*distribution
	via       string // this edge's Via hop, "1.1 LOCATION (edgegate)"
}

// listener is one bound viewer or admin socket and its server.
type listener struct {
	addr string // as configured
	ln   net.Listener
	srv  *http.Server
}

// distribution is a configured distribution compiled for serving.
type distribution struct {
	cfg       *Distribution
	tlsConfig *tls.Config
	quicTLS   *tls.Config // nil unless the distribution offers HTTP/3
	behaviors []*behavior // in order, default last
	targets   map[string]*target
	origins   map[string]*origin
}

// behavior is a compiled cache behavior.
type behavior struct {
	cfg     *Behavior
	pattern string // "" for the default behavior
	methods map[string]bool
	// anyMethod passes every method, extension methods included, when the
	// behavior allows all of CloudFront's seven.
	anyMethod bool
	target    *target
	policy    cache.Policy // used unless cfg.CachePolicy.Disabled
	headers   *respHeaders // the response headers policy; nil for none
}

// allows reports whether the behavior accepts a method. CONNECT (a tunnel)
// and TRACE (a mirror of the request) are never passed, as at CloudFront.
func (b *behavior) allows(method string) bool {
	if b.methods[method] {
		return true
	}
	return b.anyMethod && method != http.MethodConnect && method != http.MethodTrace
}

// New builds an edge from a validated config: it loads certificates,
// prepares origin transports and opens the standard log.
func New(ctx context.Context, cfg *Config, opts Options) (*Server, error) {
	s := &Server{opts: opts, log: opts.Logger, stats: newStats(), serveErr: make(chan error, 8), listeners: map[string]*listener{}}
	s.stdlog = log.New(zerologWriter{s.log}, "", 0)
	var err error
	if s.compress, err = newCompressor(); err != nil {
		return nil, err
	}
	st, err := s.build(ctx, cfg, nil)
	if err != nil {
		return nil, err
	}
	if s.cache, err = newCache(cfg, s.log); err != nil {
		st.certs.Close()
		return nil, err
	}
	if s.access, err = openAccessLog(cfg); err != nil {
		st.certs.Close()
		return nil, err
	}
	s.st.Store(st)
	return s, nil
}

// openAccessLog opens the standard log, nil when logs are off.
func openAccessLog(cfg *Config) (*accesslog.Writer, error) {
	dir := cfg.Edge.Logs.Dir
	if dir == "" {
		return nil, nil
	}
	w, err := accesslog.NewWriter(accesslog.WriterConfig{Dir: dir, Prefix: cfg.Edge.Location, Rotate: cfg.Edge.Logs.Rotate.D(), Gzip: cfg.Edge.Logs.Gzip,
		FlushInterval: cfg.Edge.Logs.FlushInterval.D()})
	if err != nil {
		return nil, fmt.Errorf("edge standard logs: %w", err)
	}
	return w, nil
}

// state is the current config snapshot.
func (s *Server) state() *state { return s.st.Load() }

// aliases lists every distribution's aliases, in order.
func aliases(cfg *Config) []string {
	var names []string
	for i := range cfg.Distributions {
		names = append(names, cfg.Distributions[i].Aliases...)
	}
	return names
}

// build compiles cfg. With the running state old, it keeps what still
// applies: the certificate manager when the certificate settings and names
// are the same, and each origin's transport (its connection pool) when
// only its custom headers or origin path changed.
func (s *Server) build(ctx context.Context, cfg *Config, old *state) (*state, error) {
	st := &state{cfg: cfg, byHost: map[string]*distribution{}, via: viaHop(cfg.Edge.Location)}
	names := aliases(cfg)
	if old != nil && reflect.DeepEqual(old.cfg.Edge.Certificates, cfg.Edge.Certificates) &&
		old.cfg.Edge.Resolver == cfg.Edge.Resolver && slices.Equal(aliases(old.cfg), names) {
		st.certs = old.certs
	} else {
		// A new manager loads what storage holds and orders only names it
		// lacks: a reload that adds an alias orders that alias alone.
		certs, err := acme.NewManager(ctx, cfg.Edge.Certificates, acme.Options{Names: names, Resolver: cfg.Edge.Resolver, Logger: s.log})
		if err != nil {
			return nil, fmt.Errorf("edge certificates: %w", err)
		}
		st.certs = certs
	}
	fail := func(err error) (*state, error) {
		if old == nil || st.certs != old.certs {
			st.certs.Close()
		}
		return nil, err
	}
	if cfg.Edge.Certificates.ACME == nil {
		var missing []string
		for _, n := range names {
			if !st.certs.Covers(n) {
				missing = append(missing, n)
			}
		}
		if len(missing) > 0 {
			return fail(fmt.Errorf("edge certificates: no certificate in certificates.files covers %s, and ACME is not configured", strings.Join(missing, ", ")))
		}
	}
	st.challenge = st.certs.HTTPChallengeHandler(http.HandlerFunc(s.serveViewer))
	oldOrigins := map[string]*origin{}
	if old != nil {
		for _, d := range old.dists {
			for id, o := range d.origins {
				oldOrigins[d.cfg.ID+"\x00"+id] = o
			}
		}
	}
	for i := range cfg.Distributions {
		d, err := s.compile(st, &cfg.Distributions[i], oldOrigins)
		if err != nil {
			return fail(err)
		}
		st.dists = append(st.dists, d)
		for _, a := range d.cfg.Aliases {
			st.byHost[a] = d
		}
	}
	return st, nil
}

// distribution is the distribution serving host: the one with host as an
// alias, else the one with the wildcard alias covering it (*.example.com
// covers www.example.com, not example.com nor a.b.example.com).
func (st *state) distribution(host string) *distribution {
	if d := st.byHost[host]; d != nil {
		return d
	}
	if i := strings.IndexByte(host, '.'); i > 0 && i < len(host)-1 {
		return st.byHost["*"+host[i:]]
	}
	return nil
}

// localIP is the address a connection was accepted on.
func localIP(c net.Conn) string {
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return ""
}

// sameConnection reports whether two origin configs connect the same way,
// so that the pooled transport can be kept; custom headers and the origin
// path only change the requests sent over it.
func sameConnection(a, b *Origin) bool {
	x, y := *a, *b
	x.CustomHeaders, y.CustomHeaders = nil, nil
	x.OriginPath, y.OriginPath = "", ""
	return reflect.DeepEqual(x, y)
}

func (s *Server) compile(st *state, dc *Distribution, oldOrigins map[string]*origin) (*distribution, error) {
	pol := securityPolicies()[dc.MinimumProtocolVersion]
	d := &distribution{cfg: dc, targets: map[string]*target{}, origins: map[string]*origin{}}
	protos := st.certs.NextProtos()
	if !dc.allowsH2() {
		protos = slices.DeleteFunc(slices.Clone(protos), func(p string) bool { return p == "h2" })
	}
	d.tlsConfig = &tls.Config{
		GetCertificate: st.certs.GetCertificate,
		NextProtos:     protos,
		MinVersion:     pol.minVersion,
		CipherSuites:   pol.ciphers,
		// Full-size records from the first byte, as nginx sends them: with
		// dynamic sizing, crypto/tls cuts a connection's first 128 KiB into
		// records of about 1.2 KiB, each its own write, so a 1 KiB response
		// with its header block took two writes and a 32 KiB copy twenty-
		// seven. The earlier first record it buys only matters on slow links
		// to a viewer that renders as bytes arrive.
		DynamicRecordSizingDisabled: true,
	}
	if dc.allowsH3() {
		// QUIC is TLS 1.3 only; the certificates are the same manager's.
		d.quicTLS = &tls.Config{GetCertificate: st.certs.GetCertificate, MinVersion: tls.VersionTLS13}
	}
	for i := range dc.Origins {
		oc := &dc.Origins[i]
		var o *origin
		if prev := oldOrigins[dc.ID+"\x00"+oc.ID]; prev != nil && sameConnection(prev.cfg, oc) && prev.opts.Resolver == st.cfg.Edge.Resolver {
			o = &origin{cfg: oc, opts: prev.opts, transport: prev.transport}
		} else {
			var err error
			if o, err = newOrigin(oc, st.cfg.Edge.Resolver); err != nil {
				return nil, fmt.Errorf("distribution %s: %w", dc.ID, err)
			}
		}
		d.origins[oc.ID] = o
		t := &target{id: o.cfg.ID, origins: []*origin{o}}
		t.proxy = s.newProxy(t)
		d.targets[t.id] = t
	}
	for _, g := range dc.OriginGroups {
		t := &target{id: g.ID, failover: g.FailoverCriteria}
		for _, m := range g.Members {
			t.origins = append(t.origins, d.origins[m])
		}
		t.proxy = s.newProxy(t)
		d.targets[t.id] = t
	}
	add := func(b *Behavior, pattern string) {
		cb := &behavior{cfg: b, pattern: pattern, methods: map[string]bool{}, target: d.targets[b.Target], policy: cachePolicy(b),
			headers: compileRHP(&b.ResponseHeadersPolicy)}
		for _, m := range b.AllowedMethods {
			cb.methods[m] = true
		}
		cb.anyMethod = len(cb.methods) == len(knownMethods)
		d.behaviors = append(d.behaviors, cb)
	}
	for i := range dc.Behaviors {
		add(&dc.Behaviors[i], dc.Behaviors[i].PathPattern)
	}
	add(&dc.DefaultBehavior, "")
	return d, nil
}

// listenerNames are the listeners of an edge, in start order.
var listenerNames = [...]string{"http", "https", "admin"}

// listenAddr is the configured address of a listener, "" when off.
func listenAddr(cfg *Config, which string) string {
	var a string
	switch which {
	case "http":
		a = cfg.Edge.Listen.HTTP
	case "https":
		a = cfg.Edge.Listen.HTTPS
	case "admin":
		a = cfg.Edge.Admin.Listen
	}
	if a == "off" {
		return ""
	}
	return a
}

// newListener binds one listener and prepares (without starting) its
// server.
func (s *Server) newListener(cfg *Config, which string) (*listener, error) {
	addr := listenAddr(cfg, which)
	if addr == "" {
		return nil, nil
	}
	// Viewer listeners set SO_REUSEPORT so that a new binary can bind them
	// next to this one during a rolling restart (README, "Reload, log
	// rotation and upgrades"); the admin listener does not.
	lc := reuseport.ListenConfig()
	// No TCP keep-alive probes on viewer connections: the timeouts bound
	// every state a connection can be in (handshake, header, body, idle,
	// response), as nginx's listeners do by default, and turning probes on
	// cost four setsockopt calls on each accepted connection.
	lc.KeepAlive = -1
	if which == "admin" {
		lc = &net.ListenConfig{}
	}
	ln, err := lc.Listen(s.baseCtx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("edge listen %s: %w", addr, err)
	}
	t := cfg.Edge.Timeouts
	srv := &http.Server{
		ReadHeaderTimeout: t.ReadHeader.D(),
		ReadTimeout:       t.Read.D(),
		WriteTimeout:      t.Write.D(),
		IdleTimeout:       t.Idle.D(),
		MaxHeaderBytes:    int(t.MaxHeaderBytes),
		ErrorLog:          s.stdlog,
		BaseContext:       func(net.Listener) context.Context { return s.baseCtx },
		ConnContext:       connContext,
	}
	switch which {
	case "http":
		srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.state().challenge.ServeHTTP(w, r) })
		ln = s.newViewerListener(ln, nil, 0)
	case "https":
		srv.Handler = http.HandlerFunc(s.serveViewer)
		// The edge terminates TLS itself (viewerListener) so that it sees
		// the plaintext the server answers; HTTP/2 negotiated by ALPN then
		// reaches the server as a decrypted stream with the HTTP/2 preface.
		ln = s.newViewerListener(ln, &tls.Config{
			GetConfigForClient: s.configForClient,
			NextProtos:         []string{"h2", "http/1.1"},
			MinVersion:         tls.VersionTLS10,
		}, t.ReadHeader.D())
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
	case "admin":
		srv.Handler = s.adminHandler()
		srv.WriteTimeout = 30 * time.Second
		srv.ConnContext = nil
	}
	return &listener{addr: addr, ln: ln, srv: srv}, nil
}

// Start binds the listeners and serves in the background. Listen
// addresses of ":0" pick free ports; Addr tells which.
func (s *Server) Start(ctx context.Context) error {
	s.reloadMu.Lock() // a SIGHUP during start waits for it
	defer s.reloadMu.Unlock()
	s.baseCtx = context.WithoutCancel(ctx)
	cfg := s.state().cfg
	bound := map[string]*listener{}
	for _, which := range listenerNames {
		l, err := s.newListener(cfg, which)
		if err != nil {
			for _, b := range bound {
				b.ln.Close()
			}
			return err
		}
		if l != nil {
			bound[which] = l
		}
	}
	var q *quicListener
	if h := bound["https"]; h != nil && s.state().wantsH3() {
		var err error
		if q, err = s.newQUICListener(cfg, h.ln.Addr(), s.state().allows0RTT()); err != nil {
			for _, b := range bound {
				b.ln.Close()
			}
			return err
		}
	}
	bg, stopBackground := context.WithCancel(s.baseCtx)
	s.stopBackground = stopBackground
	go func() {
		if err := s.cache.inv.Run(bg); err != nil && bg.Err() == nil {
			s.log.Error().Err(err).Msg("cache invalidations stopped")
		}
	}()
	s.lnMu.Lock()
	s.listeners = bound
	s.quic = q
	s.lnMu.Unlock()
	for _, l := range bound {
		go s.serve(l)
	}
	if q != nil {
		go s.serveQUIC(q)
	}
	s.log.Info().Str("location", cfg.Edge.Location).Str("http", s.Addr("http")).Str("https", s.Addr("https")).
		Str("admin", s.Addr("admin")).Int("distributions", len(s.state().dists)).Msg("edge started")
	return nil
}

func (s *Server) serve(l *listener) {
	if err := l.srv.Serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.serveErr <- err
	}
}

// Addr returns the bound address of the "http", "https" or "admin"
// listener, or "" if it is off.
func (s *Server) Addr(which string) string {
	s.lnMu.RLock()
	l := s.listeners[which]
	s.lnMu.RUnlock()
	if l == nil {
		return ""
	}
	return l.ln.Addr().String()
}

// Run starts the edge and serves until ctx is done, then shuts down
// gracefully.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-s.serveErr:
		s.log.Error().Err(runErr).Msg("listener failed; shutting down")
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.state().cfg.Edge.Timeouts.Shutdown.D())
	defer cancel()
	if err := s.Shutdown(sctx); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

// drain shuts a server down gracefully until ctx ends, then cuts what is
// left.
func (s *Server) drain(ctx context.Context, srv *http.Server) {
	if err := srv.Shutdown(ctx); err != nil {
		s.log.Warn().Err(err).Msg("drain timed out; closing remaining connections")
		srv.Close()
	}
}

// Shutdown stops accepting, lets in-flight requests finish (until ctx
// ends, then cuts them), and closes the standard log so that every line
// is on disk.
func (s *Server) Shutdown(ctx context.Context) error {
	s.reloadMu.Lock()
	s.closed = true
	s.reloadMu.Unlock()
	s.log.Info().Msg("edge shutting down: draining in-flight requests")
	s.lnMu.RLock()
	current := maps.Clone(s.listeners)
	q := s.quic
	s.lnMu.RUnlock()
	var wg sync.WaitGroup
	if q != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.drainQUIC(ctx, q)
		}()
	}
	for _, l := range current {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.drain(ctx, l.srv)
		}()
	}
	wg.Wait()
	s.retired.Wait()
	// Handlers of cut connections still write their log lines, and so do
	// connections closing with a refused request: wait for them.
	done := make(chan struct{})
	go func() { s.inflight.Wait(); s.openConns.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.log.Error().Msg("requests still running 10s after shutdown; closing the log anyway")
	}
	if s.stopBackground != nil {
		s.stopBackground()
	}
	s.cache.close()
	st := s.state()
	for _, d := range st.dists {
		for _, t := range d.targets {
			t.closeIdle()
		}
	}
	st.certs.Close()
	s.accessMu.Lock()
	defer s.accessMu.Unlock()
	if s.access != nil {
		if err := s.access.Close(); err != nil {
			return fmt.Errorf("edge standard logs: %w", err)
		}
	}
	s.log.Info().Msg("edge stopped")
	return nil
}

// configForClient picks the distribution's TLS settings by SNI. An
// unknown or missing name gets a config with no certificate at all, which
// makes crypto/tls answer with the unrecognized_name alert (an error here
// would send internal_error); no certificate is ever ordered for it.
func (s *Server) configForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if name == "" && hello.Conn != nil {
		name = localIP(hello.Conn) // no SNI for an IP address: the address dialled names it
	}
	if d := s.state().distribution(name); d != nil {
		return d.tlsConfig, nil
	}
	s.stats.tlsRefused.Add(1)
	s.log.Debug().Str("server_name", name).Str("client", hello.Conn.RemoteAddr().String()).Msg("TLS handshake refused: no distribution for this server name")
	return &tls.Config{MinVersion: tls.VersionTLS12}, nil
}

// zerologWriter routes net/http's own error log (TLS handshake failures
// and the like) into the operational log at debug level.
type zerologWriter struct{ l zerolog.Logger }

func (w zerologWriter) Write(p []byte) (int, error) {
	w.l.Debug().Str("component", "net/http").Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}
