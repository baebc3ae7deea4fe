package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/edgegate/edgegate/acme/redisstore"
	"github.com/edgegate/edgegate/cache"
	"github.com/edgegate/edgegate/edge/accesslog"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// cachePolicy maps a behavior's cache and origin request policies to the
// cache package's.
func cachePolicy(b *Behavior) cache.Policy {
	p := b.CachePolicy
	return cache.Policy{
		MinTTL:        p.MinTTL.D(),
		DefaultTTL:    p.DefaultTTL.D(),
		MaxTTL:        p.MaxTTL.D(),
		MaxObjectSize: int64(p.MaxObjectSize),
		Key: cache.KeyPolicy{
			QueryStrings:         p.Key.QueryStrings.selection(),
			Headers:              p.Key.Headers,
			Cookies:              p.Key.Cookies.selection(),
			AcceptEncodingGzip:   b.Compress,
			AcceptEncodingBrotli: b.Compress,
			AcceptEncodingZstd:   b.Compress,
		},
		Forward:              b.OriginRequestPolicy.forward(),
		ErrorCachingMinTTL:   p.ErrorCachingMinTTL.D(),
		StaleIfError:         p.StaleIfError.D(),
		StaleWhileRevalidate: p.StaleWhileRevalidate.D(),
		StaleOnStatus:        p.StaleOnStatus,
	}
}

// edgeCache is the node's cache: memory, then disk, then Redis shared by
// the cluster.
type edgeCache struct {
	c     *cache.Cache
	inv   *cache.Invalidator
	redis redis.UniversalClient
	disk  *cache.Disk
}

func newCache(cfg *Config, log zerolog.Logger) (*edgeCache, error) {
	cs := cfg.Edge.Cache
	mem, err := cache.NewMemory(cache.MemoryOptions{MaxBytes: int64(cs.Memory)})
	if err != nil {
		return nil, fmt.Errorf("edge cache memory tier: %w", err)
	}
	ec := &edgeCache{}
	tiers := []cache.Tier{{Name: "memory", Store: mem}}
	journal := ""
	if cs.Disk.Path != "" {
		if ec.disk, err = cache.NewDisk(cache.DiskOptions{Path: cs.Disk.Path, MaxBytes: int64(cs.Disk.Size), Logger: log}); err != nil {
			return nil, fmt.Errorf("edge cache disk tier: %w", err)
		}
		tiers = append(tiers, cache.Tier{Name: "disk", Store: ec.disk})
		go func(d *cache.Disk) {
			<-d.Loaded()
			bytes, n := d.Usage()
			log.Info().Str("path", cs.Disk.Path).Int("entries", n).Int64("bytes", bytes).Msg("cache: disk tier loaded")
		}(ec.disk)
		// Invalidations live beside the entries they govern, so that both
		// survive a restart together.
		journal = filepath.Join(cs.Disk.Path, "invalidations.journal")
	}
	if cs.Redis != "" {
		if ec.redis, err = redisstore.ParseURL(cs.Redis); err != nil {
			return nil, fmt.Errorf("edge cache redis %s: %w", cs.Redis, err)
		}
		honourDeadlines(ec.redis)
		tiers = append(tiers, cache.Tier{Name: "redis", Store: cache.NewRedis(ec.redis, cache.RedisOptions{}), Remote: true})
	}
	store := cache.NewTiered(cache.TieredOptions{Logger: log, Budget: cs.RedisTimeout.D()}, tiers...)
	ec.inv = cache.NewInvalidator(cache.InvalidatorOptions{Redis: ec.redis, Journal: journal, Node: cfg.Edge.Location, Logger: log})
	ec.c = cache.New(store, cache.Options{Logger: log, Invalidator: ec.inv})
	return ec, nil
}

// honourDeadlines makes the client apply a call's context deadline to its
// socket reads and writes (go-redis otherwise waits its own ReadTimeout,
// 3s, on a hung server), so the cache's budget is kept without goroutines
// left waiting. Set before the client's first use.
func honourDeadlines(c redis.UniversalClient) {
	switch o := c.(type) {
	case *redis.Client:
		o.Options().ContextTimeoutEnabled = true
	case *redis.ClusterClient:
		o.Options().ContextTimeoutEnabled = true
	}
}

// close releases the cache's resources after the last request.
func (ec *edgeCache) close() {
	ec.c.Stop()
	ec.c.Wait()
	if ec.redis != nil {
		ec.redis.Close()
	}
	if ec.disk != nil {
		ec.disk.Close()
	}
}

// serveCached answers a request of a caching behavior through the cache;
// the origin is reached through the same target (transport, failover) as
// uncached requests.
func (s *Server) serveCached(ex *exchange, r *http.Request, b *behavior) {
	f := &ex.fetch
	*f = cachedFetch{s: s, ex: ex, r: r, b: b, relay: interimRelay{w: ex}, lookupStart: time.Now()}
	resp, err := s.cache.c.Do(r.Context(), r, b.policy, f.origin)
	f.noteLookup()
	f.relay.stop() // from here on the header map is ours alone
	if err != nil {
		s.originError(ex, r, ex, err)
		return
	}
	result := accesslog.ResultType(resp.Outcome.String())
	if resp.Status >= 400 {
		result = accesslog.ResultError
	}
	ex.classify(result, result, detailedResult(resp.Outcome, result))
	h := ex.Header()
	spare := copyEndToEnd(h, resp.Header, edgeFields+1)
	s.edgeHeadersStatus(h, ex, result, cacheStatus(resp), spare)
	if resp.Stream == nil {
		if r.Method != http.MethodHead && !hasLength(h, len(resp.Body)) {
			h.Set("Content-Length", strconv.Itoa(len(resp.Body)))
		} // a HEAD keeps the stored object's Content-Length, set by cache.Respond
		ex.WriteHeader(resp.Status)
		if len(resp.Body) > 0 {
			_, _ = ex.Write(resp.Body)
		}
		return
	}
	body := &originBody{ReadCloser: resp.Stream, ex: ex}
	defer body.Close()
	ex.WriteHeader(resp.Status)
	if r.Method == http.MethodHead {
		return
	}
	buf := b.target.bufs.Get()
	defer b.target.bufs.Put(buf)
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, werr := ex.Write(buf[:n]); werr != nil {
				panic(http.ErrAbortHandler) // the viewer is gone: cut the connection
			}
			ex.Flush()
		}
		if rerr == io.EOF {
			return
		}
		if rerr != nil {
			panic(http.ErrAbortHandler) // the origin broke the body: cut the viewer's response too
		}
	}
}

// serveUncached proxies a request of a behavior that does not cache: the
// origin request policy still decides what reaches the origin.
func (s *Server) serveUncached(ex *exchange, r *http.Request, b *behavior) {
	out := cache.Forwarded(r.Context(), r, b.policy)
	// The edge builds X-Forwarded-For from the viewer's chain (setForwarding).
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		out.Header["X-Forwarded-For"] = xff
	}
	out.RequestURI = r.RequestURI
	if b.policy.Forward.Host {
		out = out.WithContext(context.WithValue(out.Context(), viewerHostKey{}, r.Host))
	}
	b.target.proxy.ServeHTTP(ex, out)
}

// viewerHostKey carries the viewer's Host to origin.prepare when the origin
// request policy forwards it (AllViewer).
type viewerHostKey struct{}

// cachedFetch is what serveCached's origin function needs: the request,
// its behavior and the interim-response relay. It lives in the exchange, so
// that a cache hit, which never calls the origin, does not pay an allocation
// for each closure and its captured variables.
type cachedFetch struct {
	s           *Server
	ex          *exchange
	r           *http.Request
	b           *behavior
	relay       interimRelay
	lookupStart time.Time
	asked       sync.Once
}

// noteLookup records, once, how long the cache took to look before it
// asked the origin or answered.
func (f *cachedFetch) noteLookup() {
	f.asked.Do(func() {
		f.ex.mu.Lock()
		f.ex.timing.lookup = time.Since(f.lookupStart)
		f.ex.mu.Unlock()
	})
}

// origin is the cache.Origin of a caching behavior: the behavior's target,
// with forwarding headers, interim responses relayed, and compression.
func (f *cachedFetch) origin(ctx context.Context, oreq *http.Request) (*http.Response, error) {
	s, r, b, ex := f.s, f.r, f.b, f.ex
	f.noteLookup() // the cache has looked and now asks the origin
	s.setForwarding(oreq.Header, r, ex)
	if b.policy.Forward.Host {
		ctx = context.WithValue(ctx, viewerHostKey{}, r.Host)
	}
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{Got1xxResponse: f.relay.send})
	resp, err := b.target.RoundTrip(oreq.WithContext(ctx))
	if err == nil {
		resp.Body = &markedBody{ReadCloser: resp.Body}
		if b.cfg.Compress {
			// The compressed variant is what the cache stores under the
			// key's Accept-Encoding: made once per fill, not per hit.
			resp, err = s.compress.compressResponse(resp, oreq.Header.Get("Accept-Encoding"))
		}
	}
	return resp, err
}

// interimRelay passes an origin's 1xx responses (103 Early Hints, ...) on
// to the viewer while the viewer's request is still waiting for the cache.
// A collapsed or background fetch may outlive that wait: stop makes the
// relay mute before the handler touches the response again.
type interimRelay struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	stopped bool
}

func (ir *interimRelay) send(code int, h textproto.MIMEHeader) error {
	ir.mu.Lock()
	defer ir.mu.Unlock()
	if ir.stopped || code == http.StatusSwitchingProtocols {
		return nil
	}
	// The interim response goes out with its own fields only; whatever the
	// header map held before is put back for the final response.
	dst := ir.w.Header()
	saved := make(http.Header, len(dst))
	for k, vs := range dst {
		saved[k] = vs
		delete(dst, k)
	}
	for k, vs := range h {
		if !isHopByHop(k) {
			dst[k] = vs
		}
	}
	ir.w.WriteHeader(code)
	for k := range dst {
		delete(dst, k)
	}
	for k, vs := range saved {
		dst[k] = vs
	}
	return nil
}

func (ir *interimRelay) stop() {
	ir.mu.Lock()
	ir.stopped = true
	ir.mu.Unlock()
}

// detailedResult is x-edge-detailed-result-type for a cached answer: the
// result itself, or which origin failure a stale copy stood in for.
func detailedResult(o cache.Outcome, result accesslog.ResultType) accesslog.ResultType {
	switch o {
	case cache.StaleConnectError:
		return accesslog.ResultStaleHitOriginConnectError
	case cache.StaleTimeout:
		return accesslog.ResultStaleHitOriginCommError
	case cache.StaleOriginStatus:
		return accesslog.ResultStaleHitOriginError
	}
	return result
}

// hasLength reports whether h says Content-Length n already, as
// cache.Respond sets it on a hit: setting it again would cost two
// allocations per response for the same value.
func hasLength(h http.Header, n int) bool {
	cl := h["Content-Length"]
	var buf [20]byte
	return len(cl) == 1 && cl[0] == string(strconv.AppendInt(buf[:0], int64(n), 10))
}

// copyEndToEnd copies response headers without hop-by-hop ones, including
// those the origin named in Connection. The values go into one new array
// (capped slices, as Header.Clone does, so that an Add to one cannot spill
// into the next): one allocation per response rather than one per header.
// The array has extra slots more, returned unused, for the fields the edge
// adds (see edgeHeadersStatus).
func copyEndToEnd(dst, src http.Header, extra int) (spare []string) {
	var named []string
	for _, v := range src["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			named = append(named, http.CanonicalHeaderKey(strings.TrimSpace(f)))
		}
	}
	values := make([]string, 0, len(src)+extra) // most fields have one value
	for k, vs := range src {
		if isHopByHop(k) || slices.Contains(named, k) {
			continue
		}
		start := len(values)
		values = append(values, vs...)
		dst[k] = values[start:len(values):len(values)]
	}
	return values[len(values):cap(values)]
}

// cacheStatus is the RFC 9211 Cache-Status value: "stored" only when the
// response was stored, else the reason in "detail".
func cacheStatus(resp *cache.Response) string {
	e := resp.Entry
	switch resp.Outcome {
	case cache.Hit:
		if e != nil {
			// Appended into a stack buffer: one allocation per hit, where
			// fmt.Sprintf took two.
			var buf [40]byte
			v := append(buf[:0], "edgegate; hit; ttl="...)
			v = strconv.AppendInt(v, int64((e.Lifetime - e.Age(time.Now())).Seconds()), 10)
			return string(v)
		}
		return "edgegate; hit"
	case cache.StaleHit:
		return "edgegate; hit; fwd=stale"
	case cache.StaleConnectError, cache.StaleTimeout, cache.StaleOriginStatus:
		// RFC 9211 detail: the same name as in the standard log.
		return "edgegate; hit; fwd=stale; detail=" + string(detailedResult(resp.Outcome, ""))
	case cache.RefreshHit:
		return "edgegate; fwd=stale; fwd-status=304; stored"
	}
	v := "edgegate; fwd=miss"
	if resp.Outcome == cache.Pass {
		v = "edgegate; fwd=uri-miss"
	}
	if resp.Stored {
		return v + "; stored"
	}
	if resp.Detail != "" {
		return v + "; detail=" + resp.Detail
	}
	return v
}

// invalidationsHandler serves POST /invalidations and GET /invalidations/ID.
func (s *Server) invalidationsHandler(mux *http.ServeMux) {
	mux.HandleFunc("POST /invalidations", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Paths []string `json:"paths"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
		dec.DisallowUnknownFields()
		err := dec.Decode(&req)
		if err == nil && dec.More() {
			// A second value after the first (found by fuzzing): refuse the
			// body rather than act on half of it.
			err = errors.New("more than one JSON value")
		}
		if err != nil {
			http.Error(w, fmt.Sprintf(`body: want {"paths": ["/images/*", "/index.html"]}: %v`, err), http.StatusBadRequest)
			return
		}
		inv, err := s.cache.c.Invalidate(r.Context(), req.Paths)
		switch {
		case errors.Is(err, cache.ErrInvalidPaths):
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		case err != nil:
			// Not durable (Redis, or the journal without Redis, did not take
			// it): applied here, but the caller must retry, so not a 4xx.
			s.log.Warn().Err(err).Msg("invalidation not durable; asked the caller to retry")
			w.Header().Set("Retry-After", "5")
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		s.log.Info().Str("invalidation", inv.ID).Strs("paths", inv.Paths).Msg("invalidation created")
		w.Header().Set("Location", "/invalidations/"+inv.ID)
		writeJSON(w, http.StatusCreated, inv)
	})
	mux.HandleFunc("GET /invalidations/{id}", func(w http.ResponseWriter, r *http.Request) {
		inv, err := s.cache.inv.Status(r.Context(), r.PathValue("id"))
		switch {
		case errors.Is(err, cache.ErrNotFound):
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		case err != nil: // Redis unreachable: ask again later
			w.Header().Set("Retry-After", "5")
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, http.StatusOK, inv)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// bodyReadError marks a failure while reading an origin's body, so that it
// is classified as the origin breaking the response midway (or going
// silent, for a timeout), whatever layer reports it.
type bodyReadError struct{ err error }

func (e *bodyReadError) Error() string { return "reading the origin's response body: " + e.err.Error() }
func (e *bodyReadError) Unwrap() error { return e.err }

type markedBody struct{ io.ReadCloser }

func (b *markedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = &bodyReadError{err}
	}
	return n, err
}
