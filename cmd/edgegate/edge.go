package main

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/edgegate/edgegate/edge"
	"github.com/rs/zerolog"
)

func runEdge(ctx context.Context, e *env, args []string) int {
	fs := newFlags(e, "edge", "",
		"  edgegate edge -config /etc/edgegate/edge.yaml\n  edgegate edge -config configs/edge.yaml -log-level debug\n")
	config := fs.String("config", "", "`FILE`: edge config file (YAML)")
	level := fs.String("log-level", "info", "operational log `LEVEL`: debug, info, warn, error")
	fs.require("config")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	sigs := catchOperatorSignals()
	defer sigs.stop()
	log, err := newLogger(e.stderr, *level)
	if err != nil {
		return usageError(e, fs, "edge", err.Error())
	}
	cfg, err := edge.LoadConfig(*config)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return exitUsage
	}
	setMemoryLimit(cfg, log, os.Getenv("GOMEMLIMIT"))
	srv, err := edge.New(ctx, cfg, edge.Options{Logger: log, ConfigPath: *config})
	if err != nil {
		fmt.Fprintf(e.stderr, "edgegate edge: %v\n", err)
		return exitFailure
	}
	sigs.handle(ctx, log, srv)
	if err := srv.Run(ctx); err != nil {
		fmt.Fprintf(e.stderr, "edgegate edge: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// setMemoryLimit bounds the Go heap by the configured memory tier (see
// edge.Config.MemoryLimit), capped by the container's memory limit; a
// GOMEMLIMIT from the environment, which the runtime has applied already,
// wins. It returns the limit in force.
func setMemoryLimit(cfg *edge.Config, log zerolog.Logger, env string) int64 {
	if env != "" {
		limit := debug.SetMemoryLimit(-1)
		log.Info().Str("GOMEMLIMIT", env).Int64("bytes", limit).Msg("memory limit from the environment")
		return limit
	}
	ceiling, err := memlimit.FromCgroup() // no container limit: 0 and an error
	if err != nil {
		ceiling = 0
	}
	limit := cfg.MemoryLimit(ceiling)
	debug.SetMemoryLimit(limit)
	ev := log.Info().Int64("bytes", limit).Int64("memory_tier", int64(cfg.Edge.Cache.Memory))
	if ceiling > 0 {
		ev = ev.Uint64("container_limit", ceiling)
	}
	ev.Msg("memory limit set: memory tier x1.5 + 256MiB, at most 90% of the container's limit (GOMEMLIMIT overrides)")
	return limit
}
