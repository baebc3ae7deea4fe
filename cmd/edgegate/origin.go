package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/edgegate/edgegate/internal/yamlconf"
	"github.com/edgegate/edgegate/origin"
)

func runOrigin(ctx context.Context, e *env, args []string) int {
	fs := newFlags(e, "origin", "",
		"  edgegate origin -config /etc/edgegate/origin.yaml\n  edgegate origin -config configs/origin-edge.yaml -log-level debug\n")
	config := fs.String("config", "", "`FILE`: origin-tier config file (YAML)")
	level := fs.String("log-level", "info", "operational log `LEVEL`: debug, info, warn, error")
	fs.require("config")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	sigs := catchOperatorSignals()
	defer sigs.stop()
	log, err := newLogger(e.stderr, *level)
	if err != nil {
		return usageError(e, fs, "origin", err.Error())
	}
	cfg, err := origin.LoadConfig(*config)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return exitUsage
	}
	srv, err := origin.New(cfg, log)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		var ce yamlconf.Errors
		if errors.As(err, &ce) {
			return exitUsage
		}
		return exitFailure
	}
	srv.SetConfigPath(*config)
	sigs.handle(ctx, log, srv)
	if err := srv.Run(ctx); err != nil {
		fmt.Fprintf(e.stderr, "edgegate origin: %v\n", err)
		return exitFailure
	}
	return exitOK
}

func checkOrigin(ctx context.Context, e *env, path string, files bool) int {
	cfg, err := origin.LoadConfig(path)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return exitUsage
	}
	if err := cfg.CheckFiles(); files && err != nil {
		fmt.Fprintln(e.stderr, err)
		return exitUsage
	}
	if files {
		if err := cfg.CheckCA(ctx); err != nil {
			fmt.Fprintln(e.stderr, err)
			return exitUsage
		}
	}
	fmt.Fprintf(e.stdout, "%s: ok (origin-tier config: %d listeners, %d target groups)\n", path, len(cfg.Origin.Listeners), len(cfg.Origin.TargetGroups))
	return exitOK
}
