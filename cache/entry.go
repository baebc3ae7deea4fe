package cache

import (
	"net/http"
	"slices"
	"strconv"
	"time"
)

// Kind tells a stored response from a Vary index.
type Kind uint8

const (
	// KindResponse is a stored response.
	KindResponse Kind = iota
	// KindVary sits at a primary key whose responses carry Vary: it lists the
	// varying fields, and the responses live at VaryKey(primary, fields, …).
	KindVary
)

// Entry is one stored response. Entries handed out by a Store are shared:
// treat them as read-only and Clone before changing one.
type Entry struct {
	// Kind tells a response from a Vary index.
	Kind Kind
	// Status, Header and Body are the stored response; Header is without
	// hop-by-hop fields and Body is always complete.
	Status int
	Header http.Header
	Body   []byte
	// RequestTime and ResponseTime bracket the origin exchange that produced
	// (or last revalidated) the entry, as in RFC 9111 §4.2.3.
	RequestTime, ResponseTime time.Time
	// InitialAge is the corrected initial age (RFC 9111 §4.2.3) at
	// ResponseTime.
	InitialAge time.Duration
	// Lifetime is the freshness lifetime after the policy's TTL rules.
	Lifetime time.Duration
	// StaleWhileRevalidate and StaleIfError are the RFC 5861 windows.
	StaleWhileRevalidate, StaleIfError time.Duration
	// NoStale forbids serving the entry stale.
	NoStale bool
	// ownHeader is set on an entry decoded for one caller alone (the
	// memory tier's Get): nothing else holds its Header map, so the hit
	// answered from it may make that map the response's header rather
	// than copy it.
	ownHeader bool // beside NoStale: in its padding
	// Path is the request path (decoded), matched by invalidations.
	Path string
	// VaryFields are the canonical names of the fields in Vary, sorted.
	VaryFields []string
	// Expires is when the store holding the entry drops it; stores set it.
	Expires time.Time
	// Content is set instead of Body on an entry whose large body a
	// StreamStore keeps outside memory (not encoded: the store holds it).
	Content Content
	// Generation is a Vary index's random generation, part of its variants'
	// keys: a new index orphans the variants of the one it replaces.
	Generation uint64
}

// NewEntry builds an entry from an origin response that Decide allowed,
// received between reqTime and respTime, for the decoded request path. It
// drops hop-by-hop fields, the fields the origin named in qualified private
// or no-cache, and the connection-listed ones (RFC 9111 §3.1).
func NewEntry(status int, h http.Header, body []byte, d Decision, path string, reqTime, respTime time.Time) *Entry {
	hdr := storableHeader(h)
	for _, f := range d.Strip {
		hdr.Del(f)
	}
	e := &Entry{
		Kind: KindResponse, Status: status, Header: hdr, Body: body,
		RequestTime: reqTime, ResponseTime: respTime,
		Lifetime: d.Lifetime, StaleWhileRevalidate: d.StaleWhileRevalidate, StaleIfError: d.StaleIfError,
		NoStale: d.NoStale, Path: path, VaryFields: varyFields(hdr),
	}
	e.InitialAge = initialAge(hdr, reqTime, respTime)
	return e
}

// storableHeader copies h without hop-by-hop fields and those listed in
// Connection.
func storableHeader(h http.Header) http.Header {
	out := h.Clone()
	for _, c := range h.Values("Connection") {
		for _, f := range fieldList(c) {
			out.Del(f)
		}
	}
	for _, f := range hopHeaders {
		out.Del(f)
	}
	return out
}

// varyFields is the sorted set of canonical field names in Vary.
func varyFields(h http.Header) []string {
	var out []string
	for _, v := range h.Values("Vary") {
		out = append(out, fieldList(v)...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// initialAge is RFC 9111 §4.2.3's corrected_initial_age.
func initialAge(h http.Header, reqTime, respTime time.Time) time.Duration {
	apparent := time.Duration(0)
	if date, ok := httpDate(h.Get("Date")); ok {
		apparent = max(respTime.Sub(date), 0)
	}
	delay := max(respTime.Sub(reqTime), 0)
	corrected := seconds(ageValue(h)) + delay
	return max(apparent, corrected)
}

// Age is the entry's current_age at now (RFC 9111 §4.2.3).
func (e *Entry) Age(now time.Time) time.Duration {
	return e.InitialAge + max(now.Sub(e.ResponseTime), 0)
}

// Freshness is where an entry stands at one instant.
type Freshness int

const (
	// Fresh entries are served as they are.
	Fresh Freshness = iota
	// StaleRevalidateInBackground entries are served while one background
	// request refreshes them (stale-while-revalidate).
	StaleRevalidateInBackground
	// Stale entries must be revalidated before use; they may still be served
	// if the origin fails and StaleIfErrorAllowed says so.
	Stale
)

// String names the freshness state.
func (f Freshness) String() string {
	switch f {
	case Fresh:
		return "fresh"
	case StaleRevalidateInBackground:
		return "stale-while-revalidate"
	default:
		return "stale"
	}
}

// Freshness classifies the entry at now.
func (e *Entry) Freshness(now time.Time) Freshness {
	age := e.Age(now)
	if age < e.Lifetime {
		return Fresh
	}
	if !e.NoStale && age-e.Lifetime < e.StaleWhileRevalidate {
		return StaleRevalidateInBackground
	}
	return Stale
}

// StaleIfErrorAllowed reports whether the entry may answer in place of an
// origin error at now: a fresh one always, a stale one within its
// stale-if-error window (RFC 5861 §4).
func (e *Entry) StaleIfErrorAllowed(now time.Time) bool {
	over := e.Age(now) - e.Lifetime
	return over < 0 || (!e.NoStale && over < e.StaleIfError)
}

// HasValidator reports whether the entry can be revalidated.
func (e *Entry) HasValidator() bool {
	return e.Header.Get("ETag") != "" || e.Header.Get("Last-Modified") != ""
}

// StorageTTL is how long a store should keep the entry from now: its
// remaining freshness plus the longer stale window, plus keep when it has a
// validator (an expired entry with a validator is still worth a conditional
// request that may turn a 200 into a 304).
func (e *Entry) StorageTTL(now time.Time, keep time.Duration) time.Duration {
	ttl := e.Lifetime - e.Age(now) + max(e.StaleWhileRevalidate, e.StaleIfError)
	if e.HasValidator() {
		ttl += keep
	}
	return ttl
}

// BodySize is the body's length, in memory or in Content.
func (e *Entry) BodySize() int64 {
	if e.Content != nil {
		return e.Content.Size()
	}
	return int64(len(e.Body))
}

// Clone copies the entry deeply enough to change its header and fields; the
// body is shared, since nothing rewrites a stored body.
func (e *Entry) Clone() *Entry {
	c := *e
	c.Header = e.Header.Clone()
	c.VaryFields = slices.Clone(e.VaryFields)
	return &c
}

// Size approximates the entry's memory footprint in bytes as an Entry
// value, for deciding what is small (the memory tier weighs its own flat
// copy exactly).
func (e *Entry) Size() int {
	n := 160 + len(e.Body) + len(e.Path)
	for k, vs := range e.Header {
		n += len(k) + 16
		for _, v := range vs {
			n += len(v) + 16
		}
	}
	for _, f := range e.VaryFields {
		n += len(f) + 16
	}
	return n
}

// ResponseHeader is the header to send a viewer at now: the stored fields
// with Age set (RFC 9111 §5.1).
func (e *Entry) ResponseHeader(now time.Time) http.Header {
	h := e.Header.Clone()
	h.Set("Age", strconv.FormatInt(int64(e.Age(now)/time.Second), 10))
	return h
}

// Conditional sets on an origin request the validators of a stored entry
// (RFC 9111 §4.3.1), replacing any the viewer sent.
func Conditional(req *http.Request, e *Entry) {
	for _, f := range []string{"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range", "Range"} {
		req.Header.Del(f)
	}
	if et := e.Header.Get("ETag"); et != "" {
		req.Header.Set("If-None-Match", et)
	}
	if lm := e.Header.Get("Last-Modified"); lm != "" {
		req.Header.Set("If-Modified-Since", lm)
	}
}

// Freshen applies a 304 to originReq, received between reqTime and respTime,
// to a stored entry (RFC 9111 §4.3.4 and §3.2) and returns the updated copy
// and the verdict on storing it (the 304 may have changed Cache-Control). ok
// is false when the 304's validators name another response: then the stored
// entry must not be updated and the caller should fetch unconditionally.
func Freshen(e *Entry, p Policy, originReq *http.Request, h304 http.Header, reqTime, respTime time.Time) (updated *Entry, d Decision, ok bool) {
	if et := h304.Get("ETag"); et != "" && et != e.Header.Get("ETag") {
		return nil, Decision{}, false
	}
	if lm := h304.Get("Last-Modified"); lm != "" && h304.Get("ETag") == "" && lm != e.Header.Get("Last-Modified") {
		return nil, Decision{}, false
	}
	n := e.Clone()
	for k, vs := range storableHeader(h304) {
		switch k {
		case "Content-Length", "Content-Encoding", "Content-Md5", "Content-Range", "Etag":
			// What the stored body depends on stays as it was (RFC 9111
			// §3.2); a 304 describes the representation, not these bytes.
			continue
		}
		n.Header[k] = slices.Clone(vs)
	}
	d = p.Decide(originReq, n.Status, n.Header, respTime)
	for _, f := range d.Strip {
		n.Header.Del(f)
	}
	n.Lifetime, n.StaleWhileRevalidate, n.StaleIfError, n.NoStale = d.Lifetime, d.StaleWhileRevalidate, d.StaleIfError, d.NoStale
	n.RequestTime, n.ResponseTime = reqTime, respTime
	n.InitialAge = initialAge(n.Header, reqTime, respTime)
	return n, d, true
}
