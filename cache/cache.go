package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Origin sends a request to the origin. The proxy supplies it (its pooled
// transport, Host rewrite, Via and X-Forwarded-For, failover); the cache
// calls it with the stripped request from OriginRequest, with conditional
// headers added when it revalidates.
type Origin func(ctx context.Context, req *http.Request) (*http.Response, error)

// Options configures a Cache.
type Options struct {
	// Logger receives store trouble; the zero Logger discards.
	Logger zerolog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// FetchTimeout bounds one collapsed origin fetch, body included;
	// default 60s.
	FetchTimeout time.Duration
	// MaxObjectSize, when set, caps every policy's MaxObjectSize: larger
	// bodies are streamed through unstored.
	MaxObjectSize int64
	// InlineSize is the largest body read into memory before it is stored
	// (and then stored in every tier that takes it); a larger one is
	// streamed into the store's streaming tier (disk) while viewers read
	// along. Default 1 MiB with a streaming tier; without one, the largest
	// entry the store takes (ObjectLimiter), else 64 MiB.
	InlineSize int64
	// KeepStale is how long an expired entry that has a validator stays
	// stored, to be revalidated with a conditional request. Default 1h.
	KeepStale time.Duration
	// Invalidator holds invalidations; nil creates an edge-local one.
	Invalidator *Invalidator
}

// Cache drives a Store with RFC 9111 / CloudFront semantics for a reverse
// proxy: lookup by key and Vary, freshness, revalidation, collapsed
// forwarding, stale serving and invalidations.
type Cache struct {
	store Store
	o     Options
	group Group[*fetchResult]
	// fills are large bodies being written, by store key: a viewer who
	// asks meanwhile reads along instead of fetching again.
	fills   sync.Map
	filling sync.WaitGroup
	// passes marks the keys that answer unstorable responses, which are
	// fetched without collapsing.
	passes *passMarks
}

// New builds a Cache over a store (typically a Tiered).
func New(store Store, o Options) *Cache {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = 60 * time.Second
	}
	if o.InlineSize <= 0 {
		o.InlineSize = inlineSize(store)
	}
	if o.KeepStale <= 0 {
		o.KeepStale = time.Hour
	}
	if o.Invalidator == nil {
		o.Invalidator = NewInvalidator(InvalidatorOptions{Logger: o.Logger, Now: o.Now})
	}
	c := &Cache{store: store, o: o, passes: newPassMarks()}
	c.group.Timeout = o.FetchTimeout
	o.Invalidator.addHook(c.purge)
	return c
}

// Invalidator is the cache's invalidation record, for Run and Status.
func (c *Cache) Invalidator() *Invalidator { return c.o.Invalidator }

// Invalidate invalidates path patterns on every edge sharing the
// Invalidator's Redis (see Invalidator.Invalidate).
func (c *Cache) Invalidate(ctx context.Context, patterns []string) (Invalidation, error) {
	return c.o.Invalidator.Invalidate(ctx, patterns)
}

// Stop abandons the large objects being filled (their viewers are gone at
// shutdown; nothing half-written is kept); call Wait after it.
func (c *Cache) Stop() {
	c.fills.Range(func(_, f any) bool {
		f.(*fill).cancel()
		return true
	})
}

// Wait blocks until background refreshes, fetches and writes have finished.
func (c *Cache) Wait() {
	c.group.Wait()
	c.filling.Wait()
	if w, ok := c.store.(interface{ Wait() }); ok {
		w.Wait() // background writes of the tiers
	}
}

// Outcome is how a request was answered.
type Outcome int

const (
	// Miss: fetched from the origin (and stored if allowed).
	Miss Outcome = iota
	// Hit: served fresh from the cache.
	Hit
	// RefreshHit: the stale entry was revalidated with a 304.
	RefreshHit
	// StaleHit: served stale under stale-while-revalidate while a refresh
	// runs in the background.
	StaleHit
	// Pass: the origin's response could not be stored and is streamed.
	Pass
	// StaleConnectError: served stale under stale-if-error because the
	// origin could not be reached or dropped the connection.
	StaleConnectError
	// StaleTimeout: served stale under stale-if-error because the origin
	// did not answer in time.
	StaleTimeout
	// StaleOriginStatus: served stale under stale-if-error because the
	// origin answered one of the policy's error statuses.
	StaleOriginStatus
)

// String is the CloudFront x-edge-result-type for the outcome.
func (o Outcome) String() string {
	switch o {
	case Hit, StaleHit, StaleConnectError, StaleTimeout, StaleOriginStatus:
		return "Hit"
	case RefreshHit:
		return "RefreshHit"
	default:
		return "Miss"
	}
}

// Response is what to send the viewer.
type Response struct {
	// Outcome is how the response was obtained, for logs and X-Cache.
	Outcome Outcome
	// Status and Header are what to send (Header with Age on cached ones).
	Status int
	Header http.Header
	// Body is the body to send, nil for HEAD; unset when Stream is set.
	Body []byte
	// Stream is the origin's body on Pass; the caller must Close it. Header
	// is then the origin's, hop-by-hop fields included.
	Stream io.ReadCloser
	// Entry is the cached entry the response came from, if any. On a
	// fresh hit from the memory tier its Header is Header above (the
	// entry was decoded for this request alone and its map reused): read
	// its fields, not its header.
	Entry *Entry
	// Stored reports, on a Miss or Pass, whether the origin's response was
	// stored (RFC 9211 "stored"); Detail says why not when it was not
	// (RFC 9211 "detail": too-large, no-store, private, ...).
	Stored bool
	Detail string
}

// fetchResult is what one collapsed fetch yields: an entry every waiter can
// use, or an unstorable response only one waiter may claim and stream.
type fetchResult struct {
	entry   *Entry
	outcome Outcome
	stream  *http.Response
	claimed atomic.Bool
	// timer closes an unclaimed stream after claimWindow; stopped when
	// claimed, so a claimed response is not kept alive by it.
	timer *time.Timer
	// fill is a large body being stored that every waiter reads along.
	fill *fill
	// stored and detail feed Response.Stored and Response.Detail.
	stored bool
	detail string
}

// claimWindow is how long an unstorable response waits for a waiter to
// claim it before its body is closed.
const claimWindow = 5 * time.Second

// Do answers a viewer request through the cache. Requests the policy does
// not cache are sent to the origin unchanged and streamed (Pass). Otherwise:
// a fresh entry is a Hit; one in its stale-while-revalidate window is served
// (StaleHit) while one background request refreshes it; a stale one is
// revalidated (RefreshHit on 304), or served under stale-if-error when the
// origin fails or answers 5xx; a miss fetches once for all concurrent
// viewers of the key. A viewer leaving does not cancel a fetch others wait
// for. An error means no response could be had from the origin (the proxy
// maps it to 502/504).
func (c *Cache) Do(ctx context.Context, r *http.Request, p Policy, origin Origin) (*Response, error) {
	if !p.Cacheable(r) {
		return c.forward(ctx, r, p, origin)
	}
	key := Key(r, p.Key)
	e, skey, vary := c.lookup(ctx, key, r.Header, p.Key)
	if e != nil {
		switch e.Freshness(c.o.Now()) {
		case Fresh:
			return c.respondOwn(e, r), nil
		case StaleRevalidateInBackground:
			oreq, pc := fillRequest(ctx, r, p, vary), p // pc: only this path pays for a heap copy
			c.group.Background(ctx, skey, func(fctx context.Context) (*fetchResult, error) {
				return c.fetch(fctx, pc, oreq, r.Header, e, key, origin)
			})
			return c.respond(e, r, StaleHit), nil
		}
	} else if r.Method == http.MethodHead {
		// A HEAD miss is forwarded as HEAD (the origin may answer it more
		// cheaply, and a HEAD must not cost a full GET); nothing is stored.
		resp, err := origin(ctx, OriginRequest(ctx, r, p))
		if err != nil {
			return nil, err
		}
		return c.pass(&fetchResult{stream: resp}, r), nil
	}
	oreq, pc := fillRequest(ctx, r, p, vary), p
	if f, ok := c.fills.Load(skey); ok {
		if resp, err := c.joinFill(ctx, f.(*fill), r, oreq, origin); err == nil {
			return resp, nil
		}
	}
	if e == nil && c.passes.marked(skey, c.o.Now()) {
		return c.fetchOwn(ctx, r, p, oreq, e, skey, key, origin)
	}
	res, _, err := c.group.Do(ctx, skey, func(fctx context.Context) (*fetchResult, error) {
		if e == nil {
			// A viewer paused between its lookup and here would otherwise
			// fetch again what a fetch that just ended has stored.
			if now, _, _ := c.lookup(fctx, key, r.Header, pc.Key); now != nil && now.Freshness(c.o.Now()) == Fresh {
				return &fetchResult{entry: now, outcome: Hit}, nil
			}
		}
		return c.fetch(fctx, pc, oreq, r.Header, e, key, origin)
	})
	if err != nil {
		return nil, err
	}
	if res.fill != nil {
		if resp, err := c.joinFill(ctx, res.fill, r, oreq, origin); err == nil {
			return resp, nil
		}
		return c.afterFill(ctx, r, p, origin)
	}
	if res.entry != nil {
		return c.respondFetched(res, r), nil
	}
	c.passes.mark(skey, c.o.Now())
	if res.claim() {
		return c.pass(res, r), nil
	}
	// Someone else streams the shared fetch's unstorable response (it may
	// be personal): fetch our own copy, uncollapsed.
	return c.fetchOwn(ctx, r, p, oreq, e, skey, key, origin)
}

// fetchOwn fetches for one viewer alone, uncollapsed: the key's shared
// response went to another viewer, or the key is marked as answering
// unstorable responses (passMarks). What the origin answers is judged and
// stored as by a collapsed fetch, and the key's mark follows the answer.
func (c *Cache) fetchOwn(ctx context.Context, r *http.Request, p Policy, oreq *http.Request, e *Entry, skey, key string, origin Origin) (*Response, error) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.o.FetchTimeout)
	defer cancel()
	res, err := c.fetchOne(fctx, p, oreq, r.Header, e, key, origin, false)
	if err != nil {
		return nil, err
	}
	if res.fill != nil {
		c.passes.unmark(skey)
		if resp, err := c.joinFill(ctx, res.fill, r, oreq, origin); err == nil {
			return resp, nil
		}
		return c.afterFill(ctx, r, p, origin)
	}
	if res.entry != nil {
		c.passes.unmark(skey)
		return c.respondFetched(res, r), nil
	}
	c.passes.mark(skey, c.o.Now())
	res.claim()
	return c.pass(res, r), nil
}

// forward sends a request the cache does not answer to the origin under the
// origin request policy, and applies RFC 9111 §4.4: a non-error response to
// an unsafe method invalidates what is stored for the target URI and for
// the same-origin URIs in Location and Content-Location.
func (c *Cache) forward(ctx context.Context, r *http.Request, p Policy, origin Origin) (*Response, error) {
	resp, err := origin(ctx, OriginRequest(ctx, r, p))
	if err != nil {
		return nil, err
	}
	if !safeMethod(r.Method) && resp.StatusCode < 400 {
		c.invalidateURIs(ctx, r, p, resp.Header)
	}
	return c.pass(&fetchResult{stream: resp}, r), nil
}

// safeMethod reports the methods RFC 9110 §9.2.1 defines as safe; any
// other, extension methods included, may change the target resource.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions || m == http.MethodTrace
}

func (c *Cache) invalidateURIs(ctx context.Context, r *http.Request, p Policy, h http.Header) {
	targets := []*url.URL{r.URL}
	for _, f := range []string{"Location", "Content-Location"} {
		v := h.Get(f)
		if v == "" {
			continue
		}
		u, err := r.URL.Parse(v)
		if err != nil {
			continue
		}
		if u.Host != "" && !strings.EqualFold(keyHost(u.Host), keyHost(r.Host)) {
			continue // another origin: not ours to invalidate (RFC 9111 §4.4)
		}
		if u.Scheme != "" && !strings.EqualFold(u.Scheme, requestScheme(r)) {
			continue
		}
		targets = append(targets, u)
	}
	for _, u := range targets {
		g := r.Clone(ctx)
		g.Method, g.URL = http.MethodGet, u
		// Deleting the primary key also drops the Vary index, which makes
		// every variant under it unreachable (see put).
		if err := c.store.Delete(ctx, Key(g, p.Key)); err != nil {
			c.logStoreErr(err, "invalidate")
		}
	}
}

func requestScheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	if r.URL.Scheme != "" {
		return r.URL.Scheme
	}
	return "http"
}

// fillRequest is the origin request that fills or refreshes the entry for
// a viewer request: a GET, also for a HEAD (Respond drops the body), with
// the variant's selecting fields. It is built off the hit path only.
func fillRequest(ctx context.Context, r *http.Request, p Policy, vary []string) *http.Request {
	oreq := OriginRequest(ctx, r, p)
	oreq.Method = http.MethodGet
	return withVaryFields(oreq, r, vary)
}

// withVaryFields makes a request to refresh or fill a variant carry the
// viewer's values of the fields the variant is selected on (RFC 9111 §4.1),
// even those the origin request policy would not forward.
func withVaryFields(oreq, viewer *http.Request, fields []string) *http.Request {
	if len(fields) == 0 {
		return oreq
	}
	out := oreq
	for _, f := range fields {
		vs := viewer.Header.Values(f)
		if len(vs) == 0 || len(oreq.Header.Values(f)) > 0 || slices.Contains(hopHeaders, f) || f == "Cookie" || f == "Accept-Encoding" {
			continue
		}
		if out == oreq {
			out = oreq.Clone(oreq.Context())
		}
		out.Header[f] = slices.Clone(vs)
	}
	return out
}

func (c *Cache) respond(e *Entry, r *http.Request, o Outcome) *Response {
	if e.Content != nil {
		resp, err := c.respondContent(e, r, o)
		if err == nil {
			return resp
		}
		// The file went between lookup and now (evicted or replaced): a
		// rare race, answered as an error the viewer may retry.
		c.o.Logger.Warn().Err(err).Str("path", e.Path).Msg("cache: stored body vanished")
		return &Response{Outcome: o, Status: http.StatusServiceUnavailable, Header: http.Header{"Retry-After": {"1"}}}
	}
	status, h, body := Respond(e, r, c.o.Now())
	return &Response{Outcome: o, Status: status, Header: h, Body: body, Entry: e}
}

// respondOwn answers a fresh hit from an entry this request alone holds
// (it goes nowhere else: no refresh, no other waiter), so that its decoded
// header can become the response's.
func (c *Cache) respondOwn(e *Entry, r *http.Request) *Response {
	if e.Content != nil || !e.ownHeader {
		return c.respond(e, r, Hit)
	}
	status, h, body := respondOwn(e, r, c.o.Now())
	return &Response{Outcome: Hit, Status: status, Header: h, Body: body, Entry: e}
}

// respondFetched answers from a fetch that yielded an entry.
func (c *Cache) respondFetched(res *fetchResult, r *http.Request) *Response {
	resp := c.respond(res.entry, r, res.outcome)
	resp.Stored, resp.Detail = res.stored, res.detail
	return resp
}

// joinFill answers a viewer from a fill: reading along, or, for a Range
// that starts far beyond what has arrived (a video player seeking), with
// that range fetched from the origin on its own, so it is answered at
// once rather than when the fill gets there.
func (c *Cache) joinFill(ctx context.Context, f *fill, r *http.Request, oreq *http.Request, origin Origin) (*Response, error) {
	if !f.rangeBeyond(r) {
		return c.respondFill(f, r)
	}
	req := oreq.Clone(ctx)
	req.Header.Set("Range", r.Header.Get("Range"))
	if ir := r.Header.Get("If-Range"); ir != "" {
		req.Header.Set("If-Range", ir)
	}
	resp, err := origin(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("origin fetch of a range: %w", err)
	}
	return c.pass(&fetchResult{stream: resp, detail: "range-beyond-fill"}, r), nil
}

// respondFill answers a viewer reading along a fill.
func (c *Cache) respondFill(f *fill, r *http.Request) (*Response, error) {
	resp, err := c.respondContent(f.entry, r, Miss)
	if err != nil {
		return nil, err
	}
	resp.Stored = true
	return resp, nil
}

// afterFill answers a viewer who came as a fill finished: the entry is in
// the store by now (or the fill failed and this fetches again, once).
func (c *Cache) afterFill(ctx context.Context, r *http.Request, p Policy, origin Origin) (*Response, error) {
	if ctx.Value(afterFillKey{}) != nil {
		return nil, errors.New("origin fetch: the object's fill failed before it could be read")
	}
	return c.Do(context.WithValue(ctx, afterFillKey{}, true), r, p, origin)
}

type afterFillKey struct{}

// claim takes an unstorable response for one waiter, stopping the timer
// that would otherwise close it (and keep it alive until then).
func (res *fetchResult) claim() bool {
	if !res.claimed.CompareAndSwap(false, true) {
		return false
	}
	if res.timer != nil {
		res.timer.Stop()
	}
	return true
}

// pass hands over an unstorable origin response; a HEAD viewer (whose miss
// was fetched with GET) gets no body. Edgegate's own targeted field is for
// the edge only.
func (c *Cache) pass(res *fetchResult, r *http.Request) *Response {
	resp := res.stream
	body := resp.Body
	if r.Method == http.MethodHead {
		body.Close()
		body = http.NoBody
	}
	resp.Header.Del(OwnTargetedField)
	return &Response{Outcome: Pass, Status: resp.StatusCode, Header: resp.Header, Stream: body, Detail: res.detail}
}

// lookup finds the entry for a viewer request, following a Vary index with
// the viewer's own header values, and drops an invalidated one. skey is the
// store key the entry lives (or would live) at, which also keys collapsed
// forwarding; vary lists the index's fields, if there is one.
func (c *Cache) lookup(ctx context.Context, key string, viewer http.Header, kp KeyPolicy) (e *Entry, skey string, vary []string) {
	skey = key
	e, err := c.store.Get(ctx, key)
	if err != nil {
		c.logStoreErr(err, "get")
		return nil, skey, nil
	}
	if e.Kind == KindVary {
		vary = e.VaryFields
		skey = variantKey(key, e, selectingHeader(viewer, kp, e.VaryFields))
		if e, err = c.store.Get(ctx, skey); err != nil {
			c.logStoreErr(err, "get variant")
			return nil, skey, vary
		}
	}
	if e.Kind != KindResponse {
		return nil, skey, vary
	}
	if c.o.Invalidator.Invalidated(e.Path, e.RequestTime) {
		_ = c.store.Delete(ctx, skey)
		return nil, skey, vary
	}
	return e, skey, vary
}

// selectingHeader is the viewer's header as variants are selected on it:
// as sent, but for Accept-Encoding, which the origin only ever sees
// normalised by the key policy (OriginRequest).
func selectingHeader(viewer http.Header, kp KeyPolicy, fields []string) http.Header {
	if !slices.Contains(fields, "Accept-Encoding") {
		return viewer
	}
	h := viewer.Clone()
	h.Set("Accept-Encoding", forwardedAcceptEncoding(viewer, kp))
	return h
}

// variantKey is the store key of the variant of a Vary index selected by a
// viewer's header. The index's generation is part of it, so that deleting
// or replacing the index orphans every old variant at once, with no list of
// variants to keep.
func variantKey(primary string, index *Entry, viewer http.Header) string {
	return VaryKey(string(appendString([]byte(primary+"g"), strconv.FormatUint(index.Generation, 36))), index.VaryFields, viewer)
}

func (c *Cache) logStoreErr(err error, op string) {
	if !errors.Is(err, ErrNotFound) && !errors.Is(err, context.Canceled) {
		c.o.Logger.Warn().Err(err).Str("op", op).Msg("cache: store failed")
	}
}

// fetch asks the origin once, revalidating stale when it has a validator.
// fctx bounds the exchange and the body read; an unstorable response
// outlives it, its body tied to its own context closed with the body.
func (c *Cache) fetch(fctx context.Context, p Policy, oreq *http.Request, viewer http.Header, stale *Entry, key string, origin Origin) (*fetchResult, error) {
	return c.fetchOne(fctx, p, oreq, viewer, stale, key, origin, true)
}

// fetchOne is fetch; shared says whether an unstorable response may go
// unclaimed (a collapsed or background fetch) and so needs the timer that
// closes it after claimWindow. A fetch for one viewer skips that timer.
func (c *Cache) fetchOne(fctx context.Context, p Policy, oreq *http.Request, viewer http.Header, stale *Entry, key string, origin Origin, shared bool) (*fetchResult, error) {
	octx, ocancel := context.WithCancel(context.WithoutCancel(fctx))
	stop := context.AfterFunc(fctx, ocancel)
	detached := false
	defer func() {
		if !detached {
			stop()
			ocancel()
		}
	}()
	req := oreq.Clone(octx)
	if stale != nil && stale.HasValidator() {
		Conditional(req, stale)
	}
	reqTime := c.o.Now()
	resp, err := origin(octx, req)
	respTime := c.o.Now()
	if err != nil {
		if stale != nil && stale.StaleIfErrorAllowed(respTime) {
			return &fetchResult{entry: stale, outcome: staleOutcome(fctx, err)}, nil
		}
		return nil, fmt.Errorf("origin fetch: %w", err)
	}
	if stale != nil && resp.StatusCode == http.StatusNotModified && req.Header.Get("If-None-Match")+req.Header.Get("If-Modified-Since") != "" {
		drain(resp.Body)
		n, d, ok := Freshen(stale, p, req, resp.Header, reqTime, respTime)
		if !ok {
			// The 304 names another response (RFC 9111 §4.3.4): ask again,
			// unconditionally.
			return c.fetchOne(fctx, p, oreq, viewer, nil, key, origin, shared)
		}
		if d.Store {
			c.put(octx, key, selectingHeader(viewer, p.Key, n.VaryFields), n)
		}
		return &fetchResult{entry: n, outcome: RefreshHit}, nil
	}
	if stale != nil && p.StaleStatus(resp.StatusCode) && stale.StaleIfErrorAllowed(respTime) {
		drain(resp.Body)
		return &fetchResult{entry: stale, outcome: StaleOriginStatus}, nil
	}
	d := p.Decide(req, resp.StatusCode, resp.Header, respTime)
	detail := detailFor(d.Reason)
	if d.Store {
		sr := storeRequest{key: key, viewer: viewer, kp: p.Key, req: req, resp: resp, d: d, reqTime: reqTime, respTime: respTime, limit: c.maxObjectSize(p), cancel: ocancel}
		res, err := c.storeBody(fctx, octx, &sr)
		if err != nil {
			drain(resp.Body)
			return nil, err // a partial body is never stored
		}
		if res != nil {
			if res.fill != nil {
				detached = true // the fill ends the exchange when the body is in
				stop()
				go res.fill.run(octx, resp.Body, sr.prefix, c.o.FetchTimeout, sr.limit)
			} else {
				drain(resp.Body)
			}
			return res, nil
		}
		detail = sr.detail
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(sr.prefix), resp.Body), resp.Body}
	}
	// Unstorable: hand the live response to one waiter.
	if !stop() {
		resp.Body.Close()
		return nil, fmt.Errorf("origin fetch: %w", fctx.Err())
	}
	detached = true
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: ocancel}
	res := &fetchResult{stream: resp, outcome: Pass, detail: detail}
	if shared {
		res.timer = time.AfterFunc(claimWindow, func() {
			if res.claimed.CompareAndSwap(false, true) {
				resp.Body.Close()
			}
		})
	}
	return res, nil
}

// staleOutcome tells a timeout (the origin's own, or the fetch's deadline,
// which cancels the origin request) from a connection failure.
func staleOutcome(fctx context.Context, err error) Outcome {
	var ne net.Error
	if errors.Is(fctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return StaleTimeout
	}
	return StaleConnectError
}

// put stores an entry under its key, or, when it carries Vary, under the
// variant key selected by the viewer's header with a Vary index at the
// primary key (see storeKey), and reports whether some tier stored it and,
// if not, why (an RFC 9211 detail).
func (c *Cache) put(ctx context.Context, key string, viewer http.Header, e *Entry) (stored bool, detail string) {
	ttl := e.StorageTTL(c.o.Now(), c.o.KeepStale)
	if ttl <= 0 {
		return false, "no-freshness"
	}
	key = c.storeKey(ctx, key, viewer, e, ttl)
	err := c.store.Set(ctx, key, e, ttl)
	switch {
	case err == nil:
		return true, ""
	case errors.Is(err, ErrTooLarge):
		return false, "too-large"
	default:
		c.logStoreErr(err, "set")
		return false, "store-error"
	}
}

// storeKey is the key an entry goes to: its own, or, when it carries
// Vary, the variant key selected by the viewer's header, with the Vary
// index written at the primary key. An index whose fields are unchanged
// keeps its generation, so the variants of one URL live side by side; its
// lifetime is stretched to the longest-lived variant.
func (c *Cache) storeKey(ctx context.Context, key string, viewer http.Header, e *Entry, ttl time.Duration) string {
	if len(e.VaryFields) == 0 {
		return key
	}
	now := c.o.Now()
	idx, err := c.store.Get(ctx, key)
	same := err == nil && idx.Kind == KindVary && slices.Equal(idx.VaryFields, e.VaryFields)
	if !same || idx.Expires.Before(now.Add(ttl)) {
		gen := rand.Uint64()
		if same {
			gen = idx.Generation
		}
		idx = &Entry{Kind: KindVary, Status: http.StatusOK, Header: http.Header{}, VaryFields: e.VaryFields,
			Path: e.Path, RequestTime: e.RequestTime, ResponseTime: e.ResponseTime, Lifetime: ttl, Generation: gen}
		c.logStoreErr(c.store.Set(ctx, key, idx, ttl), "set vary index")
	}
	return variantKey(key, idx, viewer)
}

// purge drops the entries an invalidation covers from the tiers that can
// (Purger), in the background; it only frees space early, since lookups
// check invalidations anyway.
func (c *Cache) purge(inv Invalidation) {
	p, ok := c.store.(Purger)
	if !ok {
		return
	}
	go p.DeleteFunc(func(_ string, e *Entry) bool { return c.o.Invalidator.Covers(inv, e.Path, e.RequestTime) })
}

func drain(b io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(b, 64<<10))
	b.Close()
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
