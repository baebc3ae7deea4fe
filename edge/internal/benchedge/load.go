package main

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// loadResult is what one load generator run measured.
type loadResult struct {
	Requests  int64         `json:"requests"`    // completed requests
	Duration  time.Duration `json:"duration_ns"` // as the generator measured it
	ReqPerSec float64       `json:"req_per_sec"`
	P50       time.Duration `json:"p50_ns"`
	P99       time.Duration `json:"p99_ns"`
	// Errors counts socket errors and responses that were not 2xx/3xx: a
	// server that fails fast must not look fast.
	Errors int64 `json:"errors"`
}

// parseWrk reads the output of `wrk --latency`.
func parseWrk(out string) (loadResult, error) {
	var r loadResult
	var haveRate, haveP50, haveP99, haveCount bool
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "Requests/sec:":
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return r, fmt.Errorf("wrk: %q: %w", line, err)
			}
			r.ReqPerSec, haveRate = v, true
		case len(f) == 2 && (f[0] == "50%" || f[0] == "99%"):
			d, err := parseWrkDuration(f[1])
			if err != nil {
				return r, fmt.Errorf("wrk: %q: %w", line, err)
			}
			if f[0] == "50%" {
				r.P50, haveP50 = d, true
			} else {
				r.P99, haveP99 = d, true
			}
		case len(f) >= 4 && f[1] == "requests" && f[2] == "in":
			// "460000 requests in 10.00s, 500.00MB read"
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return r, fmt.Errorf("wrk: %q: %w", line, err)
			}
			d, err := parseWrkDuration(strings.TrimSuffix(f[3], ","))
			if err != nil {
				return r, fmt.Errorf("wrk: %q: %w", line, err)
			}
			r.Requests, r.Duration, haveCount = n, d, true
		case strings.HasPrefix(strings.TrimSpace(line), "Socket errors:"):
			// "Socket errors: connect 0, read 12, write 0, timeout 3"
			_, rest, _ := strings.Cut(line, ":")
			for _, part := range strings.Split(rest, ",") {
				kv := strings.Fields(part)
				if len(kv) != 2 {
					return r, fmt.Errorf("wrk: %q: cannot read the socket errors", line)
				}
				n, err := strconv.ParseInt(kv[1], 10, 64)
				if err != nil {
					return r, fmt.Errorf("wrk: %q: %w", line, err)
				}
				r.Errors += n
			}
		case strings.HasPrefix(strings.TrimSpace(line), "Non-2xx or 3xx responses:"):
			n, err := strconv.ParseInt(f[len(f)-1], 10, 64)
			if err != nil {
				return r, fmt.Errorf("wrk: %q: %w", line, err)
			}
			r.Errors += n
		}
	}
	if !haveRate || !haveP50 || !haveP99 || !haveCount {
		return r, fmt.Errorf("wrk: output lacks Requests/sec, the 50%%/99%% latencies (--latency) or the request count:\n%s", out)
	}
	return r, nil
}

// parseWrkDuration reads wrk's durations: "812.00us", "1.07ms", "2.00s", "1.00m".
func parseWrkDuration(s string) (time.Duration, error) {
	units := []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil || v < 0 {
				return 0, fmt.Errorf("duration %q: not a number of %s", s, u.suffix)
			}
			return time.Duration(v * float64(u.unit)), nil
		}
	}
	return 0, fmt.Errorf("duration %q: unknown unit", s)
}

// parseH2load reads the summary h2load prints: request rate, counts and
// status codes. Its latency figures are mean and spread only, so the
// percentiles come from its per-request log (parseH2loadLog).
func parseH2load(out string) (loadResult, error) {
	var r loadResult
	var haveRate, haveCount bool
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "finished in "):
			// "finished in 10.00s, 69800.00 req/s, 75.23MB/s"
			f := strings.Split(strings.TrimPrefix(line, "finished in "), ",")
			if len(f) < 2 {
				return r, fmt.Errorf("h2load: %q: unexpected format", line)
			}
			d, err := parseWrkDuration(strings.TrimSpace(f[0]))
			if err != nil {
				return r, fmt.Errorf("h2load: %q: %w", line, err)
			}
			rate, ok := strings.CutSuffix(strings.TrimSpace(f[1]), " req/s")
			if !ok {
				return r, fmt.Errorf("h2load: %q: no req/s", line)
			}
			v, err := strconv.ParseFloat(rate, 64)
			if err != nil {
				return r, fmt.Errorf("h2load: %q: %w", line, err)
			}
			r.Duration, r.ReqPerSec, haveRate = d, v, true
		case strings.HasPrefix(line, "requests: "):
			// "requests: 698000 total, 698000 started, 698000 done, 697990 succeeded, 10 failed, 10 errored, 0 timeout"
			counts, err := h2loadCounts(strings.TrimPrefix(line, "requests: "))
			if err != nil {
				return r, fmt.Errorf("h2load: %q: %w", line, err)
			}
			if done, ok := counts["done"]; ok {
				r.Requests, haveCount = done, true
			}
			r.Errors += counts["failed"] + counts["timeout"]
		case strings.HasPrefix(line, "status codes: "):
			// "status codes: 698000 2xx, 0 3xx, 0 4xx, 0 5xx"
			counts, err := h2loadCounts(strings.TrimPrefix(line, "status codes: "))
			if err != nil {
				return r, fmt.Errorf("h2load: %q: %w", line, err)
			}
			r.Errors += counts["4xx"] + counts["5xx"]
		}
	}
	if !haveRate || !haveCount {
		return r, fmt.Errorf("h2load: output lacks the \"finished in\" or \"requests:\" line:\n%s", out)
	}
	return r, nil
}

// parseH2loadLog reads h2load's --log-file (one line per request: start
// time in µs since the epoch, status, duration in µs, tab-separated) and
// returns the median and 99th percentile of the durations.
func parseH2loadLog(rd io.Reader) (p50, p99 time.Duration, err error) {
	var us []int64
	sc := bufio.NewScanner(rd)
	line := 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return 0, 0, fmt.Errorf("h2load log line %d: %q: want start, status, duration", line, sc.Text())
		}
		d, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("h2load log line %d: %w", line, err)
		}
		us = append(us, d)
	}
	if err := sc.Err(); err != nil {
		return 0, 0, fmt.Errorf("h2load log: %w", err)
	}
	if len(us) == 0 {
		return 0, 0, fmt.Errorf("h2load log: no requests")
	}
	slices.Sort(us)
	return time.Duration(percentile(us, 50)) * time.Microsecond, time.Duration(percentile(us, 99)) * time.Microsecond, nil
}

// percentile is the nearest-rank percentile of sorted values.
func percentile(sorted []int64, p float64) int64 {
	rank := int(p/100*float64(len(sorted))+0.999999999) - 1
	rank = max(0, min(rank, len(sorted)-1))
	return sorted[rank]
}

// h2loadCounts reads one of h2load's "N label, N label, ..." lists.
func h2loadCounts(list string) (map[string]int64, error) {
	counts := make(map[string]int64)
	for part := range strings.SplitSeq(list, ",") {
		kv := strings.Fields(part)
		if len(kv) != 2 {
			return nil, fmt.Errorf("%q: unexpected format", part)
		}
		n, err := strconv.ParseInt(kv[0], 10, 64)
		if err != nil {
			return nil, err
		}
		counts[kv[1]] = n
	}
	return counts, nil
}
