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
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/edgegate/edgegate/acme"
	"github.com/edgegate/edgegate/cache"
	"github.com/edgegate/edgegate/edge/accesslog"
	"github.com/rs/zerolog"
)

// Options are the run-time dependencies of a Server.
type Options struct {
	// Logger receives the operational log (JSON).
	Logger zerolog.Logger
}

// Server is one edge node.
type Server struct {
	cfg    *Config
	log    zerolog.Logger
	stdlog *log.Logger
	certs  *acme.Manager
	access *accesslog.Writer
	byHost map[string]*distribution
	dists  []*distribution
	stats  *stats
	cache  *edgeCache

	stopBackground context.CancelFunc

	httpSrv, httpsSrv, adminSrv *http.Server
	httpLn, httpsLn, adminLn    net.Listener
	inflight                    sync.WaitGroup
	serveErr                    chan error
}

// distribution is a configured distribution compiled for serving.
type distribution struct {
	cfg       *Distribution
	tlsConfig *tls.Config
	behaviors []*behavior // in order, default last
	targets   map[string]*target
}

// behavior is a compiled cache behavior.
type behavior struct {
	cfg     *Behavior
	pattern string // "" for the default behavior
	methods map[string]bool
	target  *target
	policy  cache.Policy // used unless cfg.CachePolicy.Disabled
}

// New builds an edge from a validated config: it loads certificates,
// prepares origin transports and opens the standard log.
func New(ctx context.Context, cfg *Config, opts Options) (*Server, error) {
	s := &Server{cfg: cfg, log: opts.Logger, byHost: map[string]*distribution{}, stats: newStats(), serveErr: make(chan error, 3)}
	s.stdlog = log.New(zerologWriter{s.log}, "", 0)
	var names []string
	for i := range cfg.Distributions {
		names = append(names, cfg.Distributions[i].Aliases...)
	}
	certs, err := acme.NewManager(ctx, cfg.Edge.Certificates, acme.Options{Names: names, Resolver: cfg.Edge.Resolver, Logger: s.log})
	if err != nil {
		return nil, fmt.Errorf("edge certificates: %w", err)
	}
	s.certs = certs
	if cfg.Edge.Certificates.ACME == nil {
		var missing []string
		for _, n := range names {
			if !certs.Covers(n) {
				missing = append(missing, n)
			}
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("edge certificates: no certificate in certificates.files covers %s, and ACME is not configured", strings.Join(missing, ", "))
		}
	}
	if s.cache, err = s.newCache(); err != nil {
		return nil, err
	}
	for i := range cfg.Distributions {
		d, err := s.compile(&cfg.Distributions[i])
		if err != nil {
			return nil, err
		}
		s.dists = append(s.dists, d)
		for _, a := range d.cfg.Aliases {
			s.byHost[a] = d
		}
	}
	if dir := cfg.Edge.Logs.Dir; dir != "" {
		w, err := accesslog.NewWriter(accesslog.WriterConfig{Dir: dir, Prefix: cfg.Edge.Location, Rotate: cfg.Edge.Logs.Rotate.D(), Gzip: cfg.Edge.Logs.Gzip})
		if err != nil {
			return nil, fmt.Errorf("edge standard logs: %w", err)
		}
		s.access = w
	}
	return s, nil
}

func (s *Server) compile(dc *Distribution) (*distribution, error) {
	pol := securityPolicies()[dc.MinimumProtocolVersion]
	d := &distribution{cfg: dc, targets: map[string]*target{}}
	d.tlsConfig = &tls.Config{
		GetCertificate: s.certs.GetCertificate,
		NextProtos:     s.certs.NextProtos(),
		MinVersion:     pol.minVersion,
		CipherSuites:   pol.ciphers,
	}
	origins := map[string]*origin{}
	for i := range dc.Origins {
		o, err := newOrigin(&dc.Origins[i], s.cfg.Edge.Resolver)
		if err != nil {
			return nil, fmt.Errorf("distribution %s: %w", dc.ID, err)
		}
		origins[o.cfg.ID] = o
		t := &target{id: o.cfg.ID, origins: []*origin{o}}
		t.proxy = s.newProxy(t)
		d.targets[t.id] = t
	}
	for _, g := range dc.OriginGroups {
		t := &target{id: g.ID, failover: g.FailoverCriteria}
		for _, m := range g.Members {
			t.origins = append(t.origins, origins[m])
		}
		t.proxy = s.newProxy(t)
		d.targets[t.id] = t
	}
	add := func(b *Behavior, pattern string) {
		cb := &behavior{cfg: b, pattern: pattern, methods: map[string]bool{}, target: d.targets[b.Target], policy: cachePolicy(b)}
		for _, m := range b.AllowedMethods {
			cb.methods[m] = true
		}
		d.behaviors = append(d.behaviors, cb)
	}
	for i := range dc.Behaviors {
		add(&dc.Behaviors[i], dc.Behaviors[i].PathPattern)
	}
	add(&dc.DefaultBehavior, "")
	return d, nil
}

// Start binds the listeners and serves in the background. Listen
// addresses of ":0" pick free ports; Addr tells which.
func (s *Server) Start(ctx context.Context) error {
	t := s.cfg.Edge.Timeouts
	base := func(h http.Handler) *http.Server {
		return &http.Server{
			Handler:           h,
			ReadHeaderTimeout: t.ReadHeader.D(),
			ReadTimeout:       t.Read.D(),
			WriteTimeout:      t.Write.D(),
			IdleTimeout:       t.Idle.D(),
			MaxHeaderBytes:    int(t.MaxHeaderBytes),
			ErrorLog:          s.stdlog,
			BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		}
	}
	var lc net.ListenConfig
	listen := func(addr string) (net.Listener, error) {
		if addr == "" || addr == "off" {
			return nil, nil
		}
		l, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("edge listen %s: %w", addr, err)
		}
		return l, nil
	}
	var err error
	if s.httpLn, err = listen(s.cfg.Edge.Listen.HTTP); err != nil {
		return err
	}
	if s.httpsLn, err = listen(s.cfg.Edge.Listen.HTTPS); err != nil {
		s.closeListeners()
		return err
	}
	if s.adminLn, err = listen(s.cfg.Edge.Admin.Listen); err != nil {
		s.closeListeners()
		return err
	}
	bg, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	s.stopBackground = stopBackground
	go func() {
		if err := s.cache.inv.Run(bg); err != nil && bg.Err() == nil {
			s.log.Error().Err(err).Msg("cache invalidations stopped")
		}
	}()
	if s.httpLn != nil {
		s.httpSrv = base(s.certs.HTTPChallengeHandler(http.HandlerFunc(s.serveViewer)))
		go s.serve(s.httpSrv, s.httpLn, false)
	}
	if s.httpsLn != nil {
		s.httpsSrv = base(http.HandlerFunc(s.serveViewer))
		s.httpsSrv.TLSConfig = &tls.Config{
			GetConfigForClient: s.configForClient,
			NextProtos:         []string{"h2", "http/1.1"},
			MinVersion:         tls.VersionTLS10,
		}
		s.httpsSrv.Protocols = new(http.Protocols)
		s.httpsSrv.Protocols.SetHTTP1(true)
		s.httpsSrv.Protocols.SetHTTP2(true)
		go s.serve(s.httpsSrv, s.httpsLn, true)
	}
	if s.adminLn != nil {
		s.adminSrv = base(s.adminHandler())
		s.adminSrv.WriteTimeout = 30 * time.Second
		go s.serve(s.adminSrv, s.adminLn, false)
	}
	s.log.Info().Str("location", s.cfg.Edge.Location).Str("http", s.Addr("http")).Str("https", s.Addr("https")).
		Str("admin", s.Addr("admin")).Int("distributions", len(s.dists)).Msg("edge started")
	return nil
}

func (s *Server) serve(srv *http.Server, l net.Listener, useTLS bool) {
	var err error
	if useTLS {
		err = srv.ServeTLS(l, "", "")
	} else {
		err = srv.Serve(l)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.serveErr <- err
	}
}

func (s *Server) closeListeners() {
	for _, l := range []net.Listener{s.httpLn, s.httpsLn, s.adminLn} {
		if l != nil {
			l.Close()
		}
	}
}

// Addr returns the bound address of the "http", "https" or "admin"
// listener, or "" if it is off.
func (s *Server) Addr(which string) string {
	var l net.Listener
	switch which {
	case "http":
		l = s.httpLn
	case "https":
		l = s.httpsLn
	case "admin":
		l = s.adminLn
	}
	if l == nil {
		return ""
	}
	return l.Addr().String()
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
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Edge.Timeouts.Shutdown.D())
	defer cancel()
	if err := s.Shutdown(sctx); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

// Shutdown stops accepting, lets in-flight requests finish (until ctx
// ends, then cuts them), and closes the standard log so that every line
// is on disk.
func (s *Server) Shutdown(ctx context.Context) error {
	s.log.Info().Msg("edge shutting down: draining in-flight requests")
	var wg sync.WaitGroup
	for _, srv := range []*http.Server{s.httpSrv, s.httpsSrv, s.adminSrv} {
		if srv == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Shutdown(ctx); err != nil {
				s.log.Warn().Err(err).Msg("drain timed out; closing remaining connections")
				srv.Close()
			}
		}()
	}
	wg.Wait()
	// Handlers of cut connections still write their log lines: wait for them.
	done := make(chan struct{})
	go func() { s.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.log.Error().Msg("requests still running 10s after shutdown; closing the log anyway")
	}
	if s.stopBackground != nil {
		s.stopBackground()
	}
	s.cache.close()
	for _, d := range s.dists {
		for _, t := range d.targets {
			t.closeIdle()
		}
	}
	s.certs.Close()
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
	if d := s.byHost[name]; d != nil {
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
