package edge

import (
	"context"
	"errors"
	"fmt"
	"reflect"
)

// ErrNoConfigFile is returned by Reload when the edge was not started
// from a file.
var ErrNoConfigFile = errors.New("edge: no config file to reload (Options.ConfigPath is empty)")

// Reload reads Options.ConfigPath again and applies it (SIGHUP, `edgegate
// reload` and the admin POST /reload all come here). A config that fails
// validation is refused with the loader's FILE:LINE: key: problem message
// and the running config stays.
func (s *Server) Reload(ctx context.Context) error {
	if s.opts.ConfigPath == "" {
		return ErrNoConfigFile
	}
	cfg, err := LoadConfig(s.opts.ConfigPath)
	if err != nil {
		s.log.Error().Err(err).Str("config", s.opts.ConfigPath).Msg("reload refused: the running config stays")
		return err
	}
	return s.Apply(ctx, cfg)
}

// Apply swaps in a validated config without dropping a request: it
// compiles the new config (keeping the certificate manager and origin
// connection pools that still apply), binds the listeners whose address
// changed, and then swaps the snapshot atomically. Requests already
// running finish on the config they started with; new ones use the new
// config. Listeners whose address did not change keep their sockets;
// servers of changed ones drain in the background. On any error nothing
// changes.
//
// The cache tiers, the operational resolver of the cache and the viewer
// timeouts of listeners that keep their sockets belong to the running
// node: a change to them is logged as needing a restart.
func (s *Server) Apply(ctx context.Context, cfg *Config) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if s.closed || s.baseCtx == nil {
		return errors.New("edge: not running, or shutting down: reload refused")
	}
	old := s.state()
	st, err := s.build(ctx, cfg, old)
	if err != nil {
		s.log.Error().Err(err).Msg("reload refused: the running config stays")
		return err
	}
	undo := func() {
		if st.certs != old.certs {
			st.certs.Close()
		}
	}
	// Bind changed listeners before anything is swapped, so that an
	// address in use refuses the reload instead of half-applying it.
	s.lnMu.RLock()
	running := s.listeners
	s.lnMu.RUnlock()
	fresh := map[string]*listener{}
	for _, which := range listenerNames {
		cur := running[which]
		want := listenAddr(cfg, which)
		if (cur == nil && want == "") || (cur != nil && cur.addr == want) {
			continue
		}
		l, err := s.newListener(cfg, which)
		if err != nil {
			for _, f := range fresh {
				if f != nil {
					f.ln.Close()
				}
			}
			undo()
			s.log.Error().Err(err).Msg("reload refused: the running config stays")
			return fmt.Errorf("reload: %w", err)
		}
		fresh[which] = l // nil: the listener is turned off
	}
	var accessW = s.access
	logsChanged := !reflect.DeepEqual(old.cfg.Edge.Logs, cfg.Edge.Logs) || old.cfg.Edge.Location != cfg.Edge.Location
	if logsChanged {
		if accessW, err = openAccessLog(cfg); err != nil {
			for _, f := range fresh {
				if f != nil {
					f.ln.Close()
				}
			}
			undo()
			return err
		}
	}

	// Commit: from here on nothing fails.
	s.st.Store(st)
	if logsChanged {
		s.accessMu.Lock()
		prev := s.access
		s.access = accessW
		s.accessMu.Unlock()
		if prev != nil {
			if err := prev.Close(); err != nil {
				s.log.Error().Err(err).Msg("standard log: closing the previous file")
			}
		}
	}
	s.lnMu.Lock()
	next := map[string]*listener{}
	for k, v := range running {
		next[k] = v
	}
	var retire []*listener
	for which, l := range fresh {
		if cur := running[which]; cur != nil {
			retire = append(retire, cur)
		}
		if l == nil {
			delete(next, which)
		} else {
			next[which] = l
		}
	}
	s.listeners = next
	s.lnMu.Unlock()
	for _, l := range fresh {
		if l != nil {
			go s.serve(l)
		}
	}
	s.rebindQUIC(ctx, cfg, st)
	for _, l := range retire {
		s.retired.Add(1)
		go func() {
			defer s.retired.Done()
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Edge.Timeouts.Shutdown.D())
			defer cancel()
			s.drain(dctx, l.srv)
		}()
	}
	// Connection pools no new request can reach: idle ones go now, busy
	// ones when their requests end (the transport's idle timeout).
	kept := map[any]bool{}
	for _, d := range st.dists {
		for _, o := range d.origins {
			kept[o.transport] = true
		}
	}
	for _, d := range old.dists {
		for _, o := range d.origins {
			if !kept[o.transport] {
				o.transport.CloseIdleConnections()
			}
		}
	}
	if st.certs != old.certs {
		old.certs.Close()
	}
	s.warnRestartOnly(old.cfg, cfg)
	ev := s.log.Info().Int("distributions", len(st.dists)).Bool("certificates_reloaded", st.certs != old.certs)
	for which, l := range fresh {
		addr := "off"
		if l != nil {
			addr = l.ln.Addr().String()
		}
		ev = ev.Str("rebound_"+which, addr)
	}
	ev.Msg("edge config reloaded")
	return nil
}

// warnRestartOnly names the settings a reload cannot change in place.
func (s *Server) warnRestartOnly(old, cfg *Config) {
	var keys []string
	if !reflect.DeepEqual(old.Edge.Cache, cfg.Edge.Cache) {
		keys = append(keys, "edge.cache")
	}
	if !reflect.DeepEqual(old.Edge.Timeouts, cfg.Edge.Timeouts) {
		keys = append(keys, "edge.timeouts (applied to re-bound listeners only)")
	}
	for _, k := range keys {
		s.log.Warn().Str("key", k).Msg("this setting changed but takes effect only after a restart")
	}
}

// ReopenLogs finishes the current standard log file so that the next line
// starts a new one (SIGUSR1, after logrotate moved the files away).
func (s *Server) ReopenLogs() error {
	s.accessMu.Lock()
	defer s.accessMu.Unlock()
	if s.access == nil {
		return nil
	}
	if err := s.access.Reopen(); err != nil {
		return fmt.Errorf("edge standard logs: %w", err)
	}
	s.log.Info().Msg("standard log reopened")
	return nil
}
