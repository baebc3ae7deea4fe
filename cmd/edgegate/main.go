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
//	edgegate version                      module version, VCS revision, Go version
//	edgegate help COMMAND                 a command's flags and examples
//
// Exit status: 0 success, 1 runtime failure, 2 bad usage or a bad config.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/rs/zerolog"
)

// Exit statuses (DESIGN §2).
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// command is one subcommand. A new one joins by adding an entry to
// commands() whose run builds its flags with newFlags: -h, help CMD, usage
// errors and the Usage line then work as for the others.
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
		{"demo", "run the whole stack on this machine, no set-up: ACME CA, origin tier, two apps, an edge", runDemo},
		{"app", "a small HTTP app that says which instance answered (the demo's targets)", runApp},
		{"health", "GET a URL and exit 0 on 2xx (container health checks without curl)", runHealth},
		{"version", "print the module version, VCS revision and Go version", runVersion},
		{"help", "show the help of a command: edgegate help COMMAND", runHelp},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 {
		usage(e.stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		usage(e.stdout)
		return exitOK
	case "-version", "--version":
		return runVersion(ctx, e, args[1:])
	}
	if c, ok := lookup(args[0]); ok {
		return c.run(ctx, e, args[1:])
	}
	fmt.Fprintf(e.stderr, "edgegate: unknown command %q\n\n", args[0])
	usage(e.stderr)
	return exitUsage
}

func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// runHelp is `edgegate help [COMMAND [SUBCOMMAND]]`: the same text as -h,
// on stdout.
func runHelp(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 {
		usage(e.stdout)
		return exitOK
	}
	c, ok := lookup(args[0])
	if !ok || c.name == "help" {
		fmt.Fprintf(e.stderr, "edgegate help: unknown command %q\n\n", args[0])
		usage(e.stderr)
		return exitUsage
	}
	return c.run(ctx, e, append(slices.Clone(args[1:]), "-h"))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "edgegate: a self-hosted edge gateway (edge tier, origin tier, logs).")
	fmt.Fprintln(w, "\nUsage: edgegate COMMAND [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'edgegate help COMMAND' (or 'edgegate COMMAND -h') for a command's flags and examples.")
	fmt.Fprintln(w, "Exit status: 0 success, 1 runtime failure, 2 bad usage or a bad config.")
}

// flagSet is a command's flags: its -h prints the Usage line (every flag
// with its default), the flags' help and examples on stdout; a usage error
// prints the problem and the same text on stderr.
type flagSet struct {
	*flag.FlagSet
	e        *env
	name     string
	args     string // the positional arguments, for the Usage line
	examples string
	required map[string]bool
}

// newFlags makes a command's flag set; args names its positional arguments
// (may be empty), examples are indented lines ending in a newline.
func newFlags(e *env, name, args, examples string) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), e: e, name: name, args: args, examples: examples,
		required: map[string]bool{}}
	fs.SetOutput(e.stderr)
	// After parsing, Usage is for a usage error the command found itself
	// (parseFlags prints -h's on stdout).
	fs.Usage = func() { fs.printUsage(e.stderr) }
	return fs
}

// require marks flags the Usage line shows without brackets.
func (fs *flagSet) require(names ...string) {
	for _, n := range names {
		fs.required[n] = true
	}
}

// usageLine is "Usage: edgegate NAME FLAGS ARGS", every flag with its
// default value (or its argument's name when it has no default).
func (fs *flagSet) usageLine() string {
	var req, opt []string
	fs.VisitAll(func(f *flag.Flag) {
		name, _ := flag.UnquoteUsage(f)
		var s string
		switch {
		case isBool(f) && f.DefValue == "false":
			s = "-" + f.Name
		case isBool(f):
			s = "-" + f.Name + "=" + f.DefValue
		case f.DefValue == "" || fs.required[f.Name]:
			s = "-" + f.Name + " " + name
		default:
			s = "-" + f.Name + " " + f.DefValue
		}
		if fs.required[f.Name] {
			req = append(req, s)
		} else {
			opt = append(opt, "["+s+"]")
		}
	})
	parts := append([]string{"Usage: edgegate", fs.name}, req...)
	parts = append(parts, opt...)
	if fs.args != "" {
		parts = append(parts, fs.args)
	}
	return strings.Join(parts, " ")
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func (fs *flagSet) printUsage(w io.Writer) {
	fmt.Fprintf(w, "%s\n\nFlags:\n", fs.usageLine())
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(fs.e.stderr)
	if fs.examples != "" {
		fmt.Fprintf(w, "\nExamples:\n%s", fs.examples)
	}
}

// parseFlags parses args; it returns an exit code and false when the
// command should stop: after -h (usage on stdout, 0) or a usage error
// (the error and usage on stderr, 2).
func parseFlags(fs *flagSet, args []string) (int, bool) {
	usage := fs.Usage
	fs.Usage = func() {} // the flag package calls it on -h and on errors: printed below, each on its stream
	err := fs.Parse(args)
	fs.Usage = usage
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.printUsage(fs.e.stdout)
			return exitOK, false
		}
		fmt.Fprintln(fs.e.stderr)
		fs.printUsage(fs.e.stderr)
		return exitUsage, false
	}
	for n := range fs.required {
		if fs.Lookup(n).Value.String() == "" {
			return usageError(fs.e, fs, fs.name, "-"+n+" is required"), false
		}
	}
	return 0, true
}

// usageError reports a problem with the command line: on stderr, with the
// command's usage, exit status 2.
func usageError(e *env, fs *flagSet, name, msg string) int {
	fmt.Fprintf(e.stderr, "edgegate %s: %s\n\n", name, msg)
	fs.printUsage(e.stderr)
	return exitUsage
}

// newLogger builds the operational logger: JSON lines on w.
func newLogger(w io.Writer, level string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return zerolog.Nop(), fmt.Errorf("-log-level %q: use debug, info, warn or error", level)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}
