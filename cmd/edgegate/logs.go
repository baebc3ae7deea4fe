package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/edgegate/edgegate/logs"
)

const logsUsage = `Usage: edgegate logs summary [flags] FILE|DIR|- ...
       edgegate logs report -o FILE [flags] FILE|DIR|- ...

Analyse CloudFront-format standard logs: the edge's own files or real
CloudFront ones of any era, plain or gzipped. A directory is read
recursively in name order; "-" is standard input.

  summary   counts, ratios, latency percentiles, top lists, errors and
            findings in plain words, as a table, JSON or CSV
  report    the same as one self-contained HTML page with charts

Run 'edgegate help logs summary' or 'edgegate help logs report' for the flags.

Examples:
  edgegate logs summary /var/log/edgegate
  edgegate logs summary -format json -since 2h /var/log/edgegate
  edgegate logs report -o report.html /var/log/edgegate
`

// runLogs dispatches `edgegate logs summary|report`.
func runLogs(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, logsUsage)
		return exitUsage
	}
	switch args[0] {
	case "summary":
		return runLogsSummary(ctx, e, args[1:])
	case "report":
		return runLogsReport(ctx, e, args[1:])
	case "-h", "-help", "--help", "help":
		fmt.Fprint(e.stdout, logsUsage)
		return exitOK
	}
	fmt.Fprintf(e.stderr, "edgegate logs: unknown subcommand %q\n\n%s", args[0], logsUsage)
	return exitUsage
}

// logsFlags are the flags both subcommands share.
type logsFlags struct {
	top    int
	filter logs.FilterSpec
}

func (l *logsFlags) register(fs *flagSet) {
	fs.IntVar(&l.top, "top", 10, "length `N` of the top lists (hosts, URIs, clients, ...)")
	fs.StringVar(&l.filter.Since, "since", "", "only requests at or after this `TIME`: 2026-11-22T13:00:00Z, '2026-11-22 13:00', 2026-11-22, or a duration before now (2h)")
	fs.StringVar(&l.filter.Until, "until", "", "only requests before this `TIME` (same forms as -since)")
	fs.StringVar(&l.filter.Host, "host", "", "only these `HOSTS` (Host header or cs(Host)), comma-separated, * and ? allowed")
	fs.StringVar(&l.filter.Status, "status", "", "only these `STATUSES`: codes, classes or ranges, e.g. 502,4xx,500-504")
	fs.StringVar(&l.filter.Result, "result", "", "only these `RESULTS` (result types in any of the three result fields), e.g. Error,OriginConnectError")
	fs.StringVar(&l.filter.URI, "uri", "", "only URIs matching this `PATTERN`, * matching any run (e.g. '/api/*')")
}

func runLogsSummary(ctx context.Context, e *env, args []string) int {
	fs := newFlags(e, "logs summary", "FILE|DIR|- ...",
		`  edgegate logs summary /var/log/edgegate
  edgegate logs summary -format json -since 2h /var/log/edgegate > summary.json
  edgegate logs summary -host www.example.com -status 5xx E2ABC.2026-11-22-*.gz
  zcat cloudfront/*.gz | edgegate logs summary -top 20 -
`)
	var lf logsFlags
	lf.register(fs)
	format := fs.String("format", "table", "output `FORMAT`: table (for a terminal), json (keys documented in the logs package) or csv")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	switch *format {
	case logs.FormatTable, logs.FormatJSON, logs.FormatCSV:
	default:
		fmt.Fprintf(e.stderr, "edgegate logs summary: -format %q: use table, json or csv\n", *format)
		return exitUsage
	}
	s, code := analyseLogs(ctx, e, "logs summary", fs, &lf)
	if s == nil {
		return code
	}
	if err := logs.WriteSummary(e.stdout, s, *format); err != nil {
		fmt.Fprintf(e.stderr, "edgegate logs summary: %v\n", err)
		return exitFailure
	}
	return code
}

func runLogsReport(ctx context.Context, e *env, args []string) int {
	fs := newFlags(e, "logs report", "FILE|DIR|- ...",
		`  edgegate logs report -o report.html /var/log/edgegate
  edgegate logs report -o today.html -since 24h -host www.example.com /var/log/edgegate
`)
	var lf logsFlags
	lf.register(fs)
	out := fs.String("o", "", "the HTML `FILE` to write")
	title := fs.String("title", "", "the report's `TITLE` (default: the inputs)")
	fs.require("o")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	s, code := analyseLogs(ctx, e, "logs report", fs, &lf)
	if s == nil {
		return code
	}
	if err := writeReportFile(*out, s, *title); err != nil {
		fmt.Fprintf(e.stderr, "edgegate logs report: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(e.stderr, "edgegate logs report: wrote %s (%s, %s)\n", *out, logs.Quantity(s.Requests, "request"), logs.Quantity(int64(len(s.Findings)), "finding"))
	return code
}

// analyseLogs checks the shared flags and arguments, reads the inputs and
// summarises them. It reports problems on stderr: a nil summary comes with
// the exit code; otherwise the code is exitFailure when some input could
// not be read (the summary covers the rest), exitOK else.
func analyseLogs(ctx context.Context, e *env, name string, fs *flagSet, lf *logsFlags) (*logs.Summary, int) {
	if fs.NArg() == 0 {
		return nil, usageError(e, fs, name, "name at least one log file, directory or - (standard input)")
	}
	for _, arg := range fs.Args() {
		if _, err := os.Stat(arg); err != nil && len(arg) > 1 && arg[0] == '-' {
			fmt.Fprintf(e.stderr, "edgegate %s: %s comes after the files; put the flags first\n", name, arg)
			return nil, exitUsage
		}
	}
	if lf.top < 1 {
		fmt.Fprintf(e.stderr, "edgegate %s: -top %d: must be at least 1\n", name, lf.top)
		return nil, exitUsage
	}
	filter, err := logs.NewFilter(lf.filter, time.Now())
	if err != nil {
		fmt.Fprintf(e.stderr, "edgegate %s: %v\n", name, err)
		return nil, exitUsage
	}
	sources, skipped, err := logs.Expand(fs.Args())
	if err != nil {
		// An input named on the command line that is not there is bad
		// usage, as check -config with a missing file is.
		fmt.Fprintf(e.stderr, "edgegate %s: %v\n", name, err)
		return nil, exitUsage
	}
	var skipNote string
	if len(skipped) > 0 {
		skipNote = fmt.Sprintf("%s in the directories given not read because their names do not look like logs "+
			"(*.log, *.gz), e.g. %s; name a file explicitly to read it", logs.Quantity(int64(len(skipped)), "file"), skipped[0])
		fmt.Fprintf(e.stderr, "edgegate %s: %s\n", name, skipNote)
	}
	an, err := logs.Analyze(ctx, sources, logs.Options{Filter: filter, Stdin: e.stdin})
	if err != nil {
		fmt.Fprintf(e.stderr, "edgegate %s: %v\n", name, err)
		return nil, exitFailure
	}
	code := exitOK
	for _, err := range an.InputErrors {
		fmt.Fprintf(e.stderr, "edgegate %s: %v\n", name, err)
		code = exitFailure
	}
	if n := an.Malformed(); n > 0 {
		p := an.Problems()[0]
		fmt.Fprintf(e.stderr, "edgegate %s: %s counted and skipped; the first: %s:%d: %s\n",
			name, logs.Quantity(n, "malformed line"), p.File, p.Line, p.Message)
	}
	s := logs.Summarize(an, lf.top)
	if skipNote != "" {
		s.Notes = append(s.Notes, skipNote)
	}
	s.Freshness = logs.FreshnessNote(s, time.Now())
	return s, code
}

// writeReportFile writes the report next to its final name and renames it,
// so that a browser never sees half a page.
func writeReportFile(path string, s *logs.Summary, title string) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("report %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := logs.WriteReport(tmp, s, logs.ReportOptions{Title: title}); err != nil {
		return fmt.Errorf("report %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("report %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("report %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("report %s: %w", path, errors.Join(err, os.Remove(tmp.Name())))
	}
	return nil
}
