// Package cache is edgegate's HTTP cache: RFC 9111 shared-cache semantics
// with CloudFront's cache-policy TTLs and keys, a byte-bounded memory tier,
// a shared Redis tier, collapsed forwarding and cluster-wide invalidations.
// It knows nothing of the edge; a reverse proxy drives it.
//
// Recipe for a proxy, per viewer request routed to a behavior with policy p:
//
//	if !p.Cacheable(r) { forward as usual }
//	resp, err := c.Do(ctx, r, p, origin) // origin: func(ctx, req) (*http.Response, error)
//	err → 502/504 by cause; resp.Outcome.String() → x-edge-result-type / X-Cache
//	resp.Stream != nil → copy the origin body (Pass), then Close it
//	else write resp.Status, resp.Header, resp.Body (HEAD, Range, 304 done)
//
// The lower-level pieces are exported for a proxy that wants its own flow:
// Key and VaryKey, OriginRequest, Policy.Decide and Lifetime, NewEntry,
// Entry.Freshness, Conditional, Freshen, Respond, Group, and the stores.
//
// Semantics decisions, in brief (details on each function):
//   - TTLs follow CloudFront's table: s-maxage, else max-age, else Expires,
//     clamped to [MinTTL, MaxTTL]; none of them: DefaultTTL; no-cache,
//     no-store, private: MinTTL (so MinTTL > 0 overrides them, as at AWS).
//   - DefaultTTL 0 is a pure RFC 9111 cache with no heuristic freshness at
//     all (RFC 9111 §4.2.2 permits but never requires it): predictable, and
//     what an operator who set 0 asks for.
//   - Set-Cookie responses are not stored unless the origin names Set-Cookie
//     in private="..." or no-cache="..." (then stored without it).
//   - A 206 is never stored; 400, 413 and 431 never are either (errors a
//     crafted request provokes: cache-poisoned denial of service); a 5xx
//     only with the origin's explicit freshness.
//   - What reaches the origin is the origin request policy (Policy.Forward,
//     OriginRequest), separate from the key. Override headers
//     (X-Original-URL, X-Forwarded-Host, ...) are dropped unless named, and
//     a response to a request with credentials the key does not separate
//     (Authorization, an unkeyed cookie) is stored only when the origin
//     marks it shared (public, s-maxage, CDN-Cache-Control).
//   - Vary selects variants on the viewer's request; a Vary index at the
//     primary key names the fields, and its generation orphans old
//     variants when it is replaced or invalidated.
//   - CDN-Cache-Control and Edgegate-CDN-Cache-Control (RFC 9213) take
//     precedence over Cache-Control and Expires, the latter first.
//   - A non-error response to an unsafe method invalidates the target URI
//     and same-origin Location / Content-Location (RFC 9111 §4.4).
//   - Viewer Cache-Control / Pragma are ignored, as CloudFront does.
//
// Memory tier: otter v2 (github.com/maypok86/otter/v2). It bounds by weight
// (our byte count per entry), has per-entry expiry for our TTLs, and its
// W-TinyLFU admission keeps a hot set under a scan of one-hit objects better
// than plain LRU (hashicorp/golang-lru has no byte weigher; ristretto's cost
// is approximate and its Set may drop writes, which would make fills
// silently vanish). It is actively maintained, with no dependencies.
package cache
