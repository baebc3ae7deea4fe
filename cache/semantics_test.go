package cache

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The default origin request policy forwards what an application needs,
// drops what rewrites a request, and keeps the key's Accept-Encoding.
func TestOriginRequestPolicy(t *testing.T) {
	r := viewer(t, "https://e.com/p?utm=1&v=2",
		"Authorization", "Bearer x", "Cookie", "session=s; lang=en", "X-Request-Tag", "t1", "Accept-Language", "fr",
		"X-Forwarded-Host", "evil.example", "X-Original-URL", "/admin", "X-Rewrite-URL", "/admin",
		"X-HTTP-Method-Override", "DELETE", "X-Forwarded-Scheme", "http", "X-Forwarded-For", "1.2.3.4",
		"X-Forwarded-Proto", "http", "Forwarded", "host=evil", "Connection", "X-Drop, close", "X-Drop", "1",
		"Keep-Alive", "300", "If-None-Match", `"v"`, "Range", "bytes=0-1", "Accept-Encoding", "gzip")
	r.RequestURI = r.URL.RequestURI()
	all := Policy{Forward: ForwardAll()}
	o := OriginRequest(context.Background(), r, all)
	for k, want := range map[string]string{"Authorization": "Bearer x", "Cookie": "session=s; lang=en", "X-Request-Tag": "t1",
		"Accept-Language": "fr", "Accept-Encoding": "identity"} {
		if got := o.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"X-Forwarded-Host", "X-Original-Url", "X-Rewrite-Url", "X-Http-Method-Override", "X-Forwarded-Scheme",
		"X-Forwarded-For", "X-Forwarded-Proto", "Forwarded", "Connection", "X-Drop", "Keep-Alive", "If-None-Match", "Range"} {
		if v := o.Header.Get(k); v != "" {
			t.Errorf("%s forwarded: %q", k, v)
		}
	}
	if o.URL.RawQuery != "utm=1&v=2" {
		t.Errorf("query %q", o.URL.RawQuery)
	}

	// A policy that names an override header forwards it; all_except
	// holds back the named ones.
	named := Policy{Forward: OriginRequestPolicy{Headers: SelectNames("x-original-url", "X-Request-Tag"), Cookies: SelectAllExcept("session"),
		QueryStrings: SelectAllExcept("utm")}}
	o = OriginRequest(context.Background(), r, named)
	if o.Header.Get("X-Original-Url") != "/admin" || o.Header.Get("X-Request-Tag") != "t1" || o.Header.Get("Authorization") != "" ||
		o.Header.Get("Cookie") != "lang=en" || o.URL.RawQuery != "v=2" {
		t.Errorf("named policy: %v %q", o.Header, o.URL.RawQuery)
	}
	except := Policy{Forward: OriginRequestPolicy{Headers: SelectAllExcept("authorization")}}
	o = OriginRequest(context.Background(), r, except)
	if o.Header.Get("Authorization") != "" || o.Header.Get("X-Request-Tag") != "t1" || o.Header.Get("X-Original-Url") != "" || o.Header.Get("Cookie") != "" {
		t.Errorf("all_except: %v", o.Header)
	}

	// Every override header: dropped by all, forwarded when named.
	for _, h := range overrideHeaders {
		v := viewer(t, "https://e.com/p", h, "x")
		if got := OriginRequest(context.Background(), v, all).Header.Get(h); got != "" {
			t.Errorf("%s forwarded by all", h)
		}
		if got := OriginRequest(context.Background(), v, Policy{Forward: OriginRequestPolicy{Headers: SelectNames(strings.ToLower(h))}}).Header.Get(h); got != "x" {
			t.Errorf("%s not forwarded when named", h)
		}
	}

	// A request the cache does not answer keeps its body, conditionals and
	// method.
	post := httptest.NewRequest("POST", "https://e.com/form", strings.NewReader("a=1"))
	post.Header = hdr("If-Match", `"v"`, "Content-Type", "application/x-www-form-urlencoded")
	o = OriginRequest(context.Background(), post, all)
	if o.Method != "POST" || o.Header.Get("If-Match") != `"v"` || o.Body == http.NoBody || o.ContentLength != 3 {
		t.Errorf("POST: %s %v len %d", o.Method, o.Header, o.ContentLength)
	}
}

// A response to a request with credentials the key does not separate is
// stored only when the origin marks it shared, never by the default TTL:
// a logged-in page never reaches another viewer.
func TestDoUnkeyedCredentials(t *testing.T) {
	clk := &clock{t: t0}
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/asset.css" {
			w.Header().Set("Cache-Control", "public, max-age=600")
			fmt.Fprint(w, "asset")
			return
		}
		user := "anonymous"
		if c, err := r.Cookie("session"); err == nil {
			user = c.Value
		}
		if a := r.Header.Get("Authorization"); a != "" {
			user = a
		}
		fmt.Fprint(w, "page of "+user)
	})
	c := newCache(t, clk, nil)
	p := pol
	p.Forward = ForwardAll()
	if _, body := do(t, c, p, o, "GET", "https://e.com/account", "Cookie", "session=alice"); body != "page of alice" {
		t.Fatal(body)
	}
	if _, body := do(t, c, p, o, "GET", "https://e.com/account", "Authorization", "Bearer bob"); body != "page of Bearer bob" {
		t.Fatal(body)
	}
	if resp, body := do(t, c, p, o, "GET", "https://e.com/account"); body != "page of anonymous" || resp.Outcome != Miss {
		t.Fatalf("another viewer got %v %q", resp.Outcome, body)
	}
	do(t, c, p, o, "GET", "https://e.com/asset.css", "Cookie", "session=alice")
	for _, kv := range [][]string{nil, {"Cookie", "session=bob"}, {"Authorization", "Bearer x"}} {
		if resp, body := do(t, c, p, o, "GET", "https://e.com/asset.css", kv...); resp.Outcome != Hit || body != "asset" {
			t.Errorf("public asset for %v: %v %q", kv, resp.Outcome, body)
		}
	}
}

// RFC 9111 §4.4: a non-error response to an unsafe method invalidates the
// target URI and the same-origin Location and Content-Location.
func TestDoUnsafeMethodInvalidates(t *testing.T) {
	clk := &clock{t: t0}
	var status atomic.Int64
	status.Store(201)
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Location", "/created")
			w.Header().Set("Content-Location", "https://other.example/elsewhere")
			w.WriteHeader(int(status.Load()))
			return
		}
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Vary", "Accept-Language")
		fmt.Fprint(w, r.URL.Path)
	})
	c := newCache(t, clk, nil)
	p := pol
	p.Forward = ForwardAll()
	urls := []string{"https://e.com/list", "https://e.com/created", "https://e.com/elsewhere"}
	fill := func() {
		for _, u := range urls {
			do(t, c, p, o, "GET", u, "Accept-Language", "en")
			do(t, c, p, o, "GET", u, "Accept-Language", "fr")
			if resp, _ := do(t, c, p, o, "GET", u, "Accept-Language", "fr"); resp.Outcome != Hit {
				t.Fatalf("%s not stored", u)
			}
		}
	}
	fill()
	status.Store(500) // an error response invalidates nothing
	do(t, c, p, o, "POST", "https://e.com/list")
	if resp, _ := do(t, c, p, o, "GET", urls[0], "Accept-Language", "en"); resp.Outcome != Hit {
		t.Fatalf("a 500 to POST invalidated: %v", resp.Outcome)
	}
	for _, m := range []string{"POST", "PUT", "DELETE", "M-SEARCH"} {
		status.Store(201)
		fill()
		do(t, c, p, o, m, "https://e.com/list")
		for i, u := range urls {
			for _, lang := range []string{"en", "fr"} {
				resp, _ := do(t, c, p, o, "GET", u, "Accept-Language", lang)
				if want := i < 2; (resp.Outcome == Miss) != want {
					t.Errorf("%s: GET %s (%s) after it: %v", m, u, lang, resp.Outcome)
				}
			}
		}
	}
}

// RFC 9111 §4.3.4: a 304 whose validator names another response updates
// nothing; the cache asks again unconditionally.
func TestDoNotModifiedOtherValidator(t *testing.T) {
	clk := &clock{t: t0}
	var unconditional atomic.Int64
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=10")
		if r.Header.Get("If-None-Match") != "" {
			w.Header().Set("ETag", `"other"`)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		unconditional.Add(1)
		w.Header().Set("ETag", fmt.Sprintf(`"v%d"`, unconditional.Load()))
		fmt.Fprintf(w, "body v%d", unconditional.Load())
	})
	c := newCache(t, clk, nil)
	do(t, c, pol, o, "GET", "https://e.com/x")
	clk.Add(time.Minute)
	resp, body := do(t, c, pol, o, "GET", "https://e.com/x")
	if resp.Outcome != Miss || body != "body v2" || unconditional.Load() != 2 {
		t.Fatalf("%v %q after %d unconditional requests", resp.Outcome, body, unconditional.Load())
	}
	if resp, body = do(t, c, pol, o, "GET", "https://e.com/x"); resp.Outcome != Hit || body != "body v2" {
		t.Fatalf("then: %v %q", resp.Outcome, body)
	}
}

// The operator's stale_if_error serves stale when the origin gives no
// stale-if-error, on a timeout too, but not past must-revalidate.
func TestDoOperatorStaleIfError(t *testing.T) {
	clk := &clock{t: t0}
	var mode atomic.Value
	mode.Store("ok")
	release := make(chan struct{})
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		switch mode.Load() {
		case "slow":
			<-release
		case "502":
			w.WriteHeader(502)
			return
		}
		if r.URL.Path == "/strict" {
			w.Header().Set("Cache-Control", "max-age=10, must-revalidate")
		} else {
			w.Header().Set("Cache-Control", "max-age=10")
		}
		fmt.Fprint(w, "good")
	})
	defer close(release)
	p := pol
	p.StaleIfError = time.Hour
	p.StaleOnStatus = []int{502}
	c := New(newMemory(t, 8<<20), Options{Now: clk.Now, FetchTimeout: 300 * time.Millisecond})
	t.Cleanup(c.Wait)
	do(t, c, p, o, "GET", "https://e.com/s")
	do(t, c, p, o, "GET", "https://e.com/strict")
	clk.Add(30 * time.Minute)
	mode.Store("502")
	if resp, body := do(t, c, p, o, "GET", "https://e.com/s"); resp.Outcome != StaleOriginStatus || body != "good" {
		t.Fatalf("502: %v %q", resp.Outcome, body)
	}
	if resp, _ := do(t, c, p, o, "GET", "https://e.com/strict"); resp.Status != 502 {
		t.Fatalf("must-revalidate: %v %d", resp.Outcome, resp.Status)
	}
	mode.Store("slow")
	if resp, body := do(t, c, p, o, "GET", "https://e.com/s"); resp.Outcome != StaleTimeout || body != "good" {
		t.Fatalf("timeout: %v %q", resp.Outcome, body)
	}
	clk.Add(time.Hour)
	mode.Store("502")
	if resp, _ := do(t, c, p, o, "GET", "https://e.com/s"); resp.Status != 502 {
		t.Fatalf("past the window: %v %d", resp.Outcome, resp.Status)
	}
}

// Edgegate's own targeted field steers the edge and never reaches the
// viewer; CDN-Cache-Control does, for caches further down.
func TestDoTargetedFields(t *testing.T) {
	clk := &clock{t: t0}
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Edgegate-CDN-Cache-Control", "max-age=86400")
		w.Header().Set("CDN-Cache-Control", "no-store")
		fmt.Fprint(w, "x")
	})
	c := newCache(t, clk, nil)
	resp, _ := do(t, c, pol, o, "GET", "https://e.com/t")
	if resp.Header.Get("Edgegate-Cdn-Cache-Control") != "" || resp.Header.Get("Cdn-Cache-Control") != "no-store" || resp.Header.Get("Cache-Control") != "max-age=60" {
		t.Fatalf("headers to the viewer: %v", resp.Header)
	}
	clk.Add(12 * time.Hour)
	if resp, _ = do(t, c, pol, o, "GET", "https://e.com/t"); resp.Outcome != Hit || resp.Header.Get("Edgegate-Cdn-Cache-Control") != "" {
		t.Fatalf("half a day later: %v %v", resp.Outcome, resp.Header)
	}
}
