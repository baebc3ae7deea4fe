package cache

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Policy is a CloudFront cache policy: the TTL bounds applied to origin
// freshness and what goes into the cache key.
type Policy struct {
	// MinTTL is the least time an object stays fresh. Above zero it also
	// overrides no-cache, no-store and private, as CloudFront does.
	MinTTL time.Duration
	// DefaultTTL is the freshness of a response with no s-maxage, max-age or
	// Expires. Zero makes the cache a pure RFC 9111 cache without heuristics.
	DefaultTTL time.Duration
	// MaxTTL caps the origin's explicit freshness.
	MaxTTL time.Duration
	// Key selects the parts of a request that make up the cache key, and so
	// also the parts forwarded to the origin.
	Key KeyPolicy
	// CacheOPTIONS caches OPTIONS responses (under their own key) besides
	// GET and HEAD, like CloudFront's "GET, HEAD, OPTIONS" cached methods.
	CacheOPTIONS bool
	// MaxObjectSize is the largest body stored (DefaultMaxObjectSize when
	// zero); a larger one is streamed to the viewer unstored.
	MaxObjectSize int64

	// Forward is the origin request policy: what reaches the origin besides
	// the key. The zero value forwards the key only.
	Forward OriginRequestPolicy
	// ErrorCachingMinTTL is the freshness of a heuristically cacheable
	// error (404, 405, 410, 414, 501) without explicit freshness, when
	// DefaultTTL > 0 permits heuristics (CloudFront's error caching minimum
	// TTL, 10s there by default).
	ErrorCachingMinTTL time.Duration
	// StaleIfError and StaleWhileRevalidate are the operator's serve-stale
	// windows (nginx's proxy_cache_use_stale), applied even when the origin
	// sends no such directive; the longer of the two grants wins.
	// must-revalidate, proxy-revalidate, no-cache and s-maxage forbid them.
	StaleIfError, StaleWhileRevalidate time.Duration
	// StaleOnStatus lists the origin statuses that count as an error for
	// stale-if-error; nil means 500, 502, 503 and 504 (RFC 5861).
	StaleOnStatus []int
}

// OriginRequestPolicy is CloudFront's origin request policy: the viewer
// headers, cookies and query strings forwarded to the origin on top of
// those in the cache key.
type OriginRequestPolicy struct {
	// Headers selects viewer headers (case-insensitive names). Hop-by-hop
	// fields, the edge's own X-Forwarded-* and the override headers
	// (overrideHeaders) are never forwarded by All; only naming one
	// forwards it.
	Headers Selection
	// Cookies and QueryStrings select by name (case-sensitive).
	Cookies, QueryStrings Selection
	// Host forwards the viewer's Host instead of the origin's domain name
	// (CloudFront's AllViewer); the proxy applies it.
	Host bool
}

// ForwardAll is the origin request policy an ordinary application needs:
// every end-to-end viewer header, cookie and query string (CloudFront's
// AllViewerExceptHostHeader).
func ForwardAll() OriginRequestPolicy {
	return OriginRequestPolicy{Headers: SelectAll(), Cookies: SelectAll(), QueryStrings: SelectAll()}
}

// overrideHeaders rewrite what a request means to some frameworks (URL,
// method, scheme, host, client address): a viewer could use them to make
// the origin produce a response stored under another request's key. They
// are forwarded only when an origin request policy names them.
var overrideHeaders = []string{"X-Original-Url", "X-Rewrite-Url", "X-Http-Method-Override", "X-Http-Method",
	"X-Method-Override", "X-Forwarded-Scheme", "X-Forwarded-Host", "X-Forwarded-Server", "X-Forwarded-Port",
	"X-Forwarded-Prefix", "X-Forwarded-Path", "X-Forwarded-Ssl", "X-Original-Host", "X-Host", "X-Url-Scheme",
	"Forwarded", "X-Real-Ip", "X-Client-Ip", "True-Client-Ip", "X-Http-Host-Override", "X-Forwarded-Uri", "X-Original-Uri",
	"X-Forwarded-Protocol", "Front-End-Https"}

// KeyPolicy names the query strings, headers and cookies in the cache key.
type KeyPolicy struct {
	// QueryStrings selects query parameters by name (case-sensitive).
	QueryStrings Selection
	// Headers lists request headers (case-insensitive) in the key.
	Headers []string
	// Cookies selects cookies by name (case-sensitive).
	Cookies Selection
	// AcceptEncodingGzip, AcceptEncodingBrotli and AcceptEncodingZstd put
	// a normalised Accept-Encoding (the one best coding the viewer accepts:
	// "br", "zstd", "gzip" or nothing) into the key and the origin request,
	// as CloudFront's EnableAcceptEncoding* settings do.
	AcceptEncodingGzip, AcceptEncodingBrotli, AcceptEncodingZstd bool
}

// Selection is CloudFront's none / all / allow-list / all-except choice.
// The zero value selects nothing.
type Selection struct {
	// All selects every name but those in Except; Names is then ignored.
	All bool
	// Names is the allow-list used when All is false.
	Names []string
	// Except is the deny-list used when All is true.
	Except []string
}

// SelectAll selects every name.
func SelectAll() Selection { return Selection{All: true} }

// SelectNames selects only the given names.
func SelectNames(names ...string) Selection { return Selection{Names: names} }

// SelectAllExcept selects every name but the given ones.
func SelectAllExcept(names ...string) Selection { return Selection{All: true, Except: names} }

func (s Selection) has(name string) bool {
	if s.All {
		return !slices.Contains(s.Except, name)
	}
	return slices.Contains(s.Names, name)
}

// hasHeader is has for header names, which are case-insensitive.
func (s Selection) hasHeader(name string) bool {
	eq := func(n string) bool { return strings.EqualFold(n, name) }
	if s.All {
		return !slices.ContainsFunc(s.Except, eq)
	}
	return slices.ContainsFunc(s.Names, eq)
}

// namesHeader reports whether the allow-list names a header explicitly.
func (s Selection) namesHeader(name string) bool {
	return !s.All && slices.ContainsFunc(s.Names, func(n string) bool { return strings.EqualFold(n, name) })
}

func (s Selection) none() bool { return !s.All && len(s.Names) == 0 }

// hopHeaders are connection-specific and may not be keyed or stored
// (RFC 9110 §7.6.1, RFC 9111 §3.1).
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Te", "Trailer",
	"Transfer-Encoding", "Upgrade", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Authentication-Info"}

// Validate reports a policy CloudFront would refuse: TTLs out of order, or a
// hop-by-hop header in the key.
func (p Policy) Validate() error {
	var errs []error
	if p.MinTTL < 0 || p.DefaultTTL < 0 || p.MaxTTL < 0 {
		errs = append(errs, errors.New("cache policy: TTLs must not be negative"))
	}
	if p.MinTTL > p.DefaultTTL || p.DefaultTTL > p.MaxTTL {
		errs = append(errs, fmt.Errorf("cache policy: need min_ttl (%s) <= default_ttl (%s) <= max_ttl (%s)", p.MinTTL, p.DefaultTTL, p.MaxTTL))
	}
	for _, h := range p.Key.Headers {
		switch c := http.CanonicalHeaderKey(h); {
		case slices.Contains(hopHeaders, c):
			errs = append(errs, fmt.Errorf("cache policy: header %q is hop-by-hop and cannot be in the cache key", h))
		case c == "Cookie":
			errs = append(errs, fmt.Errorf("cache policy: select cookies with the cookies setting, not header %q", h))
		case c == "Accept-Encoding":
			errs = append(errs, fmt.Errorf("cache policy: header %q is keyed through the accept-encoding settings", h))
		}
	}
	return errors.Join(errs...)
}

// Cacheable reports whether a viewer request may be answered from the cache
// and its response stored: GET and HEAD, and OPTIONS when the policy says so.
// The viewer's own Cache-Control and Pragma are ignored, as CloudFront does,
// so that no viewer can force origin fetches. Authorization does not make a
// request uncacheable here: unless it is keyed it is not forwarded, and if it
// is keyed, Decide applies RFC 9111 §3.5 to the response.
func (p Policy) Cacheable(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return true
	case http.MethodOptions:
		return p.CacheOPTIONS
	}
	return false
}

// Decision is the verdict on storing one origin response.
type Decision struct {
	// Store is true when the response may be stored.
	Store bool
	// Reason says why it may not (for logs and debugging headers).
	Reason string
	// Lifetime is the freshness lifetime after the policy's TTL rules.
	Lifetime time.Duration
	// StaleWhileRevalidate and StaleIfError are the windows past Lifetime in
	// which a stale copy may be served (RFC 5861); zero when not allowed.
	StaleWhileRevalidate, StaleIfError time.Duration
	// NoStale forbids serving the response stale at all (must-revalidate,
	// proxy-revalidate, or no-cache honoured).
	NoStale bool
	// Strip lists header fields the cache must drop before storing
	// (qualified private="..." and no-cache="..." field names).
	Strip []string
}

// defaultCacheable are the statuses RFC 9110 §15.1 calls heuristically
// cacheable, less 206: a partial response is never stored as a full one.
var defaultCacheable = map[int]bool{200: true, 203: true, 204: true, 300: true, 301: true, 308: true,
	404: true, 405: true, 410: true, 414: true, 501: true}

// neverStored are errors that a crafted request can provoke (oversized or
// malformed headers, an oversized body): storing them is cache-poisoned
// denial of service, whatever Cache-Control the origin put on them. Other
// errors are stored as RFC 9111 allows, 5xx only with the origin's
// explicit freshness (see Decide).
func neverStored(status int) bool {
	return status == 400 || status == 413 || status == 431
}

// Decide reports whether the response to originReq (the request as forwarded
// to the origin, not the viewer's) may be stored, and its freshness. now is
// when the response was received; it stands in for a missing Date.
//
// The rules, in order:
//   - only GET (and OPTIONS with CacheOPTIONS) responses are stored, never a
//     HEAD response, a 206 or a 304, nor 400, 413 or 431;
//   - other statuses outside RFC 9110's heuristically cacheable set need
//     explicit freshness (s-maxage, max-age, Expires) or public, and a 5xx
//     (but 501) needs explicit freshness: an origin's error is stored only
//     for as long as the origin itself said;
//   - a heuristically cacheable error (404, 405, 410, 414, 501) without
//     explicit freshness gets ErrorCachingMinTTL when DefaultTTL > 0;
//   - credentials the key does not separate (Authorization, an unkeyed
//     cookie) need public, s-maxage or a targeted field (CDN-Cache-Control);
//   - a request with Authorization needs public, s-maxage or must-revalidate
//     (RFC 9111 §3.5);
//   - no-store and private are honoured unless MinTTL > 0 (CloudFront then
//     caches for MinTTL, an operator override of the origin);
//   - Vary: * is never stored: it can never match;
//   - Set-Cookie: a response that sets a cookie is not stored unless the
//     origin named Set-Cookie in private="..." or no-cache="...", in which
//     case it is stored without it. RFC 9111 allows storing it, but a shared
//     cache that replays one viewer's session cookie to every other viewer
//     is the classic leak, so we take the conservative rule (as Varnish and
//     Fastly do by default), MinTTL or not;
//   - a response with no freshness left and no validator to revalidate with
//     is not stored: no request could ever use it;
//   - stale serving needs the origin's explicit stale-while-revalidate or
//     stale-if-error; must-revalidate, proxy-revalidate and an honoured
//     no-cache forbid it, while the proxy-revalidate that s-maxage implies
//     (RFC 9111 §5.2.2.10) yields to those explicit directives.
func (p Policy) Decide(originReq *http.Request, status int, h http.Header, now time.Time) Decision {
	cc, targeted := responseCacheControl(h)
	no := func(reason string) Decision { return Decision{Reason: reason} }
	switch {
	case originReq.Method == http.MethodHead:
		return no("HEAD response has no body")
	case originReq.Method == http.MethodOptions && !p.CacheOPTIONS,
		originReq.Method != http.MethodGet && originReq.Method != http.MethodOptions:
		return no("method " + originReq.Method + " is not cached")
	case status == http.StatusPartialContent:
		return no("partial content")
	case status == http.StatusNotModified || status < 200:
		return no(fmt.Sprintf("status %d is not a complete response", status))
	case neverStored(status):
		return no(fmt.Sprintf("status %d is never cached", status))
	}
	// must-understand (RFC 9111 §5.2.2.3): store only a status we know,
	// and then ignore no-store.
	understood := http.StatusText(status) != ""
	if cc.mustUnderstand {
		if !understood {
			return no(fmt.Sprintf("must-understand with status %d", status))
		}
		cc.noStore = false
	}
	lifetime, explicit, forbidden := p.lifetime(cc, targeted, h, now)
	if !defaultCacheable[status] && !explicit && (!cc.public || status >= 500) {
		return no(fmt.Sprintf("status %d needs explicit freshness", status))
	}
	if !explicit && status >= 400 && p.DefaultTTL > 0 && !forbidden {
		lifetime = p.ErrorCachingMinTTL
	}
	shared := cc.public || cc.sMaxAge != absent || targeted
	if unkeyedCredentials(originReq, p.Key, varyFields(h)) && !shared {
		return no("credentials not in the cache key, and no public, s-maxage or CDN-Cache-Control")
	}
	if originReq.Header.Get("Authorization") != "" && !shared && !cc.mustRevalidate {
		return no("authorized request without public, s-maxage or must-revalidate")
	}
	if p.MinTTL <= 0 && cc.noStore {
		return no("no-store")
	}
	if p.MinTTL <= 0 && cc.private {
		return no("private")
	}
	if varyStar(h) {
		return no("Vary: *")
	}
	strip := append(slices.Clone(cc.privateFields), cc.noCacheFields...)
	if _, ok := h["Set-Cookie"]; ok && !slices.Contains(strip, "Set-Cookie") {
		return no("Set-Cookie")
	}
	d := Decision{Store: true, Lifetime: lifetime, Strip: strip}
	d.NoStale = cc.mustRevalidate || cc.proxyRevalidate || (forbidden && p.MinTTL <= 0)
	if !d.NoStale {
		d.StaleWhileRevalidate = p.capStale(cc.staleWhileRevalidate)
		d.StaleIfError = p.capStale(cc.staleIfError)
		if cc.sMaxAge == absent && !forbidden {
			// The operator's windows; s-maxage forbids serving stale
			// unless the origin itself granted it (RFC 9111 §5.2.2.10).
			d.StaleWhileRevalidate = max(d.StaleWhileRevalidate, p.StaleWhileRevalidate)
			d.StaleIfError = max(d.StaleIfError, p.StaleIfError)
		}
	}
	if lifetime <= 0 && h.Get("ETag") == "" && h.Get("Last-Modified") == "" && d.StaleIfError == 0 {
		return no("no freshness and no validator")
	}
	return d
}

// StaleStatus reports whether an origin status is an error that a stale
// entry may answer in place of (RFC 5861's 500, 502, 503, 504 unless the
// policy lists others).
func (p Policy) StaleStatus(status int) bool {
	if p.StaleOnStatus == nil {
		return status == 500 || status == 502 || status == 503 || status == 504
	}
	return slices.Contains(p.StaleOnStatus, status)
}

func varyStar(h http.Header) bool {
	for _, v := range h.Values("Vary") {
		for _, f := range fieldList(v) {
			if f == "*" {
				return true
			}
		}
	}
	return false
}

// capStale bounds a stale window by MaxTTL, so an origin cannot pin an
// object past what the operator allows for freshness itself.
func (p Policy) capStale(n int64) time.Duration {
	if n <= 0 {
		return 0
	}
	d := seconds(n)
	if p.MaxTTL > 0 && d > p.MaxTTL {
		d = p.MaxTTL
	}
	return d
}

// Lifetime is the freshness lifetime CloudFront gives a response with these
// headers, received at now (used when Date is missing):
//
//	no-cache, no-store or private: MinTTL (0 means "revalidate every time");
//	s-maxage, else max-age, else Expires−Date: clamped to [MinTTL, MaxTTL];
//	none of these: DefaultTTL.
//
// explicit reports whether the origin gave freshness itself.
func (p Policy) Lifetime(h http.Header, now time.Time) (lifetime time.Duration, explicit bool) {
	cc, targeted := responseCacheControl(h)
	l, e, _ := p.lifetime(cc, targeted, h, now)
	return l, e
}

// lifetime applies the TTL rules; a targeted field (RFC 9213) replaces
// Expires as well as Cache-Control.
func (p Policy) lifetime(cc cacheControl, targeted bool, h http.Header, now time.Time) (lifetime time.Duration, explicit, forbidden bool) {
	var origin time.Duration
	switch {
	case cc.sMaxAge != absent:
		origin, explicit = seconds(cc.sMaxAge), true
	case cc.maxAge != absent:
		origin, explicit = seconds(cc.maxAge), true
	case !targeted && len(h.Values("Expires")) > 0:
		explicit = true
		exp, ok := httpDate(h.Get("Expires"))
		if !ok || len(h.Values("Expires")) > 1 {
			break // invalid or repeated Expires means "already expired" (RFC 9111 §5.3)
		}
		date, ok := httpDate(h.Get("Date"))
		if !ok {
			date = now
		}
		origin = max(exp.Sub(date), 0)
	}
	if cc.noCache || cc.noStore || cc.private {
		return p.MinTTL, explicit, true
	}
	if !explicit {
		return p.DefaultTTL, false, false
	}
	return min(max(origin, p.MinTTL), p.MaxTTL), true, false
}
