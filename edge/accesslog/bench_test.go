package accesslog

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

func BenchmarkAppendRecord(b *testing.B) {
	r := typical(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	buf := make([]byte, 0, 4096)
	buf = AppendRecord(buf, &r)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendRecord(buf[:0], &r)
	}
}

// BenchmarkReader reads a file of mostly typical lines with some awkward
// ones and reports lines per second.
func BenchmarkReader(b *testing.B) {
	const lines = 10_000
	base := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	samples := sampleRecords(base)
	data := AppendHeader(nil)
	for i := range lines {
		r := typical(base.Add(time.Duration(i) * time.Millisecond))
		if i%10 == 0 {
			r = samples[i/10%len(samples)]
		}
		data = AppendRecord(data, &r)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		rd := NewReader(bytes.NewReader(data), "bench.log")
		n := 0
		for {
			_, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != lines {
			b.Fatalf("%d lines, want %d", n, lines)
		}
	}
	b.ReportMetric(float64(lines*b.N)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkWriterParallel measures Write from concurrent request handlers.
func BenchmarkWriterParallel(b *testing.B) {
	w, err := NewWriter(WriterConfig{Dir: b.TempDir(), Prefix: "bench", Rotate: time.Hour, FlushInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	r := typical(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := w.Write(&r); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
}
