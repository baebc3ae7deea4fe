// Command benchlogs is `make bench-logs`: it generates a synthetic edge log
// of the given size (once; later runs reuse it), then times `edgegate logs
// summary` and GoAccess (`--log-format=CLOUDFRONT`) on the same file and
// prints lines per second and peak memory (maximum resident set size) of
// each. The file is read once before the runs so that both tools read it
// from the page cache.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/edgegate/edgegate/logs/internal/synth"
)

func main() {
	size := flag.String("size", "1GiB", "size of the generated log")
	dir := flag.String("dir", filepath.Join(os.TempDir(), "edgegate-bench-logs"), "where the generated log is kept between runs")
	edgegate := flag.String("edgegate", "bin/edgegate", "the edgegate binary")
	goaccess := flag.String("goaccess", "goaccess", "the goaccess binary")
	flag.Parse()
	if err := run(*size, *dir, *edgegate, *goaccess); err != nil {
		fmt.Fprintf(os.Stderr, "bench-logs: %v\n", err)
		os.Exit(1)
	}
}

func run(size, dir, edgegate, goaccess string) error {
	bytesWanted, err := parseSize(size)
	if err != nil {
		return err
	}
	for _, bin := range []*string{&edgegate, &goaccess} {
		p, err := exec.LookPath(*bin)
		if err != nil {
			return fmt.Errorf("%s: %w (run `make build`, and `make deps` for goaccess)", *bin, err)
		}
		*bin = p
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(dir, "bench-"+size+".log")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		fmt.Printf("generating %s (%s of synthetic edge traffic)...\n", path, size)
		if err := generate(path, bytesWanted); err != nil {
			return err
		}
	}
	lines, fileBytes, err := countRecords(path) // also warms the page cache
	if err != nil {
		return err
	}
	fmt.Printf("file: %s (%.2f GiB, %s lines, %d CPUs)\n\n", path, float64(fileBytes)/(1<<30), group(lines), runtime.NumCPU())

	work, err := os.MkdirTemp("", "bench-logs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	egOut := filepath.Join(work, "summary.json")
	eg, err := measure(egOut, edgegate, "logs", "summary", "-format", "json", path)
	if err != nil {
		return fmt.Errorf("edgegate logs summary: %w", err)
	}
	var summary struct {
		Input struct {
			Records, Malformed int64
		} `json:"input"`
	}
	if b, err := os.ReadFile(egOut); err != nil || json.Unmarshal(b, &summary) != nil || summary.Input.Records != lines {
		return fmt.Errorf("edgegate logs summary read %d records, want %d (%v)", summary.Input.Records, lines, err)
	}

	gaOut := filepath.Join(work, "goaccess.json")
	// --no-strict-status: GoAccess otherwise refuses status 000 lines,
	// which CloudFront and the edge write for viewers that left early.
	ga, err := measure(os.DevNull, goaccess, path, "--log-format=CLOUDFRONT", "--date-format=CLOUDFRONT",
		"--time-format=CLOUDFRONT", "--no-strict-status", "--no-global-config", "-o", gaOut)
	if err != nil {
		return fmt.Errorf("goaccess: %w", err)
	}
	var report struct {
		General struct {
			Total  int64 `json:"total_requests"`
			Failed int64 `json:"failed_requests"`
		} `json:"general"`
	}
	if b, err := os.ReadFile(gaOut); err != nil || json.Unmarshal(b, &report) != nil {
		return fmt.Errorf("goaccess report %s: %v", gaOut, err)
	}

	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(w, "%-34s %9s %12s %12s\n", "tool", "wall", "lines/s", "peak RSS")
	row := func(name string, r result) {
		fmt.Fprintf(w, "%-34s %8.2fs %12s %8.1f MiB\n", name, r.wall.Seconds(), group(int64(float64(lines)/r.wall.Seconds())),
			float64(r.maxRSS)/(1<<20))
	}
	row("edgegate logs summary", eg)
	row("goaccess --log-format=CLOUDFRONT", ga)
	fmt.Fprintf(w, "\nedgegate: %d records, %d malformed; goaccess: %d requests, %d invalid\n",
		summary.Input.Records, summary.Input.Malformed, report.General.Total, report.General.Failed)
	speedup := ga.wall.Seconds() / eg.wall.Seconds()
	verdict := "meets"
	if speedup < 5 {
		verdict = "MISSES"
	}
	fmt.Fprintf(w, "edgegate is %.1f times as fast as goaccess (%s the target of at least 5)\n", speedup, verdict)
	return w.Flush()
}

// result is one measured run.
type result struct {
	wall   time.Duration
	maxRSS int64 // bytes
}

// measure runs a command with its standard output in outPath and returns its
// wall time and peak resident memory (from the kernel's rusage of the
// child, as /usr/bin/time -v reports it).
func measure(outPath, bin string, args ...string) (result, error) {
	out, err := os.Create(outPath)
	if err != nil {
		return result{}, err
	}
	defer out.Close()
	var stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, &stderr
	start := time.Now()
	err = cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return result{}, fmt.Errorf("%v\n%s", err, stderr.String())
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return result{}, errors.New("no resource usage for the child process")
	}
	return result{wall: wall, maxRSS: ru.Maxrss * 1024}, nil // Maxrss is in KiB on Linux
}

func generate(path string, size int64) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	cfg := synth.Config{Seed: 1, Start: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC), Duration: 24 * time.Hour, Incidents: true}
	if _, err := synth.WriteSize(bw, cfg, size); err != nil {
		f.Close()
		return err
	}
	if err := errors.Join(bw.Flush(), f.Close()); err != nil {
		return fmt.Errorf("%s: %w", tmp, err)
	}
	return os.Rename(tmp, path)
}

// countRecords counts the lines that are not header lines.
func countRecords(path string) (lines, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	atLineStart := true
	for {
		n, err := f.Read(buf)
		for _, c := range buf[:n] {
			if atLineStart && c != '#' {
				lines++
			}
			atLineStart = c == '\n'
		}
		size += int64(n)
		if errors.Is(err, io.EOF) {
			return lines, size, nil
		}
		if err != nil {
			return 0, 0, err
		}
	}
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.m
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("-size %q: want a size like 1GiB", s)
	}
	return int64(n * float64(mult)), nil
}

// group formats n with thousands separators.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
