package logs

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/edgegate/edgegate/edge/accesslog"
)

// FilterSpec is the text of the filter flags, as the user typed them.
type FilterSpec struct {
	Since  string // -since: time or duration before now; records at or after it
	Until  string // -until: time or duration before now; records before it
	Host   string // -host: comma-separated host patterns (* and ?), case-insensitive
	Status string // -status: comma-separated codes, classes (5xx) or ranges (500-504)
	Result string // -result: comma-separated result types, case-insensitive
	URI    string // -uri: pattern of cs-uri-stem (* matches any run, / included; ? one byte)
}

// Filter selects the records to analyse. The zero Filter selects every
// record.
type Filter struct {
	Since, Until time.Time // zero: unbounded; Until is exclusive
	hosts        []string  // lower-cased patterns
	status       []statusRange
	results      []string // lower-cased
	uri          string
	desc         []string
}

type statusRange struct{ lo, hi int }

// NewFilter parses spec. Times are RFC 3339, or "YYYY-MM-DD[ HH:MM[:SS]]"
// (also with a "T") in UTC, or a Go duration meaning that long before now.
// The error names the flag at fault.
func NewFilter(spec FilterSpec, now time.Time) (Filter, error) {
	var f Filter
	var err error
	if spec.Since != "" {
		if f.Since, err = ParseTime(spec.Since, now); err != nil {
			return Filter{}, fmt.Errorf("-since: %w", err)
		}
		f.desc = append(f.desc, "since "+f.Since.Format(time.RFC3339))
	}
	if spec.Until != "" {
		if f.Until, err = ParseTime(spec.Until, now); err != nil {
			return Filter{}, fmt.Errorf("-until: %w", err)
		}
		f.desc = append(f.desc, "until "+f.Until.Format(time.RFC3339))
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return Filter{}, fmt.Errorf("-until %s is not after -since %s", spec.Until, spec.Since)
	}
	for _, h := range splitList(spec.Host) {
		f.hosts = append(f.hosts, strings.ToLower(h))
	}
	if len(f.hosts) > 0 {
		f.desc = append(f.desc, "host "+strings.Join(f.hosts, ","))
	}
	for _, s := range splitList(spec.Status) {
		r, err := parseStatus(s)
		if err != nil {
			return Filter{}, fmt.Errorf("-status: %w", err)
		}
		f.status = append(f.status, r)
	}
	if len(f.status) > 0 {
		f.desc = append(f.desc, "status "+spec.Status)
	}
	for _, r := range splitList(spec.Result) {
		f.results = append(f.results, strings.ToLower(r))
	}
	if len(f.results) > 0 {
		f.desc = append(f.desc, "result "+spec.Result)
	}
	if spec.URI != "" {
		if !strings.HasPrefix(spec.URI, "/") && !strings.HasPrefix(spec.URI, "*") {
			return Filter{}, fmt.Errorf("-uri %q: a path pattern starts with / or *", spec.URI)
		}
		f.uri = spec.URI
		f.desc = append(f.desc, "uri "+spec.URI)
	}
	return f, nil
}

// String describes the filter in words, "" when it selects everything.
func (f *Filter) String() string { return strings.Join(f.desc, ", ") }

// Empty reports whether the filter selects every record.
func (f *Filter) Empty() bool { return len(f.desc) == 0 }

// Match reports whether r passes the filter. -host matches the Host header
// the viewer sent or cs(Host); -result matches x-edge-result-type,
// x-edge-response-result-type or x-edge-detailed-result-type, so that
// "-result OriginConnectError" and "-result Error" both work.
func (f *Filter) Match(r *accesslog.Record) bool {
	if !f.Since.IsZero() && r.Time.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !r.Time.Before(f.Until) {
		return false
	}
	if len(f.hosts) > 0 {
		ok := false
		for _, p := range f.hosts {
			if matchFold(p, r.HostHeader) || matchFold(p, r.Host) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(f.status) > 0 {
		ok := false
		for _, s := range f.status {
			if s.lo <= r.Status && r.Status <= s.hi {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(f.results) > 0 {
		ok := false
		for _, want := range f.results {
			if strings.EqualFold(want, string(r.ResultType)) || strings.EqualFold(want, string(r.ResponseResultType)) ||
				strings.EqualFold(want, string(r.DetailedResultType)) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if f.uri != "" && !match(f.uri, r.URIStem) {
		return false
	}
	return true
}

// ParseTime parses a -since/-until value: RFC 3339, "YYYY-MM-DD",
// "YYYY-MM-DD HH:MM", "YYYY-MM-DD HH:MM:SS" (or with "T"), all UTC unless
// an offset is given, or a duration such as 90m meaning that long before
// now.
func ParseTime(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q: a duration before now must be positive", s)
		}
		return now.Add(-d).UTC(), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05",
		"2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: want a time like 2026-11-22T13:00:00Z, 2026-11-22 13:00, 2026-11-22, or a duration like 2h", s)
}

// parseStatus parses 404, 4xx, or 500-504.
func parseStatus(s string) (statusRange, error) {
	bad := fmt.Errorf("%q: want a status (404), a class (5xx) or a range (500-504)", s)
	if len(s) == 3 && (s[1] == 'x' || s[1] == 'X') && (s[2] == 'x' || s[2] == 'X') && s[0] >= '0' && s[0] <= '9' {
		c := int(s[0]-'0') * 100
		return statusRange{c, c + 99}, nil
	}
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := strconv.Atoi(lo)
	if err != nil || a < 0 || a > 999 {
		return statusRange{}, bad
	}
	if !isRange {
		return statusRange{a, a}, nil
	}
	b, err := strconv.Atoi(hi)
	if err != nil || b < a || b > 999 {
		return statusRange{}, bad
	}
	return statusRange{a, b}, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// match reports whether s matches pattern, where * matches any run of
// bytes ("/" included, as in CloudFront path patterns) and ? exactly one.
func match(pattern, s string) bool {
	// Iterative matching with backtracking to the last star: linear in
	// practice, no recursion.
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// matchFold is match without regard to ASCII case; pattern is lower-case.
func matchFold(pattern, s string) bool {
	if s == "" {
		return false
	}
	return match(pattern, strings.ToLower(s))
}

// errNoInput is returned when the arguments name no log file at all.
var errNoInput = errors.New("no log files found")
