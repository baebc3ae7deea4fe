package logs

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkAnalyze reads a synthetic log of typical edge traffic from disk
// (page cache) on every core and reports lines per second. `make
// bench-logs` measures a 1 GiB file against GoAccess.
func BenchmarkAnalyze(b *testing.B) {
	const lines = 200_000
	data := synthLog(b, lines, 6*time.Hour, true)
	path := filepath.Join(b.TempDir(), "bench.log")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	sources := []Source{{Name: path}}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var records int64
	for b.Loop() {
		an, err := Analyze(context.Background(), sources, Options{})
		if err != nil {
			b.Fatal(err)
		}
		records += an.Records()
		_ = Summarize(an, 10)
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkSummarize measures turning an analysis into a summary (findings
// included), which happens once per run.
func BenchmarkSummarize(b *testing.B) {
	data := synthLog(b, 100_000, 24*time.Hour, true)
	path := filepath.Join(b.TempDir(), "bench.log")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	an, err := Analyze(context.Background(), []Source{{Name: path}}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		_ = Summarize(an, 10)
	}
}
