package logs

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
)

// SchemaVersion is the version of the JSON summary. Keys are only ever
// added within a version; a renamed or removed key bumps it.
const SchemaVersion = 1

// Summary is the result of `edgegate logs summary`, and the JSON document
// of -format json. Times are RFC 3339 UTC, durations and latencies are in
// seconds, shares are fractions between 0 and 1. Lists are sorted by count,
// largest first, ties by key. The field comments are the key reference.
type Summary struct {
	SchemaVersion int    `json:"schema_version"` // SchemaVersion
	Filter        string `json:"filter"`         // the filters in words; "" when none
	Input         Input  `json:"input"`          // what was read

	TimeRange         TimeRange `json:"time_range"`          // first and last matched request
	Requests          int64     `json:"requests"`            // matched requests
	BytesSent         int64     `json:"bytes_sent"`          // sum of sc-bytes
	BytesReceived     int64     `json:"bytes_received"`      // sum of cs-bytes
	RequestsPerMinute Rate      `json:"requests_per_minute"` // mean and peak
	HitRatio          HitRatio  `json:"hit_ratio"`           // cache hit ratio by requests and by bytes

	ResultTypes         []Count `json:"result_types"`          // x-edge-result-type
	ResponseResultTypes []Count `json:"response_result_types"` // x-edge-response-result-type
	DetailedResultTypes []Count `json:"detailed_result_types"` // x-edge-detailed-result-type
	StatusClasses       []Count `json:"status_classes"`        // "2xx", ...; "000" when the viewer left before a response
	StatusCodes         []Count `json:"status_codes"`          // "200", ...

	Latency Latency `json:"latency"` // time-taken and time-to-first-byte percentiles

	Top Tops `json:"top"` // heavy hitters

	Methods          []Count `json:"methods"`           // cs-method
	Protocols        []Count `json:"protocols"`         // cs-protocol
	ProtocolVersions []Count `json:"protocol_versions"` // cs-protocol-version
	TLSVersions      []Count `json:"tls_versions"`      // ssl-protocol ("-" for plain HTTP)
	Ciphers          []Count `json:"ciphers"`           // ssl-cipher

	Errors   []ErrorType `json:"errors"`   // failed requests by detailed type
	Findings []Finding   `json:"findings"` // explanations in plain words
	Timeline Timeline    `json:"timeline"` // the same counts per time bucket
	Notes    []string    `json:"notes"`    // where numbers are approximate, and why
	// Freshness, for live logs (the newest line recent), says how old
	// the newest line was when the summary was made: lines reach the
	// files up to the edge's edge.logs.flush_interval late. See
	// FreshnessNote; absent for older logs.
	Freshness string `json:"freshness,omitempty"`
}

// Input describes what was read.
type Input struct {
	Sources       []string  `json:"sources"`            // files read, in order ("-" is standard input)
	Records       int64     `json:"records"`            // lines parsed as requests
	Matched       int64     `json:"matched"`            // records that passed the filters
	Filtered      int64     `json:"filtered"`           // records the filters excluded
	Malformed     int64     `json:"malformed"`          // lines that could not be parsed, counted and skipped
	Examples      []Problem `json:"malformed_examples"` // the first few, with file and line
	Untimed       int64     `json:"untimed"`            // records without a date, left out of the time range and timeline
	UnreadSources []string  `json:"input_errors"`       // sources that failed to open or to read to their end
}

// TimeRange is the span of the matched requests.
type TimeRange struct {
	First   *time.Time `json:"first"`   // null when no request had a time
	Last    *time.Time `json:"last"`    // null when no request had a time
	Seconds float64    `json:"seconds"` // Last - First
}

// Rate is a request rate.
type Rate struct {
	Mean   float64    `json:"mean"`    // requests over the whole minutes (buckets) from the first request's to the last's
	Peak   float64    `json:"peak"`    // requests in the busiest bucket, per minute of its width (never extrapolated)
	PeakAt *time.Time `json:"peak_at"` // start of that bucket
}

// HitRatio is the cache hit ratio. Like CloudFront's, it counts cacheable
// requests only (GET, HEAD, OPTIONS): Hit and RefreshHit against Miss by
// x-edge-response-result-type (the cache's outcome even when the viewer
// left early), leaving out errors, redirects and generated responses.
type HitRatio struct {
	Requests  float64 `json:"requests"`   // hits / (hits + misses)
	Bytes     float64 `json:"bytes"`      // sc-bytes of hits / of hits and misses
	Hits      int64   `json:"hits"`       // Hit and RefreshHit
	Misses    int64   `json:"misses"`     // Miss
	HitBytes  int64   `json:"hit_bytes"`  // sc-bytes of hits
	MissBytes int64   `json:"miss_bytes"` // sc-bytes of misses
}

// Count is one value and how often it occurred.
type Count struct {
	Key   string  `json:"key"`   // the value, decoded; "-" when the field was empty
	Count int64   `json:"count"` // requests with that value
	Share float64 `json:"share"` // of matched requests (or of the list's total, for error URIs)
}

// Percentiles summarises a latency distribution, in seconds. They come
// from a log-linear histogram: exact up to 0.127 s, within ±0.8% above.
type Percentiles struct {
	Count int64   `json:"count"` // requests measured
	Mean  float64 `json:"mean"`  // exact
	P50   float64 `json:"p50"`   // median
	P90   float64 `json:"p90"`   // 90th percentile
	P99   float64 `json:"p99"`   // 99th percentile
	Max   float64 `json:"max"`   // exact
}

// LatencyPair is time-taken and time-to-first-byte of a set of requests.
type LatencyPair struct {
	TimeTaken       Percentiles `json:"time_taken"`         // request received to last byte sent
	TimeToFirstByte Percentiles `json:"time_to_first_byte"` // only requests from files that have the field
}

// ResultLatency is the latency of one x-edge-result-type.
type ResultLatency struct {
	ResultType string `json:"result_type"` // the x-edge-result-type value
	LatencyPair
}

// Latency is the latency section.
type Latency struct {
	Overall      LatencyPair     `json:"overall"`        // every matched request
	ByResultType []ResultLatency `json:"by_result_type"` // per x-edge-result-type, busiest first
}

// TopList is a top-N list.
type TopList struct {
	Items []Count `json:"items"` // the top N, largest first
	// Exact is false when the values were too many to count exactly in
	// bounded memory: then each count may be low by up to MaxError.
	Exact    bool  `json:"exact"`
	MaxError int64 `json:"max_error"` // 0 when exact
}

// Tops are the top-N lists.
type Tops struct {
	Hosts         TopList `json:"hosts"`          // x-host-header, else cs(Host)
	URIs          TopList `json:"uris"`           // cs-uri-stem
	Clients       TopList `json:"clients"`        // c-ip
	UserAgents    TopList `json:"user_agents"`    // cs(User-Agent), decoded
	Referers      TopList `json:"referers"`       // cs(Referer), decoded
	EdgeLocations TopList `json:"edge_locations"` // x-edge-location
}

// ErrorType is the failed requests of one x-edge-detailed-result-type.
type ErrorType struct {
	Type      string      `json:"type"`       // x-edge-detailed-result-type (x-edge-result-type in older files)
	Count     int64       `json:"count"`      // failed requests of this type
	First     *time.Time  `json:"first"`      // the first of them; null without times
	Last      *time.Time  `json:"last"`       // the last of them
	Statuses  []Count     `json:"statuses"`   // their sc-status values, share of Count
	Hosts     []Count     `json:"hosts"`      // the hosts they were for, share of Count
	TopURIs   []Count     `json:"top_uris"`   // their most frequent URIs, share of Count
	TimeTaken Percentiles `json:"time_taken"` // how long the failed requests took (±6.25%)
}

// Timeline is the counts per time bucket, for charts.
type Timeline struct {
	BucketSeconds int64        `json:"bucket_seconds"` // 60, or coarser so that there are at most 360 buckets
	Buckets       []TimeBucket `json:"buckets"`        // in time order; empty buckets between busy ones included
}

// TimeBucket is one time bucket.
type TimeBucket struct {
	Start        time.Time        `json:"start"`          // start of the bucket
	Requests     int64            `json:"requests"`       // requests that finished in it
	Bytes        int64            `json:"bytes"`          // their sc-bytes
	Hits         int64            `json:"hits"`           // cacheable Hit and RefreshHit
	Misses       int64            `json:"misses"`         // cacheable Miss
	HitRatio     *float64         `json:"hit_ratio"`      // null without hits or misses
	ByteHitRatio *float64         `json:"byte_hit_ratio"` // null without hits or misses
	Errors       int64            `json:"errors"`         // failed requests (see errors)
	Status4xx    int64            `json:"status_4xx"`     // responses with a 4xx status
	Status5xx    int64            `json:"status_5xx"`     // responses with a 5xx status
	ByResult     map[string]int64 `json:"by_result"`      // Hit, RefreshHit, Miss, Error, Redirect, Other
	ErrorsByType map[string]int64 `json:"errors_by_type"` // failed requests per detailed type
	P50          float64          `json:"p50"`            // time-taken, seconds (±6.25%)
	P90          float64          `json:"p90"`            // time-taken, seconds
	P99          float64          `json:"p99"`            // time-taken, seconds
}

// maxTimelineSpan bounds the timeline filled with empty buckets: when the
// busy buckets are spread wider (logs of two separate periods), gaps are
// left out so that the timeline stays small.
const maxTimelineSpan = 4 * maxTimelinePoints

// Summarize turns an analysis into a summary with top-n lists (n <= 0
// means 10).
func Summarize(an *Analysis, n int) *Summary {
	if n <= 0 {
		n = 10
	}
	a := an.agg
	s := &Summary{
		SchemaVersion: SchemaVersion,
		Filter:        an.Filter.String(),
		Requests:      a.matched,
		BytesSent:     a.bytesSent,
		BytesReceived: a.bytesReceived,
	}
	s.Input = Input{Records: a.records, Matched: a.matched, Filtered: a.records - a.matched,
		Malformed: a.malformed, Examples: slices.Clone(a.problems), Untimed: a.untimed}
	if s.Input.Examples == nil {
		s.Input.Examples = []Problem{}
	}
	for _, src := range an.Sources {
		s.Input.Sources = append(s.Input.Sources, src.Name)
	}
	for _, err := range an.InputErrors {
		s.Input.UnreadSources = append(s.Input.UnreadSources, err.Error())
	}
	if s.Input.UnreadSources == nil {
		s.Input.UnreadSources = []string{}
	}

	if a.timed {
		first, last := unix(a.first), unix(a.last)
		s.TimeRange = TimeRange{First: &first, Last: &last, Seconds: float64(a.last - a.first)}
		// Over the buckets from the first request's to the last's: a
		// partial first or last minute counts whole, so that no rate is
		// extrapolated from a few seconds and the mean, an average of the
		// buckets' rates, is never above the busiest one's.
		minutes := float64((floorDiv(a.last, a.width)-floorDiv(a.first, a.width)+1)*a.width) / 60
		s.RequestsPerMinute.Mean = round(float64(a.matched-a.untimed)/minutes, 2)
	}
	s.HitRatio = HitRatio{Requests: ratio(a.hits, a.hits+a.misses), Bytes: ratio(a.hitBytes, a.hitBytes+a.missBytes),
		Hits: a.hits, Misses: a.misses, HitBytes: a.hitBytes, MissBytes: a.missBytes}

	s.ResultTypes = counts(a.results, a.matched)
	s.ResponseResultTypes = counts(a.responses, a.matched)
	s.DetailedResultTypes = counts(a.detailed, a.matched)
	classes := map[string]int64{}
	for code, c := range a.status {
		if c == 0 {
			continue
		}
		key := strconv.Itoa(code)
		if code == 0 {
			key = "000"
		}
		s.StatusCodes = append(s.StatusCodes, Count{Key: key, Count: c, Share: ratio(c, a.matched)})
		cl := "000"
		if code > 0 {
			cl = strconv.Itoa(code/100) + "xx"
		}
		classes[cl] += c
	}
	for k, c := range classes {
		s.StatusClasses = append(s.StatusClasses, Count{Key: k, Count: c, Share: ratio(c, a.matched)})
	}
	sortCounts(s.StatusCodes)
	sortCounts(s.StatusClasses)

	s.Latency.Overall = latencyPair(&a.lat)
	for k, lp := range a.byResult {
		s.Latency.ByResultType = append(s.Latency.ByResultType, ResultLatency{ResultType: k, LatencyPair: latencyPair(lp)})
	}
	slices.SortFunc(s.Latency.ByResultType, func(x, y ResultLatency) int {
		if c := cmp.Compare(y.TimeTaken.Count, x.TimeTaken.Count); c != 0 {
			return c
		}
		return cmp.Compare(x.ResultType, y.ResultType)
	})

	s.Top = Tops{
		Hosts: topList(a.hosts, n, a.matched), URIs: topList(a.uris, n, a.matched),
		Clients: topList(a.clients, n, a.matched), UserAgents: topList(a.agents, n, a.matched),
		Referers: topList(a.referers, n, a.matched), EdgeLocations: topList(a.locations, n, a.matched),
	}
	s.Methods = counts(a.methods, a.matched)
	s.Protocols = counts(a.protocols, a.matched)
	s.ProtocolVersions = counts(a.versions, a.matched)
	s.TLSVersions = counts(a.tls, a.matched)
	s.Ciphers = counts(a.ciphers, a.matched)

	s.Errors = errorTypes(a, n)
	s.Timeline = timeline(a)
	if p, at := peak(a); at != nil {
		s.RequestsPerMinute.Peak, s.RequestsPerMinute.PeakAt = p, at
	}
	s.Findings = findings(a, s)
	s.Notes = notes(a, s)
	nilToEmpty(s)
	return s
}

// nilToEmpty makes empty lists [] rather than null in JSON, so consumers
// need not tell the two apart.
func nilToEmpty(s *Summary) {
	for _, l := range []*[]Count{&s.ResultTypes, &s.ResponseResultTypes, &s.DetailedResultTypes, &s.StatusClasses,
		&s.StatusCodes, &s.Methods, &s.Protocols, &s.ProtocolVersions, &s.TLSVersions, &s.Ciphers,
		&s.Top.Hosts.Items, &s.Top.URIs.Items, &s.Top.Clients.Items, &s.Top.UserAgents.Items,
		&s.Top.Referers.Items, &s.Top.EdgeLocations.Items} {
		if *l == nil {
			*l = []Count{}
		}
	}
	if s.Latency.ByResultType == nil {
		s.Latency.ByResultType = []ResultLatency{}
	}
	if s.Errors == nil {
		s.Errors = []ErrorType{}
	}
	if s.Findings == nil {
		s.Findings = []Finding{}
	}
	if s.Timeline.Buckets == nil {
		s.Timeline.Buckets = []TimeBucket{}
	}
	if s.Notes == nil {
		s.Notes = []string{}
	}
	if s.Input.Sources == nil {
		s.Input.Sources = []string{}
	}
}

func unix(t int64) time.Time { return time.Unix(t, 0).UTC() }

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return round(float64(a)/float64(b), 4)
}

func round(v float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(v*p) / p
}

func sortCounts(cs []Count) {
	slices.SortFunc(cs, func(x, y Count) int {
		if c := cmp.Compare(y.Count, x.Count); c != 0 {
			return c
		}
		return cmp.Compare(x.Key, y.Key)
	})
}

func counts(s *topK, total int64) []Count {
	var out []Count
	for _, e := range s.top(0) {
		out = append(out, Count{Key: e.key, Count: e.count, Share: ratio(e.count, total)})
	}
	return out
}

func topList(s *topK, n int, total int64) TopList {
	l := TopList{Exact: s.exact(), MaxError: s.dropped, Items: []Count{}}
	for _, e := range s.top(n) {
		l.Items = append(l.Items, Count{Key: e.key, Count: e.count, Share: ratio(e.count, total)})
	}
	return l
}

func seconds(ms float64) float64 { return round(ms/1000, 4) }

func percentiles(h *hist) Percentiles {
	return Percentiles{Count: int64(h.n), Mean: seconds(h.mean()), P50: seconds(h.quantile(0.5)),
		P90: seconds(h.quantile(0.9)), P99: seconds(h.quantile(0.99)), Max: seconds(float64(h.max))}
}

func latencyPair(lp *latPair) LatencyPair {
	return LatencyPair{TimeTaken: percentiles(&lp.tt), TimeToFirstByte: percentiles(&lp.ttfb)}
}

// errorTypes folds the (type, host) groups into one entry per type.
func errorTypes(a *aggregate, n int) []ErrorType {
	byType := map[string]*errGroup{}
	hosts := map[string][]Count{}
	for key, g := range a.groups {
		hosts[key.typ] = append(hosts[key.typ], Count{Key: key.host, Count: g.count})
		cp := &errGroup{series: map[int64]int64{}, tt: newHist(coarseBits), uris: newTopK(kGroupURIs), status: map[int]int64{}}
		cp.merge(g)
		if cur := byType[key.typ]; cur != nil {
			cur.merge(cp)
		} else {
			byType[key.typ] = cp
		}
	}
	var out []ErrorType
	for typ, g := range byType {
		e := ErrorType{Type: typ, Count: g.count, TimeTaken: percentiles(&g.tt)}
		if g.first != 0 {
			f, l := unix(g.first), unix(g.last)
			e.First, e.Last = &f, &l
		}
		for st, c := range g.status {
			key := strconv.Itoa(st)
			if st == 0 {
				key = "000"
			}
			e.Statuses = append(e.Statuses, Count{Key: key, Count: c, Share: ratio(c, g.count)})
		}
		sortCounts(e.Statuses)
		e.Hosts = hosts[typ]
		for i := range e.Hosts {
			e.Hosts[i].Share = ratio(e.Hosts[i].Count, g.count)
		}
		sortCounts(e.Hosts)
		e.TopURIs = []Count{}
		for _, u := range g.uris.top(n) {
			e.TopURIs = append(e.TopURIs, Count{Key: u.key, Count: u.count, Share: ratio(u.count, g.count)})
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(x, y ErrorType) int {
		if c := cmp.Compare(y.Count, x.Count); c != 0 {
			return c
		}
		return cmp.Compare(x.Type, y.Type)
	})
	return out
}

// maxTimelinePoints bounds the timeline of the summary: it is for charts
// and JSON consumers, so a day at one minute (1,440 buckets) is shown in
// 5-minute buckets. Findings use the finer buckets of the aggregate.
const maxTimelinePoints = 360

// timeline lists the buckets in time order at a width that gives at most
// maxTimelinePoints buckets, filling short gaps with empty buckets so that
// charts show quiet periods as zero.
func timeline(a *aggregate) Timeline {
	if len(a.series) == 0 {
		return Timeline{BucketSeconds: a.width}
	}
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for idx := range a.series {
		lo, hi = min(lo, idx), max(hi, idx)
	}
	width := a.width
	for level := a.level; widthAt(level) != 0; level++ {
		width = widthAt(level)
		if (hi-lo+1)*a.width/width <= maxTimelinePoints {
			break
		}
	}
	series := map[int64]*bucket{}
	for idx, b := range a.series {
		n := floorDiv(idx*a.width, width)
		dst := series[n]
		if dst == nil {
			dst = &bucket{latency: newHist(coarseBits)}
			series[n] = dst
		}
		dst.merge(b)
	}
	errSeries := map[string]map[int64]int64{}
	for key, g := range a.groups {
		m := errSeries[key.typ]
		if m == nil {
			m = map[int64]int64{}
			errSeries[key.typ] = m
		}
		for idx, c := range g.series {
			m[floorDiv(idx*a.width, width)] += c
		}
	}
	idxs := make([]int64, 0, len(series))
	for idx := range series {
		idxs = append(idxs, idx)
	}
	slices.Sort(idxs)
	tl := Timeline{BucketSeconds: width}
	emit := func(idx int64) {
		tb := TimeBucket{Start: unix(idx * width), ByResult: map[string]int64{}, ErrorsByType: map[string]int64{}}
		if b := series[idx]; b != nil {
			tb.Requests, tb.Bytes, tb.Hits, tb.Misses = b.requests, b.bytes, b.hits, b.misses
			tb.Errors, tb.Status4xx, tb.Status5xx = b.errors, b.s4xx, b.s5xx
			if b.hits+b.misses > 0 {
				hr, br := ratio(b.hits, b.hits+b.misses), ratio(b.hitBytes, b.hitBytes+b.missBytes)
				tb.HitRatio, tb.ByteHitRatio = &hr, &br
			}
			for i, c := range b.byResult {
				if c > 0 {
					tb.ByResult[primaryName(i)] = c
				}
			}
			tb.P50, tb.P90, tb.P99 = seconds(b.latency.quantile(0.5)), seconds(b.latency.quantile(0.9)), seconds(b.latency.quantile(0.99))
		}
		for typ, m := range errSeries {
			if c := m[idx]; c > 0 {
				tb.ErrorsByType[typ] = c
			}
		}
		tl.Buckets = append(tl.Buckets, tb)
	}
	fillGaps := idxs[len(idxs)-1]-idxs[0] < maxTimelineSpan
	for i, idx := range idxs {
		if i > 0 && fillGaps {
			for j := idxs[i-1] + 1; j < idx; j++ {
				emit(j)
			}
		}
		emit(idx)
	}
	return tl
}

// peak returns the busiest bucket's rate per minute and its start, from
// the finest buckets kept.
func peak(a *aggregate) (float64, *time.Time) {
	var best *bucket
	var at int64
	for idx, b := range a.series {
		if best == nil || b.requests > best.requests || (b.requests == best.requests && idx < at) {
			best, at = b, idx
		}
	}
	if best == nil {
		return 0, nil
	}
	t := unix(at * a.width)
	return round(float64(best.requests)/(float64(a.width)/60), 2), &t
}

// notes says where the summary is approximate.
func notes(a *aggregate, s *Summary) []string {
	var out []string
	for _, l := range []struct {
		name string
		t    TopList
	}{{"hosts", s.Top.Hosts}, {"URIs", s.Top.URIs}, {"clients", s.Top.Clients}, {"user agents", s.Top.UserAgents},
		{"referers", s.Top.Referers}, {"edge locations", s.Top.EdgeLocations}} {
		if !l.t.Exact {
			out = append(out, fmt.Sprintf("top %s: too many distinct values to count exactly in bounded memory; "+
				"counts come from a heavy-hitters summary (Misra-Gries) and may be low by up to %d", l.name, l.t.MaxError))
		}
	}
	out = append(out, "latency percentiles come from log-linear histograms: exact up to 0.127 s, within ±0.8% above "+
		"(±6.25% in the timeline and per error type)")
	if a.width > 60 {
		out = append(out, fmt.Sprintf("the timeline uses %s buckets to stay bounded over a long time range", time.Duration(a.width)*time.Second))
	}
	if a.untracked > 0 {
		out = append(out, fmt.Sprintf("per-host findings cover the first %d hosts seen; %d requests of further hosts are counted but not analysed per host", maxTracked, a.untracked))
	}
	return out
}
