package main

import (
	"strings"
	"testing"
	"time"
)

func TestGoals(t *testing.T) {
	ms := time.Millisecond
	s := func(id, server string, rate float64, p50, p99 time.Duration) sample {
		return sample{Test: testName(id), Server: server, loadResult: loadResult{ReqPerSec: rate, P50: p50, P99: p99}, CPU: 1}
	}
	sums := summarize([]sample{
		s("hit-1k", serverNginx, 60000, 1*ms, 2*ms), s("hit-1k", serverEdgegate, 57000, 1*ms, 7*ms),
		s("hit-100k", serverNginx, 10000, 5*ms, 9*ms), s("hit-100k", serverEdgegate, 9900, 5*ms, 9*ms),
		s("new-tls", serverNginx, 5000, 2*ms, 9*ms), s("new-tls", serverEdgegate, 5000, 3*ms, 9*ms),
		s("pass", serverNginx, 40000, 1*ms, 2*ms), s("pass", serverCaddy, 26000, 1*ms, 2*ms), s("pass", serverEdgegate, 25000, 1*ms, 2*ms),
	})
	var b strings.Builder
	writeGoals(&b, goals(sums))
	got := b.String()
	for _, want := range []string{
		"- cache hit, 100 KiB, HTTP/1.1: at or above nginx: 0.99 (per CPU-s 0.99), missed\n",
		"- cache hit, 1 KiB, HTTP/1.1: at least 0.9x nginx: 0.95 (per CPU-s 0.95), met\n",
		// 0.625x nginx, but below Caddy.
		"- pass-through (caching disabled), 1 KiB: at least 0.6x nginx and above Caddy: 0.62 (per CPU-s 0.62), 0.96x Caddy, missed\n",
		"- new connection p50 within 1.5x nginx's: 1.5x (3.00 ms against 2.00 ms), met\n",
		"- p99 never above 3x nginx's: worst 3.5x (cache hit, 1 KiB, HTTP/1.1), missed\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("goals lack\n%sgot:\n%s", want, got)
		}
	}
	if strings.Contains(got, "HTTP/2") || strings.Contains(got, "miss (") {
		t.Errorf("goals of tests that did not run:\n%s", got)
	}
}
