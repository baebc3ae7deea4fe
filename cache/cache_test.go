package cache

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgegate/edgegate/internal/testredis"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// origin is an httptest server with a switchable handler and a counter.
type origin struct {
	srv     *httptest.Server
	calls   atomic.Int64
	mu      sync.Mutex
	handler http.HandlerFunc
	last    http.Header
}

func newOrigin(t testing.TB, h http.HandlerFunc) *origin {
	o := &origin{handler: h}
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.calls.Add(1)
		o.mu.Lock()
		h := o.handler
		o.last = r.Header.Clone()
		o.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(o.srv.Close)
	return o
}

func (o *origin) set(h http.HandlerFunc) {
	o.mu.Lock()
	o.handler = h
	o.mu.Unlock()
}

func (o *origin) lastHeader() http.Header {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.last
}

func (o *origin) fetch(ctx context.Context, req *http.Request) (*http.Response, error) {
	req.URL.Scheme, req.URL.Host = "http", o.srv.Listener.Addr().String()
	return o.srv.Client().Transport.RoundTrip(req)
}

func newCache(t testing.TB, clk *clock, store Store) *Cache {
	t.Helper()
	if store == nil {
		store = newMemory(t, 8<<20)
	}
	c := New(store, Options{Now: clk.Now, FetchTimeout: 5 * time.Second, MaxObjectSize: 1 << 20})
	t.Cleanup(c.Wait)
	return c
}

func do(t testing.TB, c *Cache, p Policy, o *origin, method, target string, kv ...string) (*Response, string) {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	r.Header = hdr(kv...)
	resp, err := c.Do(context.Background(), r, p, o.fetch)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	if resp.Stream != nil {
		b, _ := io.ReadAll(resp.Stream)
		resp.Stream.Close()
		return resp, string(b)
	}
	return resp, string(resp.Body)
}

var pol = Policy{DefaultTTL: time.Hour, MaxTTL: 24 * time.Hour, Key: KeyPolicy{QueryStrings: SelectAll()}}

func TestDoMissHitHead(t *testing.T) {
	clk := &clock{t: t0}
	var heads atomic.Int64
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			heads.Add(1)
		}
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Length", "10")
		fmt.Fprint(w, "body of "+r.URL.Path)
	})
	c := newCache(t, clk, nil)
	// A HEAD miss is forwarded as HEAD, not turned into a GET.
	resp, body := do(t, c, pol, o, "HEAD", "https://e.com/a")
	if resp.Outcome != Pass || body != "" || resp.Header.Get("Content-Length") != "10" || heads.Load() != 1 {
		t.Fatalf("HEAD miss: %v %q %v, origin got %d HEADs", resp.Outcome, body, resp.Header, heads.Load())
	}
	resp, body = do(t, c, pol, o, "GET", "https://e.com/a")
	if resp.Outcome != Miss || body != "body of /a" {
		t.Fatalf("GET: %v %q", resp.Outcome, body)
	}
	clk.Add(10 * time.Second)
	// A HEAD hit has the stored Content-Length, not that of its empty body.
	resp, body = do(t, c, pol, o, "HEAD", "https://e.com/a")
	if resp.Outcome != Hit || body != "" || resp.Header.Get("Content-Length") != "10" || resp.Header.Get("Age") != "10" {
		t.Fatalf("HEAD hit: %v %q %v", resp.Outcome, body, resp.Header)
	}
	resp, body = do(t, c, pol, o, "GET", "https://e.com/a")
	if resp.Outcome != Hit || body != "body of /a" || resp.Header.Get("Age") != "10" {
		t.Fatalf("GET after HEAD: %v %q age %q", resp.Outcome, body, resp.Header.Get("Age"))
	}
	resp, _ = do(t, c, pol, o, "GET", "https://e.com/a", "Range", "bytes=0-3")
	if resp.Outcome != Hit || resp.Status != 206 || string(resp.Body) != "body" {
		t.Fatalf("range hit: %d %q", resp.Status, resp.Body)
	}
	if n := o.calls.Load(); n != 2 {
		t.Fatalf("%d origin calls", n)
	}
	resp, _ = do(t, c, pol, o, "POST", "https://e.com/a")
	if resp.Outcome != Pass {
		t.Fatalf("POST: %v", resp.Outcome)
	}
}

func TestDoCollapsedForwarding(t *testing.T) {
	clk := &clock{t: t0}
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprint(w, "shared")
	})
	c := newCache(t, clk, nil)
	// Cleanups run last-registered first: this one runs before the
	// origin's and the cache's (which wait for blocked handlers and
	// fetches), so a failure below fails instead of hanging the package.
	t.Cleanup(unblock)
	var wg sync.WaitGroup
	const viewers = 20
	for range viewers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, body := do(t, c, pol, o, "GET", "https://e.com/hot"); body != "shared" || resp.Outcome != Miss {
				t.Errorf("viewer of the collapsed fetch: %v %q", resp.Outcome, body)
			}
		}()
	}
	waitFor(t, "all viewers waiting on the one origin fetch", func() bool {
		return c.group.Waiting() == viewers || o.calls.Load() > 1
	})
	unblock()
	wg.Wait()
	if n := o.calls.Load(); n != 1 {
		t.Fatalf("%d origin fetches for %d concurrent misses, want 1 (collapsed forwarding)", n, viewers)
	}
}

// pausingStore pauses the first Get after pause is armed, once it has
// answered from the store, until resume is closed: a viewer stopped between
// its cache lookup and its fetch.
type pausingStore struct {
	Store
	armed          atomic.Bool
	paused, resume chan struct{}
}

func (s *pausingStore) Get(ctx context.Context, key string) (*Entry, error) {
	e, err := s.Store.Get(ctx, key)
	if s.armed.CompareAndSwap(true, false) {
		close(s.paused)
		<-s.resume
	}
	return e, err
}

// TestDoPausedViewerNoSecondFetch: viewer B misses, pauses, and reaches the
// fetch only after viewer A's fetch stored the response. B is answered from
// the store, not by a second origin request (under load, 1,000 viewers of
// one key made two).
func TestDoPausedViewerNoSecondFetch(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprint(w, "once")
	})
	st := &pausingStore{Store: newMemory(t, 8<<20), paused: make(chan struct{}), resume: make(chan struct{})}
	c := newCache(t, &clock{t: t0}, st)
	var once sync.Once
	resume := func() { once.Do(func() { close(st.resume) }) }
	t.Cleanup(resume)
	st.armed.Store(true)
	type answer struct {
		resp *Response
		err  error
	}
	b := make(chan answer, 1)
	go func() {
		resp, err := c.Do(context.Background(), httptest.NewRequest("GET", "https://e.com/p", nil), pol, o.fetch)
		b <- answer{resp, err}
	}()
	<-st.paused // B has looked up and missed
	if resp, body := do(t, c, pol, o, "GET", "https://e.com/p"); resp.Outcome != Miss || body != "once" {
		t.Fatalf("viewer A: %v %q", resp.Outcome, body)
	}
	resume()
	got := <-b
	if got.err != nil || got.resp.Stream != nil || string(got.resp.Body) != "once" {
		t.Fatalf("viewer B: %+v %v", got.resp, got.err)
	}
	if n := o.calls.Load(); n != 1 {
		t.Fatalf("%d origin requests, want 1: the viewer paused after its lookup fetched again what was stored", n)
	}
}

func TestDoRevalidate(t *testing.T) {
	clk := &clock{t: t0}
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=10")
		w.Header().Set("ETag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.Header().Set("X-Refreshed", "yes")
			w.WriteHeader(http.StatusNotModified)
			return
		}
		fmt.Fprint(w, "v1 body")
	})
	c := newCache(t, clk, nil)
	do(t, c, pol, o, "GET", "https://e.com/r", "If-None-Match", `"viewer-junk"`)
	if o.lastHeader().Get("If-None-Match") != "" {
		t.Fatal("viewer's conditional header reached the origin")
	}
	clk.Add(20 * time.Second)
	resp, body := do(t, c, pol, o, "GET", "https://e.com/r")
	if resp.Outcome != RefreshHit || body != "v1 body" || resp.Header.Get("X-Refreshed") != "yes" || resp.Header.Get("Age") != "0" {
		t.Fatalf("revalidation: %v %q %v", resp.Outcome, body, resp.Header)
	}
	resp, _ = do(t, c, pol, o, "GET", "https://e.com/r")
	if resp.Outcome != Hit || o.calls.Load() != 2 {
		t.Fatalf("after refresh: %v, %d calls", resp.Outcome, o.calls.Load())
	}
	// The origin changed its object: 200 replaces the entry.
	clk.Add(20 * time.Second)
	o.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=10")
		w.Header().Set("ETag", `"v2"`)
		fmt.Fprint(w, "v2 body")
	})
	if resp, body = do(t, c, pol, o, "GET", "https://e.com/r"); resp.Outcome != Miss || body != "v2 body" {
		t.Fatalf("changed object: %v %q", resp.Outcome, body)
	}
	// A viewer's own conditional request is answered from the cache.
	if resp, _ = do(t, c, pol, o, "GET", "https://e.com/r", "If-None-Match", `"v2"`); resp.Status != 304 || resp.Outcome != Hit {
		t.Fatalf("viewer conditional: %d %v", resp.Status, resp.Outcome)
	}
}

func TestDoStaleWhileRevalidate(t *testing.T) {
	clk := &clock{t: t0}
	var version atomic.Int64
	refresh := make(chan struct{})
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		v := version.Add(1)
		if v == 2 {
			<-refresh // hold the background refresh until the stale hits are checked
		}
		w.Header().Set("Cache-Control", "max-age=10, stale-while-revalidate=60")
		fmt.Fprintf(w, "v%d", v)
	})
	c := newCache(t, clk, nil)
	do(t, c, pol, o, "GET", "https://e.com/s")
	clk.Add(30 * time.Second)
	for range 5 {
		if resp, body := do(t, c, pol, o, "GET", "https://e.com/s"); resp.Outcome != StaleHit || body != "v1" {
			t.Fatalf("stale-while-revalidate: %v %q", resp.Outcome, body)
		}
	}
	close(refresh)
	c.Wait()
	if resp, body := do(t, c, pol, o, "GET", "https://e.com/s"); resp.Outcome != Hit || body != "v2" {
		t.Fatalf("after background refresh: %v %q", resp.Outcome, body)
	}
	if n := o.calls.Load(); n != 2 {
		t.Fatalf("%d origin calls: the refresh must run once", n)
	}
	// Past the window: a foreground fetch.
	clk.Add(2 * time.Minute)
	if resp, body := do(t, c, pol, o, "GET", "https://e.com/s"); resp.Outcome != Miss || body != "v3" {
		t.Fatalf("past the window: %v %q", resp.Outcome, body)
	}
}

func TestDoStaleIfError(t *testing.T) {
	clk := &clock{t: t0}
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=10, stale-if-error=60")
		fmt.Fprint(w, "good")
	})
	c := newCache(t, clk, nil)
	do(t, c, pol, o, "GET", "https://e.com/e")
	clk.Add(30 * time.Second)
	o.set(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
	if resp, body := do(t, c, pol, o, "GET", "https://e.com/e"); resp.Outcome != StaleOriginStatus || body != "good" {
		t.Fatalf("origin 503: %v %q", resp.Outcome, body)
	}
	o.set(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(501) })
	if _, body := do(t, c, pol, o, "GET", "https://e.com/e"); body == "good" {
		t.Fatal("501 is not an error status that stale may answer for")
	}
	o.srv.Close() // connection refused
	if resp, body := do(t, c, pol, o, "GET", "https://e.com/e"); resp.Outcome != StaleConnectError || body != "good" {
		t.Fatalf("origin down: %v %q", resp.Outcome, body)
	}
	clk.Add(time.Minute)
	r := httptest.NewRequest("GET", "https://e.com/e", nil)
	if _, err := c.Do(context.Background(), r, pol, o.fetch); err == nil {
		t.Fatal("past stale-if-error the origin failure must surface")
	}
}

// TestDoUnkeyedHeadersCannotPoison: the origin reflects forwarding headers
// into its response (a classic poisoning setup); they never reach it.
func TestDoUnkeyedHeadersCannotPoison(t *testing.T) {
	clk := &clock{t: t0}
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		host := r.Header.Get("X-Forwarded-Host")
		if host == "" {
			host = "e.com"
		}
		path := r.URL.Path
		if u := r.Header.Get("X-Original-URL"); u != "" {
			path = u
		}
		fmt.Fprintf(w, "<script src=%s://%s/app.js></script> %s %s %s", r.Header.Get("X-Forwarded-Scheme")+r.Header.Get("X-Forwarded-Proto"),
			host, path, r.Header.Get("X-HTTP-Method-Override"), r.URL.Query().Get("utm"))
	})
	c := newCache(t, clk, nil)
	p := Policy{DefaultTTL: time.Hour, MaxTTL: time.Hour, Key: KeyPolicy{QueryStrings: SelectNames("v")}}
	_, attacked := do(t, c, p, o, "GET", "https://e.com/page?v=1&utm=evil",
		"X-Forwarded-Host", "evil.example", "X-Original-URL", "/admin", "X-Forwarded-Scheme", "http",
		"X-Forwarded-Proto", "javascript", "X-HTTP-Method-Override", "DELETE", "X-Host", "evil.example")
	resp, victim := do(t, c, p, o, "GET", "https://e.com/page?v=1")
	if resp.Outcome != Hit || victim != attacked {
		t.Fatalf("victim should share the attacker's entry: %v", resp.Outcome)
	}
	for _, bad := range []string{"evil", "admin", "http", "javascript", "DELETE"} {
		if strings.Contains(victim, bad) {
			t.Fatalf("poisoned with %q: %s", bad, victim)
		}
	}
}

func TestDoVary(t *testing.T) {
	clk := &clock{t: t0}
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Vary", "Accept-Encoding, Accept-Language")
		w.Header().Set("ETag", `"`+r.Header.Get("Accept-Language")+`"`)
		fmt.Fprintf(w, "enc=%s lang=%s", r.Header.Get("Accept-Encoding"), r.Header.Get("Accept-Language"))
	})
	c := newCache(t, clk, nil)
	p := pol
	p.Key.AcceptEncodingGzip = true
	p.Forward = ForwardAll()
	_, gz := do(t, c, p, o, "GET", "https://e.com/v", "Accept-Encoding", "gzip, br", "Accept-Language", "fr, en;q=0.5")
	_, plain := do(t, c, p, o, "GET", "https://e.com/v")
	_, de := do(t, c, p, o, "GET", "https://e.com/v", "Accept-Language", "de")
	if gz != "enc=gzip lang=fr, en;q=0.5" || plain != "enc=identity lang=" || de != "enc=identity lang=de" {
		t.Fatalf("variants %q %q %q", gz, plain, de)
	}
	// Three variants side by side, each selected on the viewer's request,
	// normalised: whitespace, field lines, case of the Accept fields, and
	// Accept-Encoding as the key normalises it.
	for _, tc := range []struct {
		kv   []string
		want string
	}{
		{[]string{"Accept-Encoding", "gzip", "Accept-Language", "FR,en ; q=0.5"}, gz},
		{nil, plain},
		{[]string{"Accept-Language", "de"}, de},
		{[]string{"Accept-Encoding", "deflate", "Accept-Language", "de"}, de},
	} {
		if resp, body := do(t, c, p, o, "GET", "https://e.com/v", tc.kv...); resp.Outcome != Hit || body != tc.want {
			t.Errorf("%v: %v %q, want a hit on %q", tc.kv, resp.Outcome, body, tc.want)
		}
	}
	if n := o.calls.Load(); n != 3 {
		t.Errorf("%d origin calls for three variants", n)
	}
	// A revalidation carries the header the variant was selected on, even
	// when the origin request policy would not forward it.
	clk.Add(2 * time.Minute)
	p.Forward = OriginRequestPolicy{}
	if resp, body := do(t, c, p, o, "GET", "https://e.com/v", "Accept-Language", "de"); resp.Outcome != Miss || body != de {
		t.Errorf("after expiry: %v %q", resp.Outcome, body)
	}
	if got := o.lastHeader().Get("Accept-Language"); got != "de" {
		t.Errorf("revalidation sent Accept-Language %q", got)
	}
	o.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Vary", "*")
		w.Header().Set("Cache-Control", "max-age=60")
	})
	do(t, c, p, o, "GET", "https://e.com/star")
	if resp, _ := do(t, c, p, o, "GET", "https://e.com/star"); resp.Outcome == Hit {
		t.Fatal("Vary: * was served from cache")
	}
}

// TestDoSetCookieNotShared: concurrent viewers of an uncacheable
// personalised response each get their own, never another's cookie.
func TestDoSetCookieNotShared(t *testing.T) {
	clk := &clock{t: t0}
	var n atomic.Int64
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			<-release
		}
		w.Header().Set("Set-Cookie", fmt.Sprintf("session=%d", n.Load()))
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprint(w, "hi")
	})
	c := newCache(t, clk, nil)
	t.Cleanup(unblock) // runs before the origin's and cache's: a failure must not hang
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]bool{}
	const viewers = 5
	for range viewers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, body := do(t, c, pol, o, "GET", "https://e.com/login")
			mu.Lock()
			defer mu.Unlock()
			if resp.Outcome != Pass || body != "hi" {
				t.Errorf("%v %q", resp.Outcome, body)
			}
			if ck := resp.Header.Get("Set-Cookie"); seen[ck] {
				t.Errorf("cookie %s went to two viewers", ck)
			} else {
				seen[ck] = true
			}
		}()
	}
	// Every viewer joins the first (blocked) fetch, so each must learn the
	// shared response is personal and fetch its own.
	waitFor(t, "all viewers waiting on the first fetch", func() bool { return n.Load() >= 1 && c.group.Waiting() == viewers })
	unblock()
	wg.Wait()
	if resp, _ := do(t, c, pol, o, "GET", "https://e.com/login"); resp.Outcome != Pass {
		t.Fatal("Set-Cookie response was stored")
	}
	if resp, body := do(t, c, pol, o, "HEAD", "https://e.com/login"); resp.Outcome != Pass || body != "" {
		t.Fatalf("HEAD pass: %v %q", resp.Outcome, body)
	}
}

func TestDoPartialAndLargeBodiesNotStored(t *testing.T) {
	clk := &clock{t: t0}
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/large" {
			w.Header().Set("Cache-Control", "max-age=60")
			_, _ = w.Write(make([]byte, 2<<20))
			return
		}
		conn, buf, _ := w.(http.Hijacker).Hijack()
		defer conn.Close()
		fmt.Fprint(buf, "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 100\r\n\r\n"+strings.Repeat("x", 50))
		_ = buf.Flush()
	})
	c := newCache(t, clk, nil)
	for range 2 {
		r := httptest.NewRequest("GET", "https://e.com/partial", nil)
		if _, err := c.Do(context.Background(), r, pol, o.fetch); err == nil {
			t.Fatal("a cut body was accepted")
		}
	}
	if n := o.calls.Load(); n != 2 {
		t.Fatalf("%d calls: the partial body must not be stored", n)
	}
	for range 2 {
		resp, body := do(t, c, pol, o, "GET", "https://e.com/large")
		if resp.Outcome != Pass || len(body) != 2<<20 {
			t.Fatalf("large: %v %d", resp.Outcome, len(body))
		}
	}
}

func TestDoInvalidate(t *testing.T) {
	clk := &clock{t: t0}
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		fmt.Fprint(w, r.URL.Path)
	})
	c := newCache(t, clk, nil)
	do(t, c, pol, o, "GET", "https://e.com/images/a.png")
	do(t, c, pol, o, "GET", "https://e.com/css/a.css")
	clk.Add(time.Minute)
	inv, err := c.Invalidate(context.Background(), []string{"/images/*"})
	if err != nil || inv.Status != Completed {
		t.Fatal(inv, err)
	}
	clk.Add(2 * time.Second) // past the clock-skew allowance
	if resp, _ := do(t, c, pol, o, "GET", "https://e.com/images/a.png"); resp.Outcome != Miss {
		t.Fatalf("invalidated object: %v", resp.Outcome)
	}
	if resp, _ := do(t, c, pol, o, "GET", "https://e.com/images/a.png"); resp.Outcome != Hit {
		t.Fatalf("refetched object: %v", resp.Outcome)
	}
	if resp, _ := do(t, c, pol, o, "GET", "https://e.com/css/a.css"); resp.Outcome != Hit {
		t.Fatalf("untouched object: %v", resp.Outcome)
	}
}

// TestDoTwoEdges: a fill on one edge is a Hit on the other through Redis,
// and an invalidation on one edge applies on both.
func TestDoTwoEdges(t *testing.T) {
	srv := testredis.Start(t)
	clk := &clock{t: time.Now()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		fmt.Fprint(w, strings.Repeat("big", 1000))
	})
	edge := func(node string) *Cache {
		// The log is polled only at start: what reaches a running edge
		// came by Pub/Sub, within waitFor's bound.
		inv := NewInvalidator(InvalidatorOptions{Redis: redisClient(t, srv), Node: node, Now: clk.Now, Heartbeat: 100 * time.Millisecond, PollInterval: time.Hour})
		go inv.Run(ctx)
		c := New(newTiered(t, srv, nil), Options{Now: clk.Now, Invalidator: inv})
		t.Cleanup(c.Wait)
		return c
	}
	a, b := edge("a"), edge("b")
	if resp, _ := do(t, a, pol, o, "GET", "https://e.com/x"); resp.Outcome != Miss {
		t.Fatal(resp.Outcome)
	}
	if resp, body := do(t, b, pol, o, "GET", "https://e.com/x"); resp.Outcome != Hit || len(body) != 3000 {
		t.Fatalf("edge b: %v", resp.Outcome)
	}
	clk.Add(time.Minute)
	if _, err := a.Invalidate(ctx, []string{"/x"}); err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * time.Second)
	waitFor(t, "edge b applies the invalidation", func() bool {
		return b.Invalidator().Invalidated("/x", clk.Now().Add(-10*time.Second))
	})
	if resp, _ := do(t, b, pol, o, "GET", "https://e.com/x"); resp.Outcome != Miss {
		t.Fatalf("edge b after invalidation: %v", resp.Outcome)
	}
}

// TestPassReleasedWhenClaimed: an unstorable response handed to a viewer
// is no longer held by the timer that closes unclaimed ones (which kept
// every such response alive for claimWindow).
func TestPassReleasedWhenClaimed(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprint(w, "personal")
	})
	c := newCache(t, &clock{t: t0}, nil)
	r := httptest.NewRequest(http.MethodGet, "https://e.com/me", nil)
	res, err := c.fetch(context.Background(), pol, OriginRequest(context.Background(), r, pol), r.Header, nil, Key(r, pol.Key), o.fetch)
	if err != nil || res.stream == nil || res.timer == nil {
		t.Fatalf("%v %+v", err, res)
	}
	if !res.claim() {
		t.Fatal("claim failed")
	}
	defer res.stream.Body.Close()
	if res.timer.Stop() {
		t.Fatal("the claim timer was still armed after the response was claimed")
	}
	resp, body := do(t, c, pol, o, "GET", "https://e.com/me")
	if resp.Outcome != Pass || body != "personal" || resp.Detail != "no-store" {
		t.Fatalf("%v %q %q", resp.Outcome, body, resp.Detail)
	}
}

// TestDoUnstorableKeyNotCollapsed: once a key has answered an unstorable
// response, its concurrent viewers go to the origin side by side instead
// of queueing behind one fetch whose response only one of them may have;
// when the response becomes storable it is stored again, and then a hit.
func TestDoUnstorableKeyNotCollapsed(t *testing.T) {
	clk := &clock{t: t0}
	var cc atomic.Value
	cc.Store("no-store")
	var n atomic.Int64
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) > 1 {
			<-release // the first answers at once, the next wait side by side
		}
		w.Header().Set("Cache-Control", cc.Load().(string))
		fmt.Fprint(w, "mine")
	})
	c := newCache(t, clk, nil)
	t.Cleanup(unblock) // runs before the origin's and cache's: a failure must not hang
	if resp, body := do(t, c, pol, o, "GET", "https://e.com/me"); resp.Outcome != Pass || body != "mine" || resp.Detail != "no-store" {
		t.Fatalf("first: %v %q %q", resp.Outcome, body, resp.Detail)
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, body := do(t, c, pol, o, "GET", "https://e.com/me"); resp.Outcome != Pass || body != "mine" {
				t.Errorf("concurrent: %v %q", resp.Outcome, body)
			}
		}()
	}
	waitFor(t, "both concurrent viewers' requests at the origin at once", func() bool { return o.calls.Load() == 3 })
	unblock()
	wg.Wait()
	cc.Store("max-age=60")
	if resp, _ := do(t, c, pol, o, "GET", "https://e.com/me"); resp.Outcome != Miss || !resp.Stored {
		t.Fatalf("now storable: %v stored=%v %q", resp.Outcome, resp.Stored, resp.Detail)
	}
	if resp, _ := do(t, c, pol, o, "GET", "https://e.com/me"); resp.Outcome != Hit {
		t.Fatalf("after storing: %v", resp.Outcome)
	}
}
