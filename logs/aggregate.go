package logs

import (
	"cmp"
	"slices"

	"github.com/edgegate/edgegate/edge/accesslog"
)

// Capacities of the bounded structures. The top-N summaries count exactly
// up to twice these many distinct values and approximately beyond (see
// topK); the tracked hosts and error groups cover any real deployment, and
// a log with more of them folds the rest into "(other)".
const (
	kTop        = 8192 // URIs, clients, client+URI pairs
	kMedium     = 2048 // hosts, user agents, referers, 4xx URIs
	kSmall      = 256  // result types, locations, protocols, TLS versions, ciphers, methods
	kGroupURIs  = 32   // top URIs kept per error group
	maxTracked  = 64   // hosts with their own time series
	maxGroups   = 256  // (error type, host) groups
	maxByResult = 64   // result types with their own latency histograms
	maxProblems = 10   // malformed lines kept as examples
	otherLabel  = "(other)"
	emptyLabel  = "-"
)

// Problem is a malformed line: where it is and what is wrong with it.
type Problem struct {
	File    string `json:"file"`  // the source, as given or found in a directory; "-" for standard input
	Line    int    `json:"line"`  // 1-based line number in that source, header lines counted
	Message string `json:"error"` // what is wrong, in the Reader's words
	src     int    // input index, for ordering
}

// latPair holds the two latency histograms of a set of requests.
type latPair struct {
	tt, ttfb hist
}

func newLatPair() *latPair {
	return &latPair{tt: newHist(fineBits), ttfb: newHist(fineBits)}
}

func (p *latPair) merge(o *latPair) {
	p.tt.merge(&o.tt)
	p.ttfb.merge(&o.ttfb)
}

// errKey identifies an error group: the detailed error type and the host.
type errKey struct {
	typ, host string
}

// errGroup is what is kept about the errors of one type for one host.
type errGroup struct {
	count       int64
	first, last int64           // Unix seconds
	series      map[int64]int64 // count per time bucket
	tt          hist            // time-taken of the failed requests, coarse
	uris        *topK
	status      map[int]int64
}

// hostTrack is one host's time series.
type hostTrack struct {
	series  map[int64]*hostBucket
	lastIdx int64
	last    *hostBucket
}

// aggregate is everything one worker learns from the records it reads. Two
// aggregates merge into one that is the aggregate of both inputs, so the
// input can be split among workers in any way.
type aggregate struct {
	level int   // step of the bucket-width ladder
	width int64 // bucket width in seconds

	records   int64 // records parsed
	matched   int64 // records that passed the filters
	malformed int64
	problems  []Problem // the first maxProblems malformed lines by position

	bytesSent, bytesReceived int64
	first, last              int64 // Unix seconds of the first and last matched record
	timed                    bool  // first and last are set
	untimed                  int64 // records without a date

	status                       [1000]int64
	results, responses, detailed *topK
	hits, misses                 int64
	hitBytes, missBytes          int64
	lat                          latPair // time-taken, and time-to-first-byte where the file has it
	byResult                     map[string]*latPair

	hosts, uris, clients, agents, referers, locations, pairs *topK
	methods, protocols, versions, tls, ciphers               *topK
	uris4xx, clients4xx                                      *topK // for attributing 4xx spikes

	series  map[int64]*bucket
	lastIdx int64
	lastB   *bucket

	hostSeries map[string]*hostTrack
	untracked  int64 // requests of hosts beyond maxTracked
	groups     map[errKey]*errGroup

	scratch []byte
}

func newAggregate() *aggregate {
	return &aggregate{
		width:      widthAt(0),
		results:    newTopK(kSmall),
		responses:  newTopK(kSmall),
		detailed:   newTopK(kSmall),
		lat:        *newLatPair(),
		byResult:   make(map[string]*latPair),
		hosts:      newTopK(kMedium),
		uris:       newTopK(kTop),
		clients:    newTopK(kTop),
		agents:     newTopK(kMedium),
		referers:   newTopK(kMedium),
		locations:  newTopK(kSmall),
		pairs:      newTopK(kTop),
		methods:    newTopK(kSmall),
		protocols:  newTopK(kSmall),
		versions:   newTopK(kSmall),
		tls:        newTopK(kSmall),
		ciphers:    newTopK(kSmall),
		uris4xx:    newTopK(kMedium),
		clients4xx: newTopK(kMedium),
		series:     make(map[int64]*bucket),
		hostSeries: make(map[string]*hostTrack),
		groups:     make(map[errKey]*errGroup),
	}
}

// label returns s, or "-" for an empty value, so that absent values are
// counted and shown rather than dropped.
func label(s string) string {
	if s == "" {
		return emptyLabel
	}
	return s
}

// hostOf returns the host a request was for: the Host header the viewer
// sent (x-host-header, the alias users know), else cs(Host).
func hostOf(r *accesslog.Record) string {
	if r.HostHeader != "" {
		return r.HostHeader
	}
	return label(r.Host)
}

// cacheOutcome returns the result the cache reached: the
// x-edge-response-result-type, which stays Hit or Miss when the viewer left
// early and x-edge-result-type turned into Error.
func cacheOutcome(r *accesslog.Record) accesslog.ResultType {
	if r.ResponseResultType != "" {
		return r.ResponseResultType
	}
	return r.ResultType
}

// cacheResult tells whether a request counts as a cache hit or a miss for
// the hit ratio. As in CloudFront's cache statistics, only cacheable
// requests count: GET, HEAD and OPTIONS whose cache outcome
// (x-edge-response-result-type, which stays Hit or Miss when the viewer
// left early and x-edge-result-type turned into Error) is Hit or
// RefreshHit, or Miss. Errors, redirects and POSTs count as neither.
func cacheResult(r *accesslog.Record) (hit, miss bool) {
	switch r.Method {
	case "GET", "HEAD", "OPTIONS", "":
	default:
		return false, false
	}
	outcome := cacheOutcome(r)
	return outcome == accesslog.ResultHit || outcome == accesslog.ResultRefreshHit, outcome == accesslog.ResultMiss
}

// errorType returns the error group type of a failed request and true, or
// false for a request that did not fail. A request failed when CloudFront
// says so (Error, LimitExceeded, CapacityExceeded, an edge function error)
// or, in files without result types, when its status is 5xx.
func errorType(r *accesslog.Record) (string, bool) {
	switch r.ResultType {
	case accesslog.ResultError, accesslog.ResultLimitExceeded, accesslog.ResultCapacityExceeded,
		accesslog.ResultLambdaValidationError, accesslog.ResultLambdaExecutionError:
	case "":
		if r.Status < 500 {
			return "", false
		}
	default:
		return "", false
	}
	if r.DetailedResultType != "" {
		return string(r.DetailedResultType), true
	}
	if r.ResultType != "" {
		return string(r.ResultType), true
	}
	return string(accesslog.ResultError), true
}

// primaryOf maps an x-edge-result-type to its timeline index.
func primaryOf(t accesslog.ResultType) int {
	switch t {
	case accesslog.ResultHit:
		return pHit
	case accesslog.ResultRefreshHit:
		return pRefreshHit
	case accesslog.ResultMiss:
		return pMiss
	case accesslog.ResultError:
		return pError
	case accesslog.ResultRedirect:
		return pRedirect
	}
	return pOther
}

// millis rounds a duration to whole milliseconds.
func millis(d int64) int64 { return (d + 500_000) / 1_000_000 }

// add counts one record that passed the filters. hasTTFB tells whether the
// file has a time-to-first-byte field (files before 2019 do not), so that
// their zero values do not pull the percentiles down.
func (a *aggregate) add(r *accesslog.Record, hasTTFB bool) {
	a.matched++
	a.bytesSent += r.BytesSent
	a.bytesReceived += r.BytesReceived
	var t int64
	if !r.Time.IsZero() {
		t = r.Time.Unix()
		if !a.timed || t < a.first {
			a.first = t
		}
		if !a.timed || t > a.last {
			a.last = t
		}
		a.timed = true
	} else {
		a.untimed++
	}
	status := r.Status
	if status < 0 || status > 999 {
		status = 0
	}
	a.status[status]++

	result := label(string(r.ResultType))
	a.results.add(result, t)
	a.responses.add(label(string(r.ResponseResultType)), t)
	a.detailed.add(label(string(r.DetailedResultType)), t)

	hit, miss := cacheResult(r)
	switch {
	case hit:
		a.hits++
		a.hitBytes += r.BytesSent
	case miss:
		a.misses++
		a.missBytes += r.BytesSent
	}

	a.lat.tt.add(r.TimeTaken)
	if hasTTFB {
		a.lat.ttfb.add(r.TimeToFirstByte)
	}
	lp := a.byResult[result]
	if lp == nil {
		if len(a.byResult) >= maxByResult {
			result = otherLabel
			lp = a.byResult[result]
		}
		if lp == nil {
			lp = newLatPair()
			a.byResult[result] = lp
		}
	}
	lp.tt.add(r.TimeTaken)
	if hasTTFB {
		lp.ttfb.add(r.TimeToFirstByte)
	}

	host := hostOf(r)
	uri := label(r.URIStem)
	client := label(r.ClientIP)
	a.hosts.add(host, t)
	a.uris.add(uri, t)
	a.clients.add(client, t)
	a.agents.add(label(r.UserAgent), t)
	a.referers.add(label(r.Referer), t)
	a.locations.add(label(r.Location), t)
	a.scratch = append(append(append(a.scratch[:0], client...), 0), uri...)
	a.pairs.addBytes(a.scratch, t)
	a.methods.add(label(r.Method), t)
	a.protocols.add(label(r.Protocol), t)
	a.versions.add(label(r.ProtocolVersion), t)
	a.tls.add(label(r.SSLProtocol), t)
	a.ciphers.add(label(r.SSLCipher), t)
	class := status / 100
	if class == 4 {
		a.uris4xx.add(uri, t)
		a.clients4xx.add(client, t)
	}

	errType, failed := errorType(r)
	if failed {
		a.addError(errType, host, uri, status, r, t)
	}
	if t == 0 {
		return
	}

	a.fill(a.bucketFor(t), r, hit, miss, failed, class)
	a.addHost(host, t, r, hit, miss, class, hasTTFB)
}

// bucketFor returns the timeline bucket of Unix time t, creating it, and
// coarsening every series when the timeline outgrows maxBuckets.
func (a *aggregate) bucketFor(t int64) *bucket {
	idx := floorDiv(t, a.width)
	if a.lastB != nil && idx == a.lastIdx {
		return a.lastB
	}
	b := a.series[idx]
	if b == nil {
		b = &bucket{latency: newHist(coarseBits)}
		a.series[idx] = b
		if len(a.series) > maxBuckets {
			a.coarsen(a.level + 1)
			idx = floorDiv(t, a.width)
			b = a.series[idx]
		}
	}
	a.lastIdx, a.lastB = idx, b
	return b
}

// fill counts a record in its timeline bucket.
func (a *aggregate) fill(b *bucket, r *accesslog.Record, hit, miss, failed bool, class int) {
	b.requests++
	b.bytes += r.BytesSent
	switch {
	case hit:
		b.hits++
		b.hitBytes += r.BytesSent
	case miss:
		b.misses++
		b.missBytes += r.BytesSent
	}
	if failed {
		b.errors++
	}
	switch class {
	case 4:
		b.s4xx++
	case 5:
		b.s5xx++
	}
	b.byResult[primaryOf(r.ResultType)]++
	b.latency.add(r.TimeTaken)
}

// addHost counts a record in its host's series, for the first maxTracked
// hosts.
func (a *aggregate) addHost(host string, t int64, r *accesslog.Record, hit, miss bool, class int, hasTTFB bool) {
	ht := a.hostSeries[host]
	if ht == nil {
		if len(a.hostSeries) >= maxTracked {
			a.untracked++
			return
		}
		ht = &hostTrack{series: make(map[int64]*hostBucket)}
		a.hostSeries[host] = ht
	}
	idx := floorDiv(t, a.width)
	b := ht.last
	if b == nil || idx != ht.lastIdx {
		b = ht.series[idx]
		if b == nil {
			b = &hostBucket{}
			ht.series[idx] = b
		}
		ht.lastIdx, ht.last = idx, b
	}
	b.requests++
	switch {
	case hit:
		b.hits++
	case miss:
		b.misses++
	}
	if outcome := cacheOutcome(r); hasTTFB && (outcome == accesslog.ResultMiss || outcome == accesslog.ResultRefreshHit) {
		b.fetches++
		b.fetchMillis += millis(int64(r.TimeToFirstByte))
	}
	switch class {
	case 4:
		b.s4xx++
	case 5:
		b.s5xx++
	}
}

// addError counts a failed request in its (type, host) group.
func (a *aggregate) addError(typ, host, uri string, status int, r *accesslog.Record, t int64) {
	key := errKey{typ, host}
	g := a.groups[key]
	if g == nil {
		if len(a.groups) >= maxGroups {
			key.host = otherLabel
			if g = a.groups[key]; g == nil && len(a.groups) >= maxGroups+maxGroups/4 {
				key.typ = otherLabel
				g = a.groups[key]
			}
		}
		if g == nil {
			g = &errGroup{series: make(map[int64]int64), tt: newHist(coarseBits), uris: newTopK(kGroupURIs),
				status: make(map[int]int64)}
			a.groups[key] = g
		}
	}
	g.count++
	if t != 0 {
		if g.first == 0 || t < g.first {
			g.first = t
		}
		g.last = max(g.last, t)
		g.series[floorDiv(t, a.width)]++
	}
	g.tt.add(r.TimeTaken)
	g.uris.add(uri, t)
	g.status[status]++
}

// problem records a malformed line, keeping the first maxProblems by
// position.
func (a *aggregate) problem(p Problem) {
	a.malformed++
	a.keepProblems([]Problem{p})
}

func (a *aggregate) keepProblems(ps []Problem) {
	a.problems = append(a.problems, ps...)
	slices.SortFunc(a.problems, func(x, y Problem) int {
		if c := cmp.Compare(x.src, y.src); c != 0 {
			return c
		}
		return cmp.Compare(x.Line, y.Line)
	})
	if len(a.problems) > maxProblems {
		a.problems = a.problems[:maxProblems]
	}
}

// coarsen moves every series to ladder step level (or further, until the
// timeline fits).
func (a *aggregate) coarsen(level int) {
	for {
		w := widthAt(level)
		if w == 0 {
			// Past the ladder (centuries of logs at 28-day buckets, which
			// only a corrupt clock produces): keep the last width and
			// let the map grow; it is still bounded by the distinct
			// 28-day periods present.
			return
		}
		from := a.width
		a.series = rekey(a.series, from, w, func(dst, src *bucket) *bucket { dst.merge(src); return dst })
		for _, ht := range a.hostSeries {
			ht.series = rekey(ht.series, from, w, func(dst, src *hostBucket) *hostBucket { dst.merge(src); return dst })
			ht.last = nil
		}
		for _, g := range a.groups {
			g.series = rekey(g.series, from, w, func(dst, src int64) int64 { return dst + src })
		}
		a.level, a.width, a.lastB = level, w, nil
		if len(a.series) <= maxBuckets {
			return
		}
		level++
	}
}

// merge adds o into a; o must not be used afterwards.
func (a *aggregate) merge(o *aggregate) {
	switch {
	case o.level > a.level:
		a.coarsen(o.level)
	case a.level > o.level:
		o.coarsen(a.level)
	}
	a.records += o.records
	a.matched += o.matched
	a.malformed += o.malformed
	a.keepProblems(o.problems)
	a.bytesSent += o.bytesSent
	a.bytesReceived += o.bytesReceived
	if o.timed {
		if !a.timed || o.first < a.first {
			a.first = o.first
		}
		if !a.timed || o.last > a.last {
			a.last = o.last
		}
		a.timed = true
	}
	a.untimed += o.untimed
	for i, c := range o.status {
		a.status[i] += c
	}
	a.results.merge(o.results)
	a.responses.merge(o.responses)
	a.detailed.merge(o.detailed)
	a.hits += o.hits
	a.misses += o.misses
	a.hitBytes += o.hitBytes
	a.missBytes += o.missBytes
	a.lat.merge(&o.lat)
	for k, lp := range o.byResult {
		if cur := a.byResult[k]; cur != nil {
			cur.merge(lp)
		} else if len(a.byResult) < maxByResult {
			a.byResult[k] = lp
		} else {
			if a.byResult[otherLabel] == nil {
				a.byResult[otherLabel] = newLatPair()
			}
			a.byResult[otherLabel].merge(lp)
		}
	}
	for _, p := range [][2]*topK{
		{a.hosts, o.hosts}, {a.uris, o.uris}, {a.clients, o.clients}, {a.agents, o.agents},
		{a.referers, o.referers}, {a.locations, o.locations}, {a.pairs, o.pairs}, {a.methods, o.methods},
		{a.protocols, o.protocols}, {a.versions, o.versions}, {a.tls, o.tls}, {a.ciphers, o.ciphers},
		{a.uris4xx, o.uris4xx}, {a.clients4xx, o.clients4xx},
	} {
		p[0].merge(p[1])
	}
	for idx, b := range o.series {
		if cur := a.series[idx]; cur != nil {
			cur.merge(b)
		} else {
			a.series[idx] = b
		}
	}
	a.lastB = nil
	a.untracked += o.untracked
	for host, ot := range o.hostSeries {
		ht := a.hostSeries[host]
		if ht == nil {
			if len(a.hostSeries) >= maxTracked {
				for _, b := range ot.series {
					a.untracked += b.requests
				}
				continue
			}
			a.hostSeries[host] = ot
			ot.last = nil
			continue
		}
		for idx, b := range ot.series {
			if cur := ht.series[idx]; cur != nil {
				cur.merge(b)
			} else {
				ht.series[idx] = b
			}
		}
		ht.last = nil
	}
	for key, og := range o.groups {
		g := a.groups[key]
		if g == nil && len(a.groups) >= maxGroups {
			key.host = otherLabel
			g = a.groups[key]
		}
		if g == nil {
			a.groups[key] = og
			continue
		}
		g.merge(og)
	}
	if len(a.series) > maxBuckets {
		a.coarsen(a.level + 1)
	}
}

// merge adds o into g.
func (g *errGroup) merge(o *errGroup) {
	g.count += o.count
	if o.first != 0 && (g.first == 0 || o.first < g.first) {
		g.first = o.first
	}
	g.last = max(g.last, o.last)
	for idx, c := range o.series {
		g.series[idx] += c
	}
	g.tt.merge(&o.tt)
	g.uris.merge(o.uris)
	for s, c := range o.status {
		g.status[s] += c
	}
}
