package logs

import (
	"bytes"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/edge/accesslog"
)

// req is one request of a hand-made log: when, after testStart, and how
// it ended.
type req struct {
	at     time.Duration
	result accesslog.ResultType
	took   time.Duration
}

// handLog writes reqs as a standard log file and summarises it.
func handLog(t *testing.T, reqs []req) *Summary {
	t.Helper()
	b := []byte(accesslog.Header())
	for i, q := range reqs {
		var r accesslog.Record
		r.Reset()
		r.Time = testStart().Add(q.at)
		r.Location, r.ClientIP, r.Method, r.Host, r.URIStem = "TST1", "192.0.2.1", "GET", "www.example.test", fmt.Sprintf("/p/%d", i)
		r.Status, r.ResultType, r.ResponseResultType, r.DetailedResultType = 200, q.result, q.result, q.result
		if q.result == accesslog.ResultRedirect {
			r.Status = 301
		}
		r.RequestID, r.HostHeader, r.Protocol, r.ProtocolVersion = fmt.Sprintf("id%d", i), "www.example.test", "https", "HTTP/1.1"
		r.BytesSent, r.TimeTaken, r.TimeToFirstByte = 100, q.took, q.took
		b = accesslog.AppendRecord(b, &r)
	}
	path := writeFile(t, filepath.Join(t.TempDir(), "edge.log"), b)
	_, s := analyze(t, Options{}, path)
	return s
}

// many is n requests of a result type spread over [from, from+d).
func many(n int, from, d time.Duration, result accesslog.ResultType) []req {
	var out []req
	for i := range n {
		out = append(out, req{at: from + d*time.Duration(i)/time.Duration(n), result: result, took: 20 * time.Millisecond})
	}
	return out
}

func reportPage(t *testing.T, s *Summary) string {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteReport(&buf, s, ReportOptions{}); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// drawnChart is what a time chart shows, read back from its SVG alone:
// the value axis from its labelled grid lines, the bars and the step lines
// as values, the finding bands as x ranges.
type drawnChart struct {
	ticks []drawnTick
	bars  map[float64]float64 // x of a bar → its stacked value
	barW  map[float64]float64 // x of a bar → its width
	lines map[string][]float64
	bands [][2]float64
	edges []float64 // x of the bars' edges (start and end)
}

type drawnTick struct {
	y     float64
	label string
}

var (
	tagRe  = regexp.MustCompile(`<(rect|text|path|line)\b([^>]*)>([^<]*)`)
	attrRe = regexp.MustCompile(`([\w-]+)="([^"]*)"`)
)

func attrs(s string) map[string]string {
	m := map[string]string{}
	for _, a := range attrRe.FindAllStringSubmatch(s, -1) {
		m[a[1]] = a[2]
	}
	return m
}

func atof(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("not a number in the SVG: %q", s)
	}
	return v
}

// readChart reads an SVG chart whose labels parse with value.
func readChart(t *testing.T, svg string, value func(label string) float64) drawnChart {
	t.Helper()
	c := drawnChart{bars: map[float64]float64{}, barW: map[float64]float64{}, lines: map[string][]float64{}}
	type bar struct{ x, y, w, h float64 }
	var bars []bar
	var paths []map[string]string
	for _, m := range tagRe.FindAllStringSubmatch(svg, -1) {
		a := attrs(m[2])
		switch {
		case m[1] == "text" && a["class"] == "ylab":
			c.ticks = append(c.ticks, drawnTick{y: atof(t, a["y"]) - 4, label: strings.TrimSpace(m[3])})
		case m[1] == "rect" && a["class"] == "bar":
			bars = append(bars, bar{atof(t, a["x"]), atof(t, a["y"]), atof(t, a["width"]), atof(t, a["height"])})
		case m[1] == "rect" && a["class"] == "finding":
			x := atof(t, a["x"])
			c.bands = append(c.bands, [2]float64{x, x + atof(t, a["width"])})
		case m[1] == "path" && a["data-layer"] != "":
			paths = append(paths, a)
		}
	}
	if len(c.ticks) < 2 {
		t.Fatalf("fewer than two value labels in the chart")
	}
	// Value at y, by the two labelled lines around it (linear between
	// them: for a log axis, in the logarithm).
	slices.SortFunc(c.ticks, func(a, b drawnTick) int { return -cmpF(a.y, b.y) }) // bottom first
	logScale := false
	for i := 0; i+1 < len(c.ticks); i++ {
		if vl, vh := value(c.ticks[i].label), value(c.ticks[i+1].label); vl > 0 && vh/vl >= 9.99 {
			logScale = true // labelled by decades
		}
	}
	at := func(y float64) float64 {
		for i := 0; i+1 < len(c.ticks); i++ {
			lo, hi := c.ticks[i], c.ticks[i+1]
			if y <= lo.y+0.05 && y >= hi.y-0.05 {
				vl, vh := value(lo.label), value(hi.label)
				f := (lo.y - y) / (lo.y - hi.y)
				switch {
				case logScale && vl > 0:
					return vl * math.Pow(vh/vl, f)
				case logScale && f < 0.01: // on the line for 0 under the decades
					return 0
				case logScale:
					t.Fatalf("y %.2f is between 0 and the lowest decade of a logarithmic axis", y)
				}
				return vl + f*(vh-vl)
			}
		}
		t.Fatalf("y %.2f is outside the labelled axis", y)
		return 0
	}
	base := c.ticks[0].y
	for _, b := range bars {
		c.bars[b.x] += at(base-b.h) - at(base)
		c.barW[b.x] = b.w
		c.edges = append(c.edges, b.x, b.x+b.w)
	}
	for _, p := range paths {
		for _, seg := range strings.Fields(p["d"]) {
			_, ys, _ := strings.Cut(seg[1:], ",") // M or L, then x,y
			c.lines[p["data-layer"]] = append(c.lines[p["data-layer"]], at(atof(t, ys)))
		}
	}
	return c
}

func cmpF(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// compactValue parses the requests axis' labels (1.2k, 40).
func compactValue(s string) float64 {
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1e3, strings.TrimSuffix(s, "k")
	case strings.HasSuffix(s, "M"):
		mult, s = 1e6, strings.TrimSuffix(s, "M")
	}
	v, _ := strconv.ParseFloat(s, 64)
	return v * mult
}

// secondsValue parses the latency axis' labels (0 ms, 10 ms, 1 s).
func secondsValue(s string) float64 {
	num, unit, _ := strings.Cut(s, " ")
	v, _ := strconv.ParseFloat(num, 64)
	switch unit {
	case "ms":
		return v / 1000
	case "min":
		return v * 60
	}
	return v
}

// drawnRequests are the values the requests chart draws, in time order.
func drawnRequests(t *testing.T, c drawnChart) []float64 {
	xs := make([]float64, 0, len(c.bars))
	for x := range c.bars {
		xs = append(xs, x)
	}
	slices.Sort(xs)
	var out []float64
	for _, x := range xs {
		out = append(out, c.bars[x])
	}
	return out
}

// sameDrawn compares drawn values with the data, to the precision of the
// drawing: half a unit of the SVG's coordinates (of 200 for the plot's
// height) per value, at the axis' scale.
func sameDrawn(c drawnChart, drawn, want []float64, value func(string) float64) bool {
	if len(drawn) != len(want) {
		return false
	}
	top := value(c.ticks[len(c.ticks)-1].label)
	for i := range drawn {
		if math.Abs(drawn[i]-want[i]) > top*0.5/plotH {
			return false
		}
	}
	return true
}

// Rates are over the time the log covers, never extrapolated from part of
// a minute: 4 requests in 5 s are 4 per minute, drawn at 4; a minute of
// which the log holds 12 s with 22 requests is drawn at 22; the mean is
// never above the peak.
func TestRatesOverTimeCovered(t *testing.T) {
	for _, tc := range []struct {
		name       string
		reqs       []req
		mean, peak float64
		drawn      []float64
	}{
		{"4 requests in 5 s", many(4, 10*time.Second, 5*time.Second, accesslog.ResultMiss), 4, 4, []float64{4}},
		{"partial first and last minutes", slices.Concat(
			many(30, 50*time.Second, 10*time.Second, accesslog.ResultMiss),
			many(64, time.Minute, time.Minute, accesslog.ResultHit),
			many(22, 2*time.Minute, 12*time.Second, accesslog.ResultHit)), 38.67, 64, []float64{30, 64, 22}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := handLog(t, tc.reqs)
			if s.RequestsPerMinute.Mean != tc.mean || s.RequestsPerMinute.Peak != tc.peak {
				t.Errorf("per minute: mean %v, peak %v; want %v and %v", s.RequestsPerMinute.Mean, s.RequestsPerMinute.Peak, tc.mean, tc.peak)
			}
			if s.RequestsPerMinute.Mean > s.RequestsPerMinute.Peak {
				t.Errorf("mean %v above the peak %v", s.RequestsPerMinute.Mean, s.RequestsPerMinute.Peak)
			}
			c := readChart(t, svgs(reportPage(t, s))[0], compactValue)
			if got := drawnRequests(t, c); !sameDrawn(c, got, tc.drawn, compactValue) {
				t.Errorf("requests chart draws %v, want %v", got, tc.drawn)
			}
		})
	}
}

// A single bucket is drawn as a bar across the chart, not a hairline.
func TestSingleBucketIsABar(t *testing.T) {
	s := handLog(t, many(4, 10*time.Second, 5*time.Second, accesslog.ResultMiss))
	c := readChart(t, svgs(reportPage(t, s))[0], compactValue)
	for x, w := range c.barW {
		if w < plotW*0.9 {
			t.Errorf("the bar at %.1f is %.1f wide; the chart is %.0f", x, w, plotW)
		}
	}
	if len(c.barW) == 0 {
		t.Fatal("no bar drawn")
	}
}

// Every finding's shaded window starts and ends on a bucket's edge, in
// every time chart, so that the data of its time is under it.
func TestFindingWindowsAlignWithData(t *testing.T) {
	s := incidentSummary(t)
	charts := svgs(reportPage(t, s))
	req := readChart(t, charts[0], compactValue)
	if len(req.bands) == 0 || len(s.Findings) == 0 {
		t.Fatalf("no finding bands drawn (%d findings)", len(s.Findings))
	}
	near := func(x float64) bool {
		for _, e := range req.edges {
			if math.Abs(e-x) < 1.01 { // the bars leave a gap of at most 1 between them
				return true
			}
		}
		return x <= padLeft+0.01 || x >= padLeft+plotW-0.01
	}
	for i, svg := range charts[:4] {
		for _, m := range tagRe.FindAllStringSubmatch(svg, -1) {
			if a := attrs(m[2]); m[1] == "rect" && a["class"] == "finding" {
				x0, x1 := atof(t, a["x"]), atof(t, a["x"])+atof(t, a["width"])
				if !near(x0) || !near(x1) {
					t.Errorf("chart %d: band %.2f..%.2f does not sit on bucket edges", i, x0, x1)
				}
			}
		}
	}
}

// A latency of 0 ms is drawn on a line labelled 0, not on the lowest power
// of ten of the logarithmic axis.
func TestZeroLatencyOnZero(t *testing.T) {
	var reqs []req
	for i := range 20 {
		reqs = append(reqs, req{at: time.Duration(i) * time.Second, result: accesslog.ResultRedirect})
	}
	reqs = append(reqs, req{at: 30 * time.Second, result: accesslog.ResultMiss, took: 250 * time.Millisecond})
	s := handLog(t, reqs)
	if p50 := s.Timeline.Buckets[0].P50; p50 != 0 {
		t.Fatalf("p50 %v, want 0", p50)
	}
	var chart string
	for _, svg := range svgs(reportPage(t, s)) {
		if strings.Contains(svg, `data-layer="p50"`) {
			chart = svg
		}
	}
	c := readChart(t, chart, secondsValue)
	if c.ticks[0].label != "0 ms" {
		t.Errorf("the lowest label is %q, want 0 ms", c.ticks[0].label)
	}
	for _, v := range c.lines["p50"] {
		if v != 0 {
			t.Errorf("p50 drawn at %v s, want 0", v)
		}
	}
	if p99 := c.lines["p99"]; len(p99) == 0 || math.Abs(p99[0]-s.Timeline.Buckets[0].P99)/s.Timeline.Buckets[0].P99 > 0.02 {
		t.Errorf("p99 drawn at %v, want %v", p99, s.Timeline.Buckets[0].P99)
	}
}

// Counts take the right number ("1 hit, 2 misses") and a hit ratio of
// nothing cacheable is n/a, in the table and the report alike.
func TestPluralsAndEmptyRatio(t *testing.T) {
	s := handLog(t, []req{{0, accesslog.ResultHit, 0}, {time.Second, accesslog.ResultMiss, 0}, {2 * time.Second, accesslog.ResultMiss, 0}})
	var b bytes.Buffer
	if err := WriteSummary(&b, s, FormatTable); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "(1 hit, 2 misses)") {
		t.Errorf("table:\n%s", b.String())
	}
	s = handLog(t, []req{{0, accesslog.ResultRedirect, 0}})
	b.Reset()
	if err := WriteSummary(&b, s, FormatTable); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "n/a of requests, n/a of bytes (0 hits, 0 misses)") {
		t.Errorf("table:\n%s", b.String())
	}
	if page := reportPage(t, s); !strings.Contains(page, ">n/a<") || !strings.Contains(page, "1 record read") {
		t.Errorf("the report shows no n/a hit ratio or a wrong plural")
	}
	for n, want := range map[int64]string{0: "0 misses", 1: "1 miss", 2: "2 misses", 1234: "1,234 misses"} {
		if got := Quantity(n, "miss"); got != want {
			t.Errorf("Quantity(%d, miss) = %q, want %q", n, got, want)
		}
	}
}

// On live logs the summary says how old the newest line is; on old ones
// it says nothing.
func TestFreshnessNote(t *testing.T) {
	last := time.Date(2026, 11, 30, 9, 30, 4, 0, time.UTC)
	s := &Summary{TimeRange: TimeRange{Last: &last}}
	if got := FreshnessNote(s, last.Add(3*time.Second)); !strings.HasPrefix(got, "09:30:04 UTC, 3s before this summary") ||
		!strings.Contains(got, "edge.logs.flush_interval") {
		t.Errorf("live: %q", got)
	}
	if got := FreshnessNote(s, last.Add(2*time.Hour)); got != "" {
		t.Errorf("two hours old: %q", got)
	}
	if got := FreshnessNote(&Summary{}, last); got != "" {
		t.Errorf("no timed line: %q", got)
	}
	s.Freshness = FreshnessNote(s, last.Add(3*time.Second))
	var b bytes.Buffer
	if err := WriteSummary(&b, s, FormatTable); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^  newest line +09:30:04 UTC, 3s before this summary`).MatchString(b.String()) {
		t.Errorf("the table's overview does not give the newest line's age:\n%s", b.String())
	}
}
