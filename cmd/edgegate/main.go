// Command edgegate is a self-hosted edge gateway: an edge tier that
// terminates viewer TLS with ACME certificates, caches, and re-originates
// over verified HTTPS to an origin tier load balancer, with
// CloudFront-compatible logs and the tools to read them.
//
// Usage:
//
//	edgegate edge   -config edge.yaml     run an edge node
//	edgegate origin -config origin.yaml   run an origin-tier load balancer
//	edgegate check  -config FILE [-probe] validate a config (and probe its origins)
//	edgegate probe  https://NAME/         explain how the edge's connection to an origin fares
//	edgegate logs   summary|report ...    analyse CloudFront-format logs
//	edgegate reload [-admin URL]          make a running tier re-read its config (as SIGHUP)
//	edgegate demo                         run the whole stack on this machine
//	edgegate app -name app1 -listen :8080 a demo app that says which instance answered
//	edgegate health URL                   exit 0 when URL answers 2xx (container health checks)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"
)

// Exit statuses (DESIGN §2).
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *env, args []string) int
}

// env is what a subcommand may touch, so tests can run commands in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

func commands() []command {
	return []command{
		{"edge", "run an edge node", runEdge},
		{"origin", "run an origin-tier load balancer", runOrigin},
		{"check", "validate a config file (either kind); -probe also probes every origin", runCheck},
		{"probe", "connect to an origin exactly as the edge does and explain what fails", runProbe},
		{"logs", "analyse CloudFront-format standard logs (summary, report)", runLogs},
		{"reload", "ask a running edge or origin tier to re-read its config (as SIGHUP)", runReload},
		{"demo", "run an edge in front of a local HTTPS app on this machine, no set-up", runDemo},
		{"app", "a small HTTP app that says which instance answered (the demo's targets)", runApp},
		{"health", "GET a URL and exit 0 on 2xx (container health checks without curl)", runHealth},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		usage(e.stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, e, args[1:])
		}
	}
	fmt.Fprintf(e.stderr, "edgegate: unknown command %q\n\n", args[0])
	usage(e.stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "edgegate: a self-hosted edge gateway (edge tier, origin tier, logs).")
	fmt.Fprintln(w, "\nUsage: edgegate COMMAND [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'edgegate COMMAND -h' for a command's flags and examples.")
}

// newFlags makes a flag set whose -h prints usage with examples.
func newFlags(e *env, name, synopsis, examples string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: edgegate %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
		if examples != "" {
			fmt.Fprintf(e.stderr, "\nExamples:\n%s", examples)
		}
	}
	return fs
}

// parseFlags parses args; it returns an exit code and false when the
// command should stop (after -h, or a usage error).
func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	return 0, true
}

// newLogger builds the operational logger: JSON lines on stderr.
func newLogger(w io.Writer, level string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		return zerolog.Nop(), fmt.Errorf("-log-level %q: use debug, info, warn or error", level)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}
