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
	setGCPercent(log, os.Getenv("GOGC"))
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

// gcPercent is the edge's GOGC when the environment sets none. A cache hit
// leaves little live heap and much short-lived garbage, so at Go's 100 the
// collector ran often for little (~15% of a hit's CPU). Issue 14 measured
// 200 against 100 (bench-edge, one core): 1 KiB hits +0-5% requests per
// CPU-second over HTTP/1.1 and ~+12% over HTTP/2, for 4 MB more RSS at 50
// connections and ~10 MB at 400 or over HTTP/2; 400 added little more speed
// for twice the memory. The memory limit (setMemoryLimit) still bounds the
// heap: near it the collector runs as often as it must, whatever GOGC says.
const gcPercent = 200

// setGCPercent sets the garbage collector's target to gcPercent; a GOGC
// from the environment, which the runtime has applied already, wins. It
// returns the percentage in force.
func setGCPercent(log zerolog.Logger, env string) int {
	if env != "" {
		pct := debug.SetGCPercent(100) // reads the runtime's value ("off": -1)
		debug.SetGCPercent(pct)
		log.Info().Str("GOGC", env).Int("percent", pct).Msg("garbage collector target from the environment")
		return pct
	}
	debug.SetGCPercent(gcPercent)
	log.Info().Int("percent", gcPercent).Msg("garbage collector target set: GOGC=200, bounded by the memory limit (GOGC overrides)")
	return gcPercent
}
