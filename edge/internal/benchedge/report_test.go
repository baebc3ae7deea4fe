package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestSummarizeMediansSpreadAndRatios(t *testing.T) {
	ms := time.Millisecond
	samples := []sample{
		{Test: "hit", Server: serverNginx, Round: 1, loadResult: loadResult{ReqPerSec: 60000, P50: 1 * ms, P99: 2 * ms}, CPU: 1, RSS: 30e6, WritesPerRequest: 1, OriginHandshakes: -1},
		{Test: "hit", Server: serverEdgegate, Round: 1, loadResult: loadResult{ReqPerSec: 45000, P50: 2 * ms, P99: 5 * ms, Errors: 1}, CPU: 1, RSS: 40e6, OriginHandshakes: -1},
		{Test: "hit", Server: serverNginx, Round: 2, loadResult: loadResult{ReqPerSec: 50000, P50: 1 * ms, P99: 4 * ms}, CPU: 0.9, RSS: 31e6, WritesPerRequest: 1, OriginHandshakes: -1},
		{Test: "hit", Server: serverEdgegate, Round: 2, loadResult: loadResult{ReqPerSec: 50000, P50: 3 * ms, P99: 6 * ms, Errors: 2}, CPU: 1, RSS: 42e6, OriginHandshakes: -1},
		{Test: "hit", Server: serverNginx, Round: 3, loadResult: loadResult{ReqPerSec: 40000, P50: 1 * ms, P99: 3 * ms}, CPU: 0.8, RSS: 32e6, OriginHandshakes: -1},
		{Test: "hit", Server: serverEdgegate, Round: 3, loadResult: loadResult{ReqPerSec: 40000, P50: 2 * ms, P99: 9 * ms}, CPU: 1, RSS: 41e6, OriginHandshakes: -1},
		{Test: "pass", Server: serverCaddy, Round: 1, loadResult: loadResult{ReqPerSec: 10000}, CPU: 1, OriginHandshakes: 5.6},
		{Test: "pass", Server: serverEdgegate, Round: 1, loadResult: loadResult{ReqPerSec: 13000}, CPU: 0.5, WritesPerRequest: 1.98, OriginHandshakes: 0.5},
	}
	sums := summarize(samples)
	if len(sums) != 4 {
		t.Fatalf("%d summaries, want 4: %+v", len(sums), sums)
	}
	n, e := sums[0], sums[1]
	if n.Server != serverNginx || e.Server != serverEdgegate || n.Rounds != 3 {
		t.Fatalf("order: %+v", sums)
	}
	if n.ReqPerSec != 50000 || n.P99 != 3*ms || n.CPU != 0.9 || n.RSS != 31e6 {
		t.Errorf("nginx medians: %+v", n)
	}
	if math.Abs(n.Spread-0.4) > 1e-9 { // (60k-40k)/50k
		t.Errorf("nginx spread %v, want 0.4", n.Spread)
	}
	if e.Errors != 3 {
		t.Errorf("errors %d, want all rounds' 3", e.Errors)
	}
	if math.Abs(e.VsNginx-0.9) > 1e-9 || e.P99VsNginx != 2 || e.VsCaddy != 0 {
		t.Errorf("edgegate ratios: vs nginx %v (p99 %v), vs Caddy %v; want 0.9 (2), none", e.VsNginx, e.P99VsNginx, e.VsCaddy)
	}
	if n.VsNginx != 0 {
		t.Error("nginx row has a ratio")
	}
	if p := sums[3]; math.Abs(p.VsCaddy-1.3) > 1e-9 || p.VsNginx != 0 || p.OriginHandshakes != 0.5 {
		t.Errorf("pass: %+v", p)
	}
	if got := noise(sums); math.Abs(got-0.4) > 1e-9 {
		t.Errorf("noise %v, want the largest spread 0.4", got)
	}

	var b strings.Builder
	writeTable(&b, sums)
	table := b.String()
	for _, want := range []string{
		"| hit | nginx | 50.0k | 1.00 ms | 3.00 ms | 90% | 55.6k | 1.00 | 31 MB | — | 40% |  |  |",
		"| hit | edgegate | 45.0k (3 errors) | 2.00 ms | 6.00 ms | 100% | 45.0k | 0.00 | 41 MB | — | 22% | **0.90** (p99 ×2.0, per CPU-s 0.81) |  |",
		"| pass | edgegate | 13.0k | — | — | 50% | 26.0k | 1.98 | 0 MB | 0.50 | 0% |  | **1.30** (per CPU-s 2.60) |",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks\n%s\ngot:\n%s", want, table)
		}
	}
	if lines := strings.Count(table, "\n"); lines != 2+len(sums) {
		t.Errorf("%d lines, want header, rule and %d rows", lines, len(sums))
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestOriginHandshakes(t *testing.T) {
	for _, c := range []struct {
		accepted, served, viewer int64
		want                     float64
	}{
		{51, 100001, 100000, 0.5},  // 50 connections for 100,000 proxied requests
		{1, 1, 100000, -1},         // only the status request: hits
		{2, 2, 100000, -1},         // one miss before the hits: no meaningful figure
		{1001, 10001, 100000, 100}, // 10% misses, a new connection each tenth
		{11, 1001, 10000, 10},      // exactly 10% of the viewer's requests reach it
		{0, 0, 0, -1},              // counters did not move (should not happen)
	} {
		if got := originHandshakes(c.accepted, c.served, c.viewer); got != c.want {
			t.Errorf("originHandshakes(%d, %d, %d) = %v, want %v", c.accepted, c.served, c.viewer, got, c.want)
		}
	}
}

func TestParseSyscw(t *testing.T) {
	io := "rchar: 6976\nwchar: 120\nsyscr: 10\nsyscw: 4242\nread_bytes: 0\n"
	if got := parseSyscw(io); got != 4242 {
		t.Errorf("syscw %d, want 4242", got)
	}
	if got := parseSyscw("rchar: 1\n"); got != 0 {
		t.Errorf("no syscw line: %d", got)
	}
}
