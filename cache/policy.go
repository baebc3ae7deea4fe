package cache

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
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
}

// KeyPolicy names the query strings, headers and cookies in the cache key.
type KeyPolicy struct {
	// QueryStrings selects query parameters by name (case-sensitive).
	QueryStrings Selection
	// Headers lists request headers (case-insensitive) in the key.
	Headers []string
	// Cookies selects cookies by name (case-sensitive).
	Cookies Selection
	// AcceptEncodingGzip and AcceptEncodingBrotli put a normalised
	// Accept-Encoding ("br", "gzip", "br,gzip" or nothing) into the key and
	// the origin request, as CloudFront's EnableAcceptEncoding* settings do.
	AcceptEncodingGzip, AcceptEncodingBrotli bool
}

// Selection is CloudFront's none / all / allow-list choice. The zero value
// selects nothing.
type Selection struct {
	// All selects every name; Names is then ignored.
	All bool
	// Names is the allow-list used when All is false.
	Names []string
}

// SelectAll selects every name.
func SelectAll() Selection { return Selection{All: true} }

// SelectNames selects only the given names.
func SelectNames(names ...string) Selection { return Selection{Names: names} }

func (s Selection) has(name string) bool { return s.All || slices.Contains(s.Names, name) }

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
// malformed headers, an overloaded origin): storing them is cache-poisoned
// denial of service, whatever Cache-Control the origin put on them.
func neverStored(status int) bool {
	return status == 400 || status == 413 || status == 431 || (status >= 500 && status != 501)
}

// Decide reports whether the response to originReq (the request as forwarded
// to the origin, not the viewer's) may be stored, and its freshness. now is
// when the response was received; it stands in for a missing Date.
//
// The rules, in order:
//   - only GET (and OPTIONS with CacheOPTIONS) responses are stored, never a
//     HEAD response, a 206 or a 304, nor 400, 413, 431 or 5xx other than 501;
//   - other statuses outside RFC 9110's heuristically cacheable set need
//     explicit freshness (s-maxage, max-age, Expires) or public;
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
	cc := parseCacheControl(h)
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
	lifetime, explicit, forbidden := p.lifetime(cc, h, now)
	if !defaultCacheable[status] && !explicit && !cc.public {
		return no(fmt.Sprintf("status %d needs explicit freshness", status))
	}
	if originReq.Header.Get("Authorization") != "" && !cc.public && cc.sMaxAge == absent && !cc.mustRevalidate {
		return no("authorized request without public, s-maxage or must-revalidate")
	}
	if p.MinTTL <= 0 && cc.noStore {
		return no("no-store")
	}
	if p.MinTTL <= 0 && cc.private {
		return no("private")
	}
	if slices.Contains(h.Values("Vary"), "*") || varyStar(h) {
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
	}
	if lifetime <= 0 && h.Get("ETag") == "" && h.Get("Last-Modified") == "" && d.StaleIfError == 0 {
		return no("no freshness and no validator")
	}
	return d
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
	l, e, _ := p.lifetime(parseCacheControl(h), h, now)
	return l, e
}

func (p Policy) lifetime(cc cacheControl, h http.Header, now time.Time) (lifetime time.Duration, explicit, forbidden bool) {
	var origin time.Duration
	switch {
	case cc.sMaxAge != absent:
		origin, explicit = seconds(cc.sMaxAge), true
	case cc.maxAge != absent:
		origin, explicit = seconds(cc.maxAge), true
	case len(h.Values("Expires")) > 0:
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
