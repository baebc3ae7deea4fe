package logs

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/edgegate/edgegate/edge/accesslog"
)

// Finding is one explanation in plain words, backed by counts and a time
// window.
type Finding struct {
	// Kind is a stable identifier: origin_connect, origin_dns,
	// origin_timeout, origin_read, origin_error, viewer_hangups,
	// hit_ratio_drop, client_hammering or status_4xx_spike.
	Kind     string     `json:"kind"`
	Severity string     `json:"severity"` // critical, warning or info
	Host     string     `json:"host"`     // the host concerned, "" when none
	From     *time.Time `json:"from"`     // start of the window the finding is about
	To       *time.Time `json:"to"`       // end of that window (inclusive, whole seconds)
	Requests int64      `json:"requests"` // the requests it is about
	Message  string     `json:"message"`  // the explanation and what to do, in plain words
}

// Severities, most urgent first.
const (
	SeverityCritical = "critical"
	SeverityWarning  = "warning"
	SeverityInfo     = "info"
)

// Thresholds of the findings. They are deliberately conservative: a finding
// should be worth a person's time.
const (
	minBurst        = 3    // failed requests before an error type is reported
	minCacheable    = 200  // hits+misses in a window before its hit ratio means anything
	minRatioDrop    = 0.20 // absolute fall of the hit ratio that is reported
	minHammer       = 100  // requests of one client for one URI before it can be hammering
	hammerPerMinute = 60   // ... at this rate
	hammerShare     = 0.20 // ... or this share of all requests in its window
	min4xxSpike     = 20   // 4xx in a bucket before it can be a spike
	maxPerKind      = 3    // findings of one kind, so that one cause does not bury the others
)

// findings derives the explanations from the aggregate.
func findings(a *aggregate, s *Summary) []Finding {
	if a.matched == 0 {
		return nil
	}
	var out []Finding
	out = append(out, errorFindings(a)...)
	out = append(out, hitRatioFindings(a)...)
	out = append(out, hammerFindings(a)...)
	out = append(out, spikeFindings(a)...)
	// Most urgent first; within a severity, causes before symptoms (an
	// origin failing before the hit ratio it spoils), then by time.
	rank := map[string]int{SeverityCritical: 0, SeverityWarning: 1, SeverityInfo: 2}
	kind := map[string]int{accesslog.FindingOriginConnect: 0, accesslog.FindingOriginDNS: 0, accesslog.FindingOriginTimeout: 0, accesslog.FindingOriginRead: 1, accesslog.FindingOriginError: 1,
		"hit_ratio_drop": 2, "status_4xx_spike": 3, "client_hammering": 4, "viewer_hangups": 5}
	slices.SortStableFunc(out, func(x, y Finding) int {
		if c := cmp.Compare(rank[x.Severity], rank[y.Severity]); c != 0 {
			return c
		}
		if c := cmp.Compare(kind[x.Kind], kind[y.Kind]); c != 0 {
			return c
		}
		if x.From != nil && y.From != nil && !x.From.Equal(*y.From) {
			return x.From.Compare(*y.From)
		}
		return cmp.Compare(x.Message, y.Message)
	})
	return out
}

// run is a stretch of time buckets [from, to] (indices, inclusive).
type run struct {
	from, to int64
	count    int64
}

// runs groups the buckets of a sparse count series into runs, allowing gaps
// of up to gap empty buckets inside a run, largest run first.
func runs(series map[int64]int64, gap int64) []run {
	idxs := make([]int64, 0, len(series))
	for idx, c := range series {
		if c > 0 {
			idxs = append(idxs, idx)
		}
	}
	slices.Sort(idxs)
	var out []run
	for _, idx := range idxs {
		if n := len(out); n > 0 && idx-out[n-1].to <= gap+1 {
			out[n-1].to = idx
			out[n-1].count += series[idx]
			continue
		}
		out = append(out, run{idx, idx, series[idx]})
	}
	slices.SortStableFunc(out, func(x, y run) int { return cmp.Compare(y.count, x.count) })
	return out
}

// gapBuckets is how many empty buckets still belong to one burst: ten
// minutes' worth, at least one.
func gapBuckets(width int64) int64 { return max(1, 600/width) }

// window returns the time span of buckets [from, to], narrowed to the exact
// first and last times when they fall inside it.
func window(width, from, to, first, last int64) (time.Time, time.Time) {
	start, end := from*width, (to+1)*width-1
	if first >= start && first <= end {
		start = first
	}
	if last >= start && last <= end {
		end = last
	}
	return unix(start), unix(end)
}

// hostRequests sums a host's requests over buckets [from, to].
func hostRequests(ht *hostTrack, from, to int64) (n int64) {
	if ht == nil {
		return 0
	}
	for idx, b := range ht.series {
		if idx >= from && idx <= to {
			n += b.requests
		}
	}
	return n
}

// errorFindings explains bursts of origin errors per host, and viewers
// hanging up in numbers.
func errorFindings(a *aggregate) []Finding {
	var out []Finding
	perKind := map[string]int{}
	keys := make([]errKey, 0, len(a.groups))
	for k := range a.groups {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y errKey) int {
		if c := cmp.Compare(a.groups[y].count, a.groups[x].count); c != 0 {
			return c
		}
		if c := cmp.Compare(x.typ, y.typ); c != 0 {
			return c
		}
		return cmp.Compare(x.host, y.host)
	})
	for _, key := range keys {
		g := a.groups[key]
		kind := errorKind(key.typ)
		if kind == "" || g.count < minBurst || perKind[kind] >= maxPerKind {
			continue
		}
		if kind == "viewer_hangups" && (g.count < 10 || float64(g.count) < 0.01*float64(a.matched)) {
			continue
		}
		perKind[kind]++
		f := Finding{Kind: kind, Host: key.host, Severity: SeverityWarning}
		var burst run
		rs := runs(g.series, gapBuckets(a.width))
		if len(rs) > 0 {
			burst = rs[0]
			from, to := window(a.width, burst.from, burst.to, g.first, g.last)
			f.From, f.To = &from, &to
		}
		f.Requests = burst.count
		if burst.count == 0 { // no times in these records
			f.Requests = g.count
		}
		share := ""
		if hr := hostRequests(a.hostSeries[key.host], burst.from, burst.to); hr > 0 && f.From != nil {
			pct := float64(burst.count) / float64(hr)
			share = fmt.Sprintf(", %s of the requests for %s then", percent(pct), key.host)
			if pct >= 0.5 {
				f.Severity = SeverityCritical
			}
		}
		elsewhere := ""
		if rest := g.count - f.Requests; rest > 0 {
			elsewhere = fmt.Sprintf(" (and %s more at other times)", num(rest))
		}
		when := "at unknown times"
		if f.From != nil {
			when = span(*f.From, *f.To)
		}
		host := quoteHost(key.host)
		probe := "run `edgegate probe https://ORIGIN/` against the origin behind " + host +
			" (or `edgegate check -probe -config edge.yaml`) to see what fails and how to fix it"
		advice := accesslog.ResultType(key.typ).Info().Advice
		switch kind {
		case accesslog.FindingOriginConnect:
			f.Message = fmt.Sprintf("The edge could not connect to or verify the origin for host %s %s (%s%s)%s; %s.",
				host, when, Quantity(f.Requests, "request"), share, elsewhere, probe)
		case accesslog.FindingOriginDNS:
			f.Message = fmt.Sprintf("The origin name for host %s did not resolve %s (%s%s)%s; check the origin's DNS record, then %s.",
				host, when, Quantity(f.Requests, "request"), share, elsewhere, probe)
		case accesslog.FindingOriginTimeout:
			f.Message = fmt.Sprintf("The origin for host %s timed out, connecting or answering, %s (%s%s, after a median of %s)%s; "+
				"check that the origin is up and that no firewall drops the edge's connections, then %s.",
				host, when, Quantity(f.Requests, "request"), share, dur(g.tt.quantile(0.5)), elsewhere, probe)
		case accesslog.FindingOriginRead:
			f.Message = fmt.Sprintf("The origin for host %s broke %s midway %s%s, after a median of %s%s.%s "+
				"%s.",
				host, Quantity(f.Requests, "response"), when, share, dur(g.tt.quantile(0.5)), elsewhere, precedingLatency(a, key.host, burst), upperFirst(advice))
		case accesslog.FindingViewerHangups:
			f.Severity = SeverityInfo
			f.Message = fmt.Sprintf("Viewers of host %s went away, or broke their own requests, before their response was complete %s (%s, %s, %s of all requests)%s; "+
				"%s.",
				host, when, Quantity(f.Requests, "request"), key.typ, percent(float64(g.count)/float64(a.matched)), elsewhere, advice)
		default:
			f.Message = fmt.Sprintf("The origin for host %s failed with %s %s (%s%s)%s: %s; %s.",
				host, key.typ, when, Quantity(f.Requests, "request"), share, elsewhere, advice, probe)
		}
		out = append(out, f)
	}
	return out
}

// errorKind is the finding kind of a detailed error type, from the result
// table; "" for types that get no finding of their own (the 4xx spike
// finding covers bad requests).
func errorKind(typ string) string {
	return accesslog.ResultType(typ).Info().Finding
}

// upperFirst capitalises advice that starts a sentence.
func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// precedingLatency describes the origin's time to first byte in the ten
// minutes (or three buckets) before a burst, against the time before that.
func precedingLatency(a *aggregate, host string, burst run) string {
	ht := a.hostSeries[host]
	if ht == nil || burst.count == 0 {
		return ""
	}
	lead := max(3, gapBuckets(a.width))
	var before, earlier hostBucket
	for idx, b := range ht.series {
		switch {
		case idx >= burst.from-lead && idx < burst.from:
			before.merge(b)
		case idx < burst.from-lead:
			earlier.merge(b)
		}
	}
	if before.fetches < 5 {
		return ""
	}
	msg := fmt.Sprintf(" In the %s before, origin fetches for %s took %s on average to the first byte",
		words(time.Duration(lead*a.width)*time.Second), quoteHost(host), dur(float64(before.fetchMillis)/float64(before.fetches)))
	if earlier.fetches >= 5 {
		msg += fmt.Sprintf(", against %s earlier", dur(float64(earlier.fetchMillis)/float64(earlier.fetches)))
	}
	return msg + "."
}

// hitRatioFindings looks for stretches where the hit ratio fell well below
// its level the rest of the time, per host (or overall with a single host).
func hitRatioFindings(a *aggregate) []Finding {
	type series struct {
		host string
		m    map[int64]*hostBucket
	}
	var all []series
	for host, ht := range a.hostSeries {
		all = append(all, series{host, ht.series})
	}
	slices.SortFunc(all, func(x, y series) int { return cmp.Compare(x.host, y.host) })
	var out []Finding
	for _, s := range all {
		if f, ok := hitRatioDrop(a.width, s.host, s.m); ok {
			out = append(out, f)
		}
	}
	slices.SortStableFunc(out, func(x, y Finding) int { return cmp.Compare(y.Requests, x.Requests) })
	if len(out) > maxPerKind {
		out = out[:maxPerKind]
	}
	return out
}

// hitRatioDrop finds the largest stretch of buckets whose hit ratio is at
// least minRatioDrop below the ratio of the other buckets.
func hitRatioDrop(width int64, host string, m map[int64]*hostBucket) (Finding, bool) {
	var hits, cacheable int64
	for _, b := range m {
		hits += b.hits
		cacheable += b.hits + b.misses
	}
	if cacheable < 2*minCacheable {
		return Finding{}, false
	}
	overall := float64(hits) / float64(cacheable)
	low := map[int64]int64{}
	for idx, b := range m {
		c := b.hits + b.misses
		if c >= 5 && float64(b.hits)/float64(c) <= overall-minRatioDrop/2 {
			low[idx] = c
		}
	}
	for _, r := range runs(low, 1) {
		var in hostBucket
		for idx := r.from; idx <= r.to; idx++ {
			if b := m[idx]; b != nil {
				in.merge(b)
			}
		}
		inC := in.hits + in.misses
		outC := cacheable - inC
		if inC < minCacheable || outC < minCacheable {
			continue
		}
		inR := float64(in.hits) / float64(inC)
		outR := float64(hits-in.hits) / float64(outC)
		// The fall must be large and, for its sample size, far beyond
		// chance (more than 5 standard errors of a binomial proportion).
		if se := math.Sqrt(outR * (1 - outR) / float64(inC)); outR-inR < minRatioDrop || outR-inR < 5*se {
			continue
		}
		from, to := window(width, r.from, r.to, math.MinInt64, math.MaxInt64)
		f := Finding{Kind: "hit_ratio_drop", Severity: SeverityWarning, Host: host, From: &from, To: &to, Requests: inC}
		f.Message = fmt.Sprintf("The cache hit ratio for host %s fell from %s to %s %s (%s, %s); "+
			"an invalidation, a deploy that changed URLs or query strings, or a cache-policy change are the usual causes.",
			quoteHost(host), percent(outR), percent(inR), span(from, to), Quantity(in.hits, "hit"), Quantity(in.misses, "miss"))
		return f, true
	}
	return Finding{}, false
}

// hammerFindings reports clients that requested one URI far more than
// anyone else, one finding per client (a scanner walks several URIs).
func hammerFindings(a *aggregate) []Finding {
	var out []Finding
	seen := map[string]bool{}
	for _, e := range a.pairs.top(50) {
		if e.count < minHammer || len(out) >= maxPerKind {
			break
		}
		client, uri, _ := strings.Cut(e.key, "\x00")
		if seen[client] || e.first == 0 {
			continue
		}
		secs := max(60, e.last-e.first+1)
		perMin := float64(e.count) / (float64(secs) / 60)
		total := requestsBetween(a, e.first, e.last)
		share := 0.0
		if total > 0 {
			share = math.Min(1, float64(e.count)/float64(total))
		}
		if perMin < hammerPerMinute && share < hammerShare {
			continue
		}
		seen[client] = true
		from, to := unix(e.first), unix(e.last)
		also := ""
		if c := a.clients.m[client]; c != nil && c.count > e.count*3/2 {
			also = fmt.Sprintf(" It made %s requests in all, for other URIs too.", num(c.count))
		}
		out = append(out, Finding{Kind: "client_hammering", Severity: SeverityWarning, From: &from, To: &to, Requests: e.count,
			Message: fmt.Sprintf("Client %s requested %s %s %s (%.0f per minute, %s of all requests in that time).%s "+
				"If it is not a known monitor or crawler, consider rate limiting or blocking it.",
				client, clip(uri, 200), Quantity(e.count, "time"), span(from, to), perMin, percent(share), also)})
	}
	return out
}

// requestsBetween sums the timeline's requests over the buckets covering
// [first, last].
func requestsBetween(a *aggregate, first, last int64) (n int64) {
	lo, hi := floorDiv(first, a.width), floorDiv(last, a.width)
	for idx, b := range a.series {
		if idx >= lo && idx <= hi {
			n += b.requests
		}
	}
	return n
}

// spikeFindings looks for buckets with far more 4xx responses than usual.
func spikeFindings(a *aggregate) []Finding {
	if len(a.series) < 3 {
		return nil
	}
	var counts []int64
	for _, b := range a.series {
		counts = append(counts, b.s4xx)
	}
	slices.Sort(counts)
	median := counts[len(counts)/2]
	threshold := max(min4xxSpike, 3*median, median+10)
	spikes := map[int64]int64{}
	for idx, b := range a.series {
		if b.s4xx >= threshold {
			spikes[idx] = b.s4xx
		}
	}
	var out []Finding
	perMin := func(n int64, buckets int64) float64 { return float64(n) / (float64(buckets*a.width) / 60) }
	for _, r := range runs(spikes, 1) {
		if len(out) >= maxPerKind {
			break
		}
		var n4, total int64
		for idx := r.from; idx <= r.to; idx++ {
			if b := a.series[idx]; b != nil {
				n4 += b.s4xx
				total += b.requests
			}
		}
		from, to := window(a.width, r.from, r.to, math.MinInt64, math.MaxInt64)
		f := Finding{Kind: "status_4xx_spike", Severity: SeverityWarning, From: &from, To: &to, Requests: n4}
		// Attribute the spike to a host and a URI seen in its window.
		var host string
		var hostN int64
		for h, ht := range a.hostSeries {
			var c int64
			for idx := r.from; idx <= r.to; idx++ {
				if b := ht.series[idx]; b != nil {
					c += b.s4xx
				}
			}
			if c > hostN || (c == hostN && h < host) {
				host, hostN = h, c
			}
		}
		detail := ""
		if hostN*2 > n4 {
			f.Host = host
			detail += fmt.Sprintf(", mostly for host %s", quoteHost(host))
		}
		// The heavy hitters seen during the window; their counts cover the
		// whole log, which the message says.
		for _, e := range a.clients4xx.top(20) {
			if e.first <= to.Unix() && e.last >= from.Unix() && e.count*5 >= n4 {
				detail += fmt.Sprintf("; client %s got %s of the 4xx responses in the whole log", e.key, num(e.count))
				break
			}
		}
		for _, e := range a.uris4xx.top(20) {
			if e.first <= to.Unix() && e.last >= from.Unix() {
				detail += fmt.Sprintf("; the most frequent 4xx URI then was %s (%s over the whole log)", clip(e.key, 200), Quantity(e.count, "time"))
				break
			}
		}
		f.Message = fmt.Sprintf("4xx responses spiked to %.0f per minute %s (%s, %s of requests then; usually %.0f per minute)%s. "+
			"A scanner, a broken link or a client retrying a refused request is the usual cause.",
			perMin(n4, r.to-r.from+1), span(from, to), Quantity(n4, "response"), percent(float64(n4)/float64(max(total, 1))),
			perMin(median, 1), detail)
		out = append(out, f)
	}
	return out
}

// span formats a window in words.
func span(from, to time.Time) string {
	const day, clock = "2006-01-02", "15:04:05"
	if from.Equal(to) {
		return "at " + from.Format(day+" "+clock) + " UTC"
	}
	if from.Format(day) == to.Format(day) {
		return fmt.Sprintf("from %s to %s UTC on %s", from.Format(clock), to.Format(clock), from.Format(day))
	}
	return fmt.Sprintf("from %s to %s UTC", from.Format(day+" "+clock), to.Format(day+" "+clock))
}

// dur formats milliseconds for people.
func dur(ms float64) string {
	switch {
	case ms < 1000:
		return fmt.Sprintf("%.0f ms", ms)
	case ms < 60_000:
		return fmt.Sprintf("%.1f s", ms/1000)
	}
	return (time.Duration(ms) * time.Millisecond).Round(time.Second).String()
}

// words formats a whole number of minutes, hours or days.
func words(d time.Duration) string {
	unit, n := "minute", int64(d/time.Minute)
	switch {
	case d >= 48*time.Hour && d%(24*time.Hour) == 0:
		unit, n = "day", int64(d/(24*time.Hour))
	case d >= 2*time.Hour && d%time.Hour == 0:
		unit, n = "hour", int64(d/time.Hour)
	}
	if n == 1 {
		return unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// percent formats a fraction.
func percent(f float64) string {
	switch {
	case f >= 0.995 && f < 1:
		return "99%" // not 100% when some are missing
	case f > 0 && f < 0.001:
		return "<0.1%"
	case f < 0.0995: // below what rounds to 10%
		return fmt.Sprintf("%.1f%%", f*100)
	}
	return fmt.Sprintf("%.0f%%", f*100)
}

// num formats a count with thousands separators.
func num(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + num(-n)
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// quoteHost returns a host name for a sentence.
func quoteHost(h string) string {
	if h == "" || h == emptyLabel {
		return "(none)"
	}
	return h
}
