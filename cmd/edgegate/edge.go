package main

import (
	"context"
	"fmt"

	"github.com/edgegate/edgegate/edge"
)

func runEdge(ctx context.Context, e *env, args []string) int {
	fs := newFlags(e, "edge", "-config FILE [-log-level info]",
		"  edgegate edge -config /etc/edgegate/edge.yaml\n  edgegate edge -config configs/edge.yaml -log-level debug\n")
	config := fs.String("config", "", "edge config file (YAML)")
	level := fs.String("log-level", "info", "operational log level: debug, info, warn, error")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	sigs := catchOperatorSignals()
	defer sigs.stop()
	if *config == "" {
		fmt.Fprintln(e.stderr, "edgegate edge: -config is required")
		fs.Usage()
		return exitUsage
	}
	log, err := newLogger(e.stderr, *level)
	if err != nil {
		fmt.Fprintf(e.stderr, "edgegate edge: %v\n", err)
		return exitUsage
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
