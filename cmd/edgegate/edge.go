package main

import (
	"context"
	"fmt"

	"github.com/edgegate/edgegate/edge"
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
