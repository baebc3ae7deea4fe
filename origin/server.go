package origin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgegate/edgegate/internal/reuseport"
	"github.com/edgegate/edgegate/internal/yamlconf"
	"github.com/edgegate/edgegate/origin/accesslog"
	"github.com/rs/zerolog"
)

// Server is an origin-tier load balancer: its listeners, target groups,
// health checks, access log and admin listener. A reload (Reload, Apply)
// replaces listeners and groups while it runs: groups are updated in
// place, listeners whose config did not change keep their sockets.
type Server struct {
	log     zerolog.Logger
	metrics *metrics

	started  atomic.Bool
	draining atomic.Bool
	ready    chan struct{}
	// readyOnce closes ready once, whether Run binds or fails.
	readyOnce sync.Once

	configPath string
	reloadMu   sync.Mutex // one reload at a time; none once draining

	// Set by Run for reloads: what new listeners and checkers run under.
	serveCtx context.Context
	failed   chan error
	serving  sync.WaitGroup
	health   sync.WaitGroup
	retired  sync.WaitGroup // listeners replaced by a reload, draining

	mu        sync.Mutex
	cfg       *Config
	groups    []*targetGroup
	checkers  map[*targetGroup]context.CancelFunc // running health checks, by group
	listeners []*listener
	addrs     []net.Addr
	adminAddr net.Addr
	accessLog *accesslog.Writer
	logErr    bool // an access log write failed and was reported; cleared on success
}

// New builds a load balancer from a validated config: target groups,
// mutual TLS trust stores and revocation lists (read now, so that a bad
// file is reported before anything listens). Nothing listens until Run.
func New(cfg *Config, logger zerolog.Logger) (*Server, error) {
	if cfg == nil {
		return nil, errors.New("origin: nil config")
	}
	s := &Server{cfg: cfg, log: logger, metrics: &metrics{}, ready: make(chan struct{}), failed: make(chan error, 64),
		checkers: map[*targetGroup]context.CancelFunc{}}
	byName := map[string]*targetGroup{}
	for _, gc := range cfg.Origin.TargetGroups {
		g := newTargetGroup(gc, cfg.Origin.Timeouts, s.metrics, logger)
		s.groups = append(s.groups, g)
		byName[gc.Name] = g
	}
	ls, err := s.newListeners(cfg, byName, nil)
	if err != nil {
		return nil, err
	}
	s.listeners = ls
	return s, nil
}

// SetConfigPath names the file Reload reads again.
func (s *Server) SetConfigPath(path string) { s.configPath = path }

// config is the running config.
func (s *Server) config() *Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// newListeners makes the listener runtimes of cfg; keep returns a running
// listener to reuse for listener i, nil to make a new one.
func (s *Server) newListeners(cfg *Config, byName map[string]*targetGroup, keep func(i int, lc Listener) *listener) ([]*listener, error) {
	var errs yamlconf.Errors
	var out []*listener
	for i, lc := range cfg.Origin.Listeners {
		if keep != nil {
			if l := keep(i, lc); l != nil {
				out = append(out, l)
				continue
			}
		}
		l, err := newListener(s, cfg, i, lc, byName)
		if err != nil {
			var ye *yamlconf.Error
			if errors.As(err, &ye) {
				errs = append(errs, ye)
				continue
			}
			return nil, fmt.Errorf("listener %d: %w", i, err)
		}
		out = append(out, l)
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// CheckFiles reads every file the config names (certificate pairs, trust
// stores, revocation lists) and reports each problem at its key, for
// `edgegate check`.
func (c *Config) CheckFiles() error {
	var errs yamlconf.Errors
	for i, l := range c.Origin.Listeners {
		lp := fmt.Sprintf("origin.listeners[%d]", i)
		if l.Certificates != nil {
			for j, f := range l.Certificates.Files {
				if _, err := tls.LoadX509KeyPair(f.Cert, f.Key); err != nil {
					errs = append(errs, c.errorf(fmt.Sprintf("%s.certificates.files[%d].cert", lp, j), "%v", err))
				}
			}
		}
		if m := l.MutualTLS; m != nil && m.Mode == MTLSVerify {
			if _, err := loadClientVerifier(m); err != nil {
				errs = append(errs, c.errorf(lp+".mutual_tls", "%v", err))
			}
		}
	}
	return errs.Err()
}

// Ready is closed when Run has bound every listener (Addrs and AdminAddr
// are then set), or has failed before doing so.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addrs returns the bound address of each listener, in config order (nil
// before Ready). With port 0 in the config, this is how to find the port.
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]net.Addr(nil), s.addrs...)
}

// AdminAddr returns the admin listener's bound address, nil when it is off
// or before Ready.
func (s *Server) AdminAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.adminAddr
}

// Run binds the listeners, checks targets, serves until ctx is done, then
// drains gracefully: listeners stop accepting, in-flight requests and
// connections get up to timeouts.shutdown to finish, and only then are
// the remaining ones closed. It returns nil after a clean drain, or the
// error that stopped it.
func (s *Server) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("origin: Run called twice")
	}
	defer s.readyOnce.Do(func() { close(s.ready) })
	o := s.cfg.Origin

	if o.Logs.Dir != "" {
		w, err := accesslog.NewWriter(accesslog.WriterConfig{Dir: o.Logs.Dir, Rotate: o.Logs.Rotate.D()})
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.accessLog = w
		s.mu.Unlock()
		defer func() {
			if err := w.Close(); err != nil {
				s.log.Error().Err(err).Msg("closing the access log")
			}
		}()
	}

	// serveCtx outlives ctx by the drain: health checks keep running and
	// requests being drained keep their contexts until it is cancelled.
	serveCtx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServing()

	for _, l := range s.listeners {
		if err := l.setupTLS(serveCtx); err != nil {
			s.closeListeners(s.listeners)
			return err
		}
	}
	lc := reuseport.ListenConfig()
	addrs := make([]net.Addr, len(s.listeners))
	for i, l := range s.listeners {
		if err := l.bind(ctx, lc); err != nil {
			s.closeListeners(s.listeners)
			return err
		}
		addrs[i] = l.ln.Addr()
	}
	var admin *http.Server
	var adminLn net.Listener
	if o.Admin.Listen != "" {
		var err error
		var alc net.ListenConfig
		if adminLn, err = alc.Listen(ctx, "tcp", o.Admin.Listen); err != nil {
			s.closeListeners(s.listeners)
			return fmt.Errorf("admin listener %s: %w", o.Admin.Listen, err)
		}
		admin = s.adminServer()
	}
	s.mu.Lock()
	s.addrs = addrs
	if adminLn != nil {
		s.adminAddr = adminLn.Addr()
	}
	s.serveCtx = serveCtx
	s.mu.Unlock()
	s.readyOnce.Do(func() { close(s.ready) })

	for _, g := range s.groups {
		s.startChecker(g)
	}
	adminDone := make(chan struct{})
	if admin != nil {
		go func() {
			defer close(adminDone)
			if err := admin.Serve(adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error().Err(err).Msg("admin listener failed")
			}
		}()
	} else {
		close(adminDone)
	}
	for _, l := range s.listeners {
		s.startServing(l)
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-s.failed:
	}
	s.reloadMu.Lock() // no reload from here on
	s.draining.Store(true)
	s.reloadMu.Unlock()
	cfg := s.config()
	grace := cfg.Origin.Timeouts.Shutdown.D()
	s.log.Info().Stringer("grace", grace).Msg("draining")
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	var drains sync.WaitGroup
	s.mu.Lock()
	current := append([]*listener(nil), s.listeners...)
	s.mu.Unlock()
	for _, l := range current {
		drains.Go(func() { l.shutdown(drainCtx) })
	}
	drains.Wait()
	s.retired.Wait()
	cancel()
	stopServing()
	s.serving.Wait()
	s.health.Wait()
	if admin != nil {
		actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		if err := admin.Shutdown(actx); err != nil {
			admin.Close()
		}
		acancel()
	}
	<-adminDone
	for _, l := range current {
		if l.mgr != nil {
			l.mgr.Close()
		}
	}
	s.log.Info().Msg("stopped")
	return runErr
}

// startServing serves l in the background; a failure stops Run.
func (s *Server) startServing(l *listener) {
	s.serving.Go(func() {
		if err := l.serve(s.serveCtx); err != nil {
			s.failed <- fmt.Errorf("listener %s: %w", l.name, err)
		}
	})
	s.log.Info().Str("listener", l.name).Str("addr", l.ln.Addr().String()).Msg("listening")
}

// startChecker (re)starts the health checks of g with its current targets.
func (s *Server) startChecker(g *targetGroup) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if stop := s.checkers[g]; stop != nil {
		stop()
	}
	ctx, stop := context.WithCancel(s.serveCtx)
	s.checkers[g] = stop
	newChecker(g, s.log).run(ctx, &s.health)
}

// closeListeners releases what was bound before a failure.
func (s *Server) closeListeners(ls []*listener) {
	for _, l := range ls {
		if l.ln != nil {
			l.ln.Close()
		}
		if l.mgr != nil {
			l.mgr.Close()
		}
	}
}

// logRecord writes an access log line and counts its bytes.
func (s *Server) logRecord(l *listener, r *accesslog.Record) {
	s.metrics.add(mReceivedBytes, r.ReceivedBytes, "listener", l.name)
	s.metrics.add(mSentBytes, r.SentBytes, "listener", l.name)
	if s.accessLog == nil {
		return
	}
	err := s.accessLog.Write(r)
	s.mu.Lock()
	report := err != nil && !s.logErr
	s.logErr = err != nil
	s.mu.Unlock()
	if report {
		// Once per run of failures, so a full disk does not flood the log.
		s.log.Error().Err(err).Msg("access log write failed; further failures are not reported until a write succeeds")
	}
}

// listenerName is how a listener appears in logs and metrics.
func listenerName(proto string, addr net.Addr) string {
	if ta, ok := addr.(*net.TCPAddr); ok {
		return proto + ":" + strconv.Itoa(ta.Port)
	}
	return proto + ":" + addr.String()
}
