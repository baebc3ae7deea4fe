// Package cache is edgegate's HTTP cache: RFC 9111 shared-cache semantics
// with CloudFront's cache-policy TTLs and keys, tiers of storage (memory,
// disk, a shared Redis), collapsed forwarding, large objects streamed while
// they fill, and cluster-wide invalidations. It knows nothing of the edge; a
// reverse proxy drives it.
//
// Recipe for a proxy, per viewer request routed to a behavior with policy p:
//
//	if !p.Cacheable(r) { forward as usual }
//	resp, err := c.Do(ctx, r, p, origin) // origin: func(ctx, req) (*http.Response, error)
//	err → 502/504 by cause; resp.Outcome.String() → x-edge-result-type / X-Cache
//	resp.Stream != nil → copy it (a Pass, a large object from disk or
//	  read along its fill), then Close it; a read error means cut the response
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
//   - Concurrent misses of a key collapse into one fetch, unless the key's
//     last response could not be stored (no-store, private, too large...):
//     then only one waiter could have it, so for 30s its viewers fetch side
//     by side (Varnish's hit-for-miss), until a response is stored again.
//
// Memory tier: otter v2 (github.com/maypok86/otter/v2). It bounds by weight
// (what an entry costs on the heap: its encoding, flat in two pointer-free
// blocks so that a full tier gives the collector little to trace, its key
// and otter's node), has per-entry expiry for our TTLs, and its
// W-TinyLFU admission keeps a hot set under a scan of one-hit objects better
// than plain LRU (hashicorp/golang-lru has no byte weigher; ristretto's cost
// is approximate and its Set may drop writes, which would make fills
// silently vanish). It is actively maintained, with no dependencies.
//
// Storage. Tiered is an ordered list of Stores (memory → disk → Redis, any
// subset); what a store can do beyond Get/Set/Delete is found by type
// assertion (Purger, Sizer, ObjectLimiter, StreamStore), as certmagic does
// for its Storage. Bodies up to Options.InlineSize (1 MiB) are read whole
// and stored in every tier; larger ones, up to the policy's MaxObjectSize
// (1 GiB), are written to the disk tier as they arrive while the first
// viewer, and every viewer who asks meanwhile, reads along from the file
// (one origin request, no body in memory: 20 viewers of a 2 GiB object,
// twice over, peak at 21 MiB RSS and 6.5 MiB heap, BenchmarkLargeObjectViewers).
//
// Disk tier: plain files with an in-memory index, as nginx and Varnish do,
// rather than an embedded store. Measured (BenchmarkDiskSet/Get here, the
// same loops over bbolt, the well-kept embedded B+tree, in a scratch module
// so as not to add a dependency) on this project's 2-core machine: 8 MiB
// objects are written 2x faster (201 vs 99 MB/s, fsynced) and read 2-3x
// faster (1.3-1.5 vs 2.7-4.6 ms, checksums verified), and only files can be read while they are
// still being written, by many readers, without one writer lock serialising
// every fill; 4 KiB objects are written at the same fsync-bound cost (4.5
// vs 2.9 ms) and read slower (24 vs 4 us), which the memory tier in front
// hides (small objects are promoted on their first disk hit). An LSM store
// (Pebble, Badger) would rewrite large values in compactions.
//
// Invalidations: durable before acknowledged (Redis, or the journal beside
// the disk tier), applied to every tier because every lookup checks them,
// and CloudFront's rules ('*' only at the end, 3,000 paths). The check walks
// a radix tree kept in pointer-free slices: 15 ns with no invalidation, 35-
// 50 ns with 10,000 of 3 paths each; a whole hit (BenchmarkCacheHitInvalidations,
// interleaved runs) costs 1-4% more with them, where the linear scan cost
// 30x. Records are kept as JSON in one byte slice, so that they give the
// garbage collector nothing to trace on every request.
package cache
