// Command genlog writes a synthetic CloudFront-format standard log for
// benchmarks and demonstrations of `edgegate logs`:
//
//	go run ./logs/internal/genlog -size 1GiB -o /tmp/bench.log
//	go run ./logs/internal/genlog -records 50000 -duration 6h -o demo.log
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/edgegate/edgegate/logs/internal/synth"
)

func main() {
	size := flag.String("size", "", "approximate file size, e.g. 1GiB or 200MiB (instead of -records)")
	records := flag.Int64("records", 100_000, "number of records, when -size is not given")
	out := flag.String("o", "", "output file (required)")
	duration := flag.Duration("duration", 24*time.Hour, "time span of the records")
	start := flag.String("start", "2026-11-22T00:00:00Z", "time of the first record, RFC 3339")
	seed := flag.Uint64("seed", 1, "random seed; the same seed gives the same file")
	incidents := flag.Bool("incidents", true, "include incidents for the findings (origin errors, hit ratio drop, scanner, hammering client)")
	flag.Parse()
	if *out == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	t0, err := time.Parse(time.RFC3339, *start)
	if err != nil {
		fmt.Fprintf(os.Stderr, "genlog: -start: %v\n", err)
		os.Exit(2)
	}
	cfg := synth.Config{Seed: *seed, Start: t0.UTC(), Duration: *duration, Incidents: *incidents}
	if err := run(cfg, *out, *size, *records); err != nil {
		fmt.Fprintf(os.Stderr, "genlog: %v\n", err)
		os.Exit(1)
	}
}

func run(cfg synth.Config, path, size string, records int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	var n int64
	if size != "" {
		bytes, err := parseSize(size)
		if err != nil {
			f.Close()
			return fmt.Errorf("-size: %w", err)
		}
		n, err = synth.WriteSize(bw, cfg, bytes)
		if err != nil {
			f.Close()
			return err
		}
	} else {
		n = records
		if err := synth.Write(bw, cfg, records); err != nil {
			f.Close()
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	fmt.Printf("%s: %d records\n", path, n)
	return nil
}

// parseSize reads 1GiB, 200MiB, 64KiB or a plain byte count.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.m
			break
		}
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q: want a size like 1GiB", s)
	}
	return int64(n * float64(mult)), nil
}
