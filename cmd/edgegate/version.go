package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// runVersion prints what the binary was built from, from its build info:
// the module version ("(devel)" for a build from a checkout), the VCS
// revision and time (with "+modified" for uncommitted changes), and the Go
// version and platform.
func runVersion(_ context.Context, e *env, args []string) int {
	fs := newFlags(e, "version", "", "  edgegate version\n  edgegate -version\n")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(e, fs, "version", fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		fmt.Fprintln(e.stderr, "edgegate version: this binary carries no build information")
		return exitFailure
	}
	writeVersion(e.stdout, bi)
	return exitOK
}

func writeVersion(w io.Writer, bi *debug.BuildInfo) {
	version := bi.Main.Version
	if version == "" {
		version = "(unknown)"
	}
	rev, at, modified := "unknown", "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if modified {
		rev += "+modified"
	}
	if at != "" {
		rev += " (" + at + ")"
	}
	fmt.Fprintf(w, "edgegate %s\nrevision %s\n%s %s/%s\n", version, rev, bi.GoVersion, runtime.GOOS, runtime.GOARCH)
}
