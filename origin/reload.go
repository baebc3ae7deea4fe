package origin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"

	"github.com/edgegate/edgegate/internal/reuseport"
)

// Reload reads the config file again (SetConfigPath) and applies it, as
// SIGHUP, `edgegate reload` and POST /reload ask. A config that fails
// validation is refused with its FILE:LINE: key: problem message and the
// running config stays.
func (s *Server) Reload(ctx context.Context) error {
	if s.configPath == "" {
		return errors.New("origin: no config file to reload")
	}
	cfg, err := LoadConfig(s.configPath)
	if err != nil {
		s.log.Error().Err(err).Str("config", s.configPath).Msg("reload refused: the running config stays")
		return err
	}
	return s.Apply(ctx, cfg)
}

// Apply swaps in a validated config while the load balancer runs. Target
// groups are updated in place: targets that stay keep their health and
// ejection state and connections; new ones start being checked; removed
// ones leave rotation at once and keep what is in flight for their
// deregistration_delay. Listeners whose config did not change keep their
// sockets; new and changed ones are bound (SO_REUSEPORT lets a changed
// one bind its address before the old socket closes) and the replaced
// ones drain. On any error nothing changes.
//
// The admin listener, access logs and timeouts of listeners that keep
// their sockets take effect on restart; a change to them is logged.
func (s *Server) Apply(ctx context.Context, cfg *Config) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	s.mu.Lock()
	old, oldGroups, oldListeners, serveCtx := s.cfg, s.groups, s.listeners, s.serveCtx
	s.mu.Unlock()
	if serveCtx == nil || s.draining.Load() {
		return errors.New("origin: not running, or shutting down: reload refused")
	}

	// Groups: the same name and protocol is the same group.
	byOld := map[string]*targetGroup{}
	for _, g := range oldGroups {
		byOld[g.name] = g
	}
	type update struct {
		g   *targetGroup
		cfg TargetGroup
	}
	var updates []update
	var groups, fresh []*targetGroup
	byName := map[string]*targetGroup{}
	for _, gc := range cfg.Origin.TargetGroups {
		g := byOld[gc.Name]
		if g != nil && g.protocol == gc.Protocol {
			updates = append(updates, update{g, gc})
		} else {
			g = newTargetGroup(gc, cfg.Origin.Timeouts, s.metrics, s.log)
			fresh = append(fresh, g)
		}
		groups = append(groups, g)
		byName[gc.Name] = g
	}

	// Listeners: an unchanged one whose groups are the same objects stays.
	taken := map[*listener]bool{}
	keep := func(_ int, lc Listener) *listener {
		for _, ol := range oldListeners {
			if !taken[ol] && reflect.DeepEqual(ol.cfg, lc) && sameGroups(ol, lc, byName) {
				taken[ol] = true
				return ol
			}
		}
		return nil
	}
	ls, err := s.newListeners(cfg, byName, keep)
	if err != nil {
		s.log.Error().Err(err).Msg("reload refused: the running config stays")
		return err
	}
	var added []*listener
	inherited := map[*listener]bool{} // old listeners whose socket a new one took over
	for _, l := range ls {
		if !taken[l] {
			added = append(added, l)
		}
	}
	for _, l := range added {
		err := l.setupTLS(serveCtx)
		if err == nil {
			if ol := retiredAt(oldListeners, taken, l.cfg); ol != nil {
				taken[ol] = true // its socket goes on in l; ol itself only drains
				inherited[ol] = true
				err = l.inherit(ol)
			} else {
				err = l.bind(ctx, reuseport.ListenConfig())
			}
		}
		if err != nil {
			s.closeListeners(added)
			s.log.Error().Err(err).Msg("reload refused: the running config stays")
			return fmt.Errorf("reload: %w", err)
		}
	}

	// Commit: nothing fails from here on.
	for _, u := range updates {
		for _, t := range u.g.update(u.cfg, cfg.Origin.Timeouts) {
			t.deregister(u.cfg.DeregistrationDelay.D())
			s.log.Info().Str("target_group", u.g.name).Str("target", t.addr).Dur("deregistration_delay", u.cfg.DeregistrationDelay.D()).
				Msg("target removed: out of rotation, draining")
		}
	}
	var removedGroups []*targetGroup
	for _, g := range oldGroups {
		if byName[g.name] != g {
			removedGroups = append(removedGroups, g)
			v := g.view()
			for _, t := range v.targets {
				t.deregister(v.cfg.DeregistrationDelay.D())
			}
		}
	}
	var retired []*listener
	for _, ol := range oldListeners {
		if !taken[ol] || inherited[ol] {
			retired = append(retired, ol)
		}
	}
	addrs := make([]net.Addr, len(ls))
	for i, l := range ls {
		addrs[i] = l.ln.Addr()
	}
	s.mu.Lock()
	s.cfg, s.groups, s.listeners, s.addrs = cfg, groups, ls, addrs
	for _, g := range removedGroups {
		if stop := s.checkers[g]; stop != nil {
			stop()
			delete(s.checkers, g)
		}
	}
	s.mu.Unlock()
	for _, u := range updates {
		s.startChecker(u.g)
	}
	for _, g := range fresh {
		s.startChecker(g)
	}
	for _, l := range added {
		s.startServing(l)
	}
	for _, l := range retired {
		s.retired.Go(func() {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Origin.Timeouts.Shutdown.D())
			defer cancel()
			l.shutdown(dctx)
			if l.mgr != nil {
				l.mgr.Close()
			}
		})
	}
	if !reflect.DeepEqual(old.Origin.Admin, cfg.Origin.Admin) && old.Origin.Admin.Listen != cfg.Origin.Admin.Listen {
		s.log.Warn().Str("key", "origin.admin.listen").Msg("this setting changed but takes effect only after a restart")
	}
	if !reflect.DeepEqual(old.Origin.Logs, cfg.Origin.Logs) {
		s.log.Warn().Str("key", "origin.logs").Msg("this setting changed but takes effect only after a restart")
	}
	s.log.Info().Int("listeners", len(ls)).Int("listeners_rebound", len(added)).Int("target_groups", len(groups)).
		Msg("origin config reloaded")
	return nil
}

// sameGroups reports whether a running listener would forward to the same
// group objects under the new config.
func sameGroups(l *listener, lc Listener, byName map[string]*targetGroup) bool {
	if l.group != byName[lc.DefaultAction.Forward] && (l.group != nil || lc.DefaultAction.Forward != "") {
		return false
	}
	if len(l.routes) != len(lc.SNIRoutes) {
		return false
	}
	for i, r := range lc.SNIRoutes {
		if l.routes[i].g != byName[r.Forward] {
			return false
		}
	}
	return true
}

// ReopenLogs closes the access log file so that the next line opens it
// again by name (SIGUSR1, after logrotate moved it).
func (s *Server) ReopenLogs() error {
	s.mu.Lock()
	w := s.accessLog
	s.mu.Unlock()
	if w == nil {
		return nil
	}
	if err := w.Reopen(); err != nil {
		return err
	}
	s.log.Info().Msg("access log reopened")
	return nil
}

// retiredAt finds the running listener, not kept by the new config, that is
// bound where cfg asks to listen.
func retiredAt(old []*listener, taken map[*listener]bool, cfg Listener) *listener {
	for _, ol := range old {
		if !taken[ol] && reuseport.SameAddress(ol.ln.Addr(), cfg.Address, *cfg.Port) {
			return ol
		}
	}
	return nil
}
