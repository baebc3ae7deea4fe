package logs

import (
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/edge/accesslog"
)

// chromiumDOM loads an HTML file in headless Chromium (Debian's chromium,
// which make deps installs) and returns the document as the browser holds
// it after parsing.
func chromiumDOM(t *testing.T, page string) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed (make deps installs it): %v", err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "report.html")
	if err := os.WriteFile(file, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir="+filepath.Join(dir, "profile"),
		"--dump-dom", "file://"+file)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("chromium: %v\n%s", err, stderr)
	}
	if !strings.Contains(string(out), "<svg") {
		t.Fatalf("chromium's DOM has no SVG:\n%.500s", out)
	}
	return string(out)
}

// The report as a browser renders it draws the numbers the summary gives:
// the requests chart's bars, read back from the SVG in Chromium's DOM
// through its own axis labels, are each bucket's requests per minute; the
// tallest is the summary's peak; the cards show the summary's mean, peak
// and hit ratio; the latency chart's p50 steps are the timeline's p50.
func TestReportInChromium(t *testing.T) {
	hand := handLog(t, slices.Concat(
		many(30, 50*time.Second, 10*time.Second, accesslog.ResultMiss),
		many(64, time.Minute, time.Minute, accesslog.ResultHit),
		many(22, 2*time.Minute, 12*time.Second, accesslog.ResultHit)))
	for _, tc := range []struct {
		name string
		s    *Summary
	}{{"partial minutes", hand}, {"incidents", incidentSummary(t)}} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.s
			dom := chromiumDOM(t, reportPage(t, s))
			charts := svgs(dom)
			c := readChart(t, charts[0], compactValue)
			drawn := drawnRequests(t, c)
			var want []float64
			perMinute := float64(s.Timeline.BucketSeconds) / 60
			for _, b := range s.Timeline.Buckets {
				if b.Requests > 0 {
					want = append(want, float64(b.Requests)/perMinute)
				}
			}
			if !sameDrawn(c, drawn, want, compactValue) {
				t.Errorf("the requests chart draws %v,\nthe summary's timeline says %v", drawn, want)
			}
			if peak := slices.Max(drawn); !sameDrawn(c, []float64{peak}, []float64{s.RequestsPerMinute.Peak}, compactValue) {
				t.Errorf("the tallest bar is %v, the summary's peak %v", peak, s.RequestsPerMinute.Peak)
			}
			card := regexp.MustCompile(`<div class="l">Requests per minute</div><div class="v">([^<]*)</div><div class="s">peak ([^<]*)</div>`).FindStringSubmatch(dom)
			if card == nil || card[1] != rate(s.RequestsPerMinute.Mean) || card[2] != rate(s.RequestsPerMinute.Peak) {
				t.Errorf("the rate card shows %q; the summary: mean %v, peak %v", card, s.RequestsPerMinute.Mean, s.RequestsPerMinute.Peak)
			}
			if s.RequestsPerMinute.Mean > s.RequestsPerMinute.Peak {
				t.Errorf("mean %v above the peak %v", s.RequestsPerMinute.Mean, s.RequestsPerMinute.Peak)
			}
			hr := regexp.MustCompile(`<div class="l">Cache hit ratio</div><div class="v">([^<]*)</div>`).FindStringSubmatch(dom)
			if hr == nil || hr[1] != percent(s.HitRatio.Requests) {
				t.Errorf("the hit ratio card shows %q; the summary %v", hr, s.HitRatio.Requests)
			}
			var lat string
			for _, svg := range charts {
				if strings.Contains(svg, `data-layer="p50"`) {
					lat = svg
				}
			}
			lc := readChart(t, lat, secondsValue)
			var p50 []float64
			for _, b := range s.Timeline.Buckets {
				if b.Requests > 0 {
					p50 = append(p50, b.P50, b.P50) // a step: its start and its end
				}
			}
			got := lc.lines["p50"]
			if len(got) != len(p50) {
				t.Fatalf("the p50 line has %d points, the timeline %d", len(got), len(p50))
			}
			for i := range got {
				if math.Abs(got[i]-p50[i]) > 0.02*p50[i]+1e-6 {
					t.Errorf("p50 point %d drawn at %v s, the timeline says %v s", i, got[i], p50[i])
				}
			}
		})
	}
}
