package main

import (
	"fmt"
	"io"
	"strings"
)

// goal is one of issue 14's goals and where a run put it.
type goal struct {
	Goal   string `json:"goal"`
	Result string `json:"result"`
	Met    bool   `json:"met"`
}

// goals checks a run's summaries against the goals of issue 14, as ratios
// to nginx (and Caddy) within the run. A goal whose tests did not run is
// left out.
func goals(sums []summary) []goal {
	find := func(id, server string) *summary {
		name := testName(id)
		for i := range sums {
			if sums[i].Test == name && sums[i].Server == server {
				return &sums[i]
			}
		}
		return nil
	}
	var out []goal
	ratio := func(id, text string, min float64) {
		if e := find(id, serverEdgegate); e != nil && e.VsNginx > 0 {
			out = append(out, goal{text, fmt.Sprintf("%.2f (per CPU-s %.2f)", e.VsNginx, e.PerCPUVsNginx), e.VsNginx >= min})
		}
	}
	ratio("hit-100k", "cache hit, 100 KiB, HTTP/1.1: at or above nginx", 1)
	ratio("hit-1k", "cache hit, 1 KiB, HTTP/1.1: at least 0.9x nginx", 0.9)
	ratio("hit-1k-h2", "cache hit, 1 KiB, HTTP/2: at least 0.6x nginx", 0.6)
	for _, id := range []string{"pass", "miss"} {
		e := find(id, serverEdgegate)
		if e == nil || e.VsNginx == 0 {
			continue
		}
		g := goal{Goal: testName(id) + ": at least 0.6x nginx and above Caddy",
			Result: fmt.Sprintf("%.2f (per CPU-s %.2f)", e.VsNginx, e.PerCPUVsNginx), Met: e.VsNginx >= 0.6}
		if e.VsCaddy > 0 {
			g.Result += fmt.Sprintf(", %.2fx Caddy", e.VsCaddy)
			g.Met = g.Met && e.VsCaddy > 1
		}
		out = append(out, g)
	}
	if e, n := find("new-tls", serverEdgegate), find("new-tls", serverNginx); e != nil && n != nil && n.P50 > 0 {
		r := float64(e.P50) / float64(n.P50)
		out = append(out, goal{"new connection p50 within 1.5x nginx's", fmt.Sprintf("%.1fx (%s against %s)", r, formatLatency(e.P50), formatLatency(n.P50)), r <= 1.5})
	}
	worst, worstTest := 0.0, ""
	for _, s := range sums {
		if s.Server == serverEdgegate && s.P99VsNginx > worst {
			worst, worstTest = s.P99VsNginx, s.Test
		}
	}
	if worstTest != "" {
		out = append(out, goal{"p99 never above 3x nginx's", fmt.Sprintf("worst %.1fx (%s)", worst, worstTest), worst <= 3})
	}
	return out
}

func testName(id string) string {
	for _, t := range tests() {
		if t.ID == id {
			return t.Name
		}
	}
	return id
}

// writeGoals prints where the run put each goal.
func writeGoals(w io.Writer, gs []goal) {
	for _, g := range gs {
		mark := "missed"
		if g.Met {
			mark = "met"
		}
		fmt.Fprintf(w, "- %s: %s, %s\n", strings.TrimSpace(g.Goal), g.Result, mark)
	}
}
