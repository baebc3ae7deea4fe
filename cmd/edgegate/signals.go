package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"
)

// tier is a running edge or origin tier, as the signals see it.
type tier interface {
	Reload(ctx context.Context) error
	ReopenLogs() error
}

// operatorSignals catches SIGHUP (reload the config; what logrotate,
// `systemctl reload` and a dropped SSH session send, and none of them
// means "stop") and SIGUSR1 (reopen log files). It is installed before the
// tier starts, so that a SIGHUP during start-up cannot end the process
// either; handle serves them once the tier runs, until ctx ends.
type operatorSignals struct {
	ch chan os.Signal
}

func catchOperatorSignals() *operatorSignals {
	s := &operatorSignals{ch: make(chan os.Signal, 4)}
	signal.Notify(s.ch, syscall.SIGHUP, syscall.SIGUSR1)
	return s
}

// handle serves the signals for t in the background until ctx ends.
func (s *operatorSignals) handle(ctx context.Context, log zerolog.Logger, t tier) {
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case sig := <-s.ch:
				switch sig {
				case syscall.SIGHUP:
					log.Info().Msg("SIGHUP: reloading the config")
					// A refused config is logged by Reload; the running one stays.
					_ = t.Reload(ctx)
				case syscall.SIGUSR1:
					if err := t.ReopenLogs(); err != nil {
						log.Error().Err(err).Msg("SIGUSR1: reopening log files failed")
					}
				}
			}
		}
	}()
}

// stop releases the signals (the default action returns: for tests that
// run commands in-process).
func (s *operatorSignals) stop() { signal.Stop(s.ch) }
