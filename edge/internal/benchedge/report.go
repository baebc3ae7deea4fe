package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// Server names, as the table and the JSON file show them.
const (
	serverNginx    = "nginx"
	serverCaddy    = "Caddy"
	serverEdgegate = "edgegate"
)

// sample is one run of one test against one server in one round.
type sample struct {
	Test   string `json:"test"`
	Server string `json:"server"`
	Round  int    `json:"round"`
	loadResult
	// CPU is the server's CPU time over the run divided by the run's wall
	// time: 1.0 is one core fully busy.
	CPU float64 `json:"cpu"`
	// RSS is the largest resident set seen during the run (all processes
	// of the server, e.g. nginx's master and worker), in bytes.
	RSS int64 `json:"rss_bytes"`
	// WritesPerRequest is the server's write system calls per request
	// completed: output coalescing (viewer and origin side together).
	WritesPerRequest float64 `json:"writes_per_request"`
	// OriginHandshakes is how many connections the origin accepted per
	// 1,000 requests it served during the run (each a TLS handshake);
	// negative when the origin was not involved.
	OriginHandshakes float64 `json:"origin_handshakes_per_1k"`
}

// summary is the median of a test's rounds for one server.
type summary struct {
	Test      string        `json:"test"`
	Server    string        `json:"server"`
	Rounds    int           `json:"rounds"`
	ReqPerSec float64       `json:"req_per_sec"`
	P50       time.Duration `json:"p50_ns"`
	P99       time.Duration `json:"p99_ns"`
	CPU       float64       `json:"cpu"`
	// PerCPU is requests per CPU-second of the server: what a request
	// costs, which other load on the machine disturbs less than req/s.
	PerCPU           float64 `json:"req_per_cpu_second"`
	RSS              int64   `json:"rss_bytes"`
	WritesPerRequest float64 `json:"writes_per_request"`
	Errors           int64   `json:"errors"`
	OriginHandshakes float64 `json:"origin_handshakes_per_1k"`
	// Spread is (max - min) / median of req/s over the rounds: the noise.
	Spread float64 `json:"spread"`
	// VsNginx and VsCaddy are edgegate's req/s over the other's (0: not
	// measured); P99VsNginx is edgegate's p99 over nginx's.
	VsNginx    float64 `json:"vs_nginx,omitempty"`
	VsCaddy    float64 `json:"vs_caddy,omitempty"`
	P99VsNginx float64 `json:"p99_vs_nginx,omitempty"`
	// PerCPUVsNginx and PerCPUVsCaddy compare requests per CPU-second.
	PerCPUVsNginx float64 `json:"per_cpu_vs_nginx,omitempty"`
	PerCPUVsCaddy float64 `json:"per_cpu_vs_caddy,omitempty"`
}

// summarize reduces samples to medians per test and server, in the order
// tests and servers first appear, and computes edgegate's ratios.
func summarize(samples []sample) []summary {
	type key struct{ test, server string }
	groups := map[key][]sample{}
	var order []key
	for _, s := range samples {
		k := key{s.Test, s.Server}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], s)
	}
	var out []summary
	byKey := map[key]*summary{}
	for _, k := range order {
		g := groups[k]
		pick := func(f func(sample) float64) float64 {
			v := make([]float64, len(g))
			for i, s := range g {
				v[i] = f(s)
			}
			return median(v)
		}
		rates := make([]float64, len(g))
		var errs int64
		for i, s := range g {
			rates[i] = s.ReqPerSec
			errs += s.Errors
		}
		med := median(rates)
		spread := 0.0
		if med > 0 {
			spread = (slices.Max(rates) - slices.Min(rates)) / med
		}
		out = append(out, summary{
			Test: k.test, Server: k.server, Rounds: len(g), ReqPerSec: med,
			P50: time.Duration(pick(func(s sample) float64 { return float64(s.P50) })),
			P99: time.Duration(pick(func(s sample) float64 { return float64(s.P99) })),
			CPU: pick(func(s sample) float64 { return s.CPU }),
			PerCPU: pick(func(s sample) float64 {
				if s.CPU <= 0 {
					return 0
				}
				return s.ReqPerSec / s.CPU
			}),
			RSS:              int64(pick(func(s sample) float64 { return float64(s.RSS) })),
			WritesPerRequest: pick(func(s sample) float64 { return s.WritesPerRequest }),
			Errors:           errs,
			OriginHandshakes: pick(func(s sample) float64 { return s.OriginHandshakes }),
			Spread:           spread,
		})
	}
	for i := range out {
		byKey[key{out[i].Test, out[i].Server}] = &out[i]
	}
	for i := range out {
		s := &out[i]
		if s.Server != serverEdgegate {
			continue
		}
		if n := byKey[key{s.Test, serverNginx}]; n != nil && n.ReqPerSec > 0 {
			s.VsNginx = s.ReqPerSec / n.ReqPerSec
			if n.P99 > 0 {
				s.P99VsNginx = float64(s.P99) / float64(n.P99)
			}
			if n.PerCPU > 0 {
				s.PerCPUVsNginx = s.PerCPU / n.PerCPU
			}
		}
		if c := byKey[key{s.Test, serverCaddy}]; c != nil && c.ReqPerSec > 0 {
			s.VsCaddy = s.ReqPerSec / c.ReqPerSec
			if c.PerCPU > 0 {
				s.PerCPUVsCaddy = s.PerCPU / c.PerCPU
			}
		}
	}
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// writeTable prints the summaries as a Markdown table (the README's
// performance section is a copy of it): one row per test and server,
// edgegate's rows carrying the ratios: of req/s, of p99 and of requests
// per CPU-second.
func writeTable(w io.Writer, sums []summary) {
	fmt.Fprintln(w, "| test | server | req/s | p50 | p99 | CPU | req/CPU-s | writes/req | RSS | origin TLS / 1k req | spread (max−min)/median | edgegate / nginx | edgegate / Caddy |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
	for _, s := range sums {
		hs := "—"
		if s.OriginHandshakes >= 0 {
			hs = fmt.Sprintf("%.2f", s.OriginHandshakes)
		}
		rate := formatRate(s.ReqPerSec)
		if s.Errors > 0 {
			rate += fmt.Sprintf(" (%d errors)", s.Errors)
		}
		vsN, vsC := "", ""
		if s.VsNginx > 0 {
			vsN = fmt.Sprintf("**%.2f** (p99 ×%.1f, per CPU-s %.2f)", s.VsNginx, s.P99VsNginx, s.PerCPUVsNginx)
		}
		if s.VsCaddy > 0 {
			vsC = fmt.Sprintf("**%.2f** (per CPU-s %.2f)", s.VsCaddy, s.PerCPUVsCaddy)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %.0f%% | %s | %.2f | %s | %s | %.0f%% | %s | %s |\n",
			s.Test, s.Server, rate, formatLatency(s.P50), formatLatency(s.P99), s.CPU*100, formatRate(s.PerCPU),
			s.WritesPerRequest, formatMB(s.RSS), hs, s.Spread*100, vsN, vsC)
	}
}

// noise is the largest spread of any row, for the run's headline.
func noise(sums []summary) float64 {
	n := 0.0
	for _, s := range sums {
		n = math.Max(n, s.Spread)
	}
	return n
}

func formatRate(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%.1fk", v/1000)
	}
	return fmt.Sprintf("%.0f", v)
}

func formatLatency(d time.Duration) string {
	switch {
	case d <= 0:
		return "—"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
}

func formatMB(b int64) string {
	return fmt.Sprintf("%.0f MB", float64(b)/1e6)
}

// testNames lists the tests' names for -h and errors.
func testNames(tests []benchTest) string {
	var n []string
	for _, t := range tests {
		n = append(n, t.Name)
	}
	return strings.Join(n, ", ")
}
