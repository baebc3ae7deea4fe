package cache

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func getReq(kv ...string) *http.Request {
	r, _ := http.NewRequest(http.MethodGet, "https://example.com/x", nil)
	r.Header = hdr(kv...)
	return r
}

func TestParseCacheControl(t *testing.T) {
	tests := []struct {
		in   []string
		want cacheControl
	}{
		{[]string{"max-age=60, public"}, cacheControl{public: true, maxAge: 60, sMaxAge: absent, staleWhileRevalidate: absent, staleIfError: absent}},
		{[]string{`Max-Age="30"`, "S-MAXAGE=10"}, cacheControl{maxAge: 30, sMaxAge: 10, staleWhileRevalidate: absent, staleIfError: absent}},
		{[]string{"max-age=60, max-age=30"}, cacheControl{maxAge: 0, sMaxAge: absent, staleWhileRevalidate: absent, staleIfError: absent}},
		{[]string{"max-age=60, max-age=60"}, cacheControl{maxAge: 60, sMaxAge: absent, staleWhileRevalidate: absent, staleIfError: absent}},
		{[]string{"max-age=abc"}, cacheControl{maxAge: 0, sMaxAge: absent, staleWhileRevalidate: absent, staleIfError: absent}},
		{[]string{"max-age=99999999999999"}, cacheControl{maxAge: maxDelta, sMaxAge: absent, staleWhileRevalidate: absent, staleIfError: absent}},
		{[]string{`private="Set-Cookie, X-A", no-cache="x-b"`, "must-revalidate,,no-store"},
			cacheControl{privateFields: []string{"Set-Cookie", "X-A"}, noCacheFields: []string{"X-B"}, mustRevalidate: true, noStore: true,
				maxAge: absent, sMaxAge: absent, staleWhileRevalidate: absent, staleIfError: absent}},
		{[]string{"no-cache, private, proxy-revalidate, stale-while-revalidate=5, stale-if-error=9"},
			cacheControl{noCache: true, private: true, proxyRevalidate: true, maxAge: absent, sMaxAge: absent, staleWhileRevalidate: 5, staleIfError: 9}},
	}
	for _, tt := range tests {
		h := http.Header{"Cache-Control": tt.in}
		got := parseCacheControl(h)
		if got.noStore != tt.want.noStore || got.noCache != tt.want.noCache || got.private != tt.want.private ||
			got.public != tt.want.public || got.mustRevalidate != tt.want.mustRevalidate || got.proxyRevalidate != tt.want.proxyRevalidate ||
			got.maxAge != tt.want.maxAge || got.sMaxAge != tt.want.sMaxAge || got.staleWhileRevalidate != tt.want.staleWhileRevalidate ||
			got.staleIfError != tt.want.staleIfError || len(got.privateFields) != len(tt.want.privateFields) ||
			len(got.noCacheFields) != len(tt.want.noCacheFields) {
			t.Errorf("%q: got %+v, want %+v", tt.in, got, tt.want)
		}
		for i := range got.privateFields {
			if got.privateFields[i] != tt.want.privateFields[i] {
				t.Errorf("%q: private fields %v", tt.in, got.privateFields)
			}
		}
	}
}

// TestLifetimeCloudFrontTable walks AWS's "Managing how long content stays
// in the cache" table, both columns (min TTL 0 and > 0).
func TestLifetimeCloudFrontTable(t *testing.T) {
	date := t0.Format(http.TimeFormat)
	p0 := Policy{MinTTL: 0, DefaultTTL: 24 * time.Hour, MaxTTL: 365 * 24 * time.Hour}
	pMin := Policy{MinTTL: time.Hour, DefaultTTL: 2 * time.Hour, MaxTTL: 10 * time.Hour}
	pPure := Policy{MaxTTL: 365 * 24 * time.Hour}
	tests := []struct {
		name     string
		p        Policy
		h        http.Header
		want     time.Duration
		explicit bool
	}{
		{"max-age below max", p0, hdr("Cache-Control", "max-age=600"), 10 * time.Minute, true},
		{"max-age above max", Policy{MaxTTL: time.Minute}, hdr("Cache-Control", "max-age=600"), time.Minute, true},
		{"min>0 max-age between", pMin, hdr("Cache-Control", "max-age=7200"), 2 * time.Hour, true},
		{"min>0 max-age below min", pMin, hdr("Cache-Control", "max-age=60"), time.Hour, true},
		{"min>0 max-age above max", pMin, hdr("Cache-Control", "max-age=86400"), 10 * time.Hour, true},
		{"s-maxage over max-age", p0, hdr("Cache-Control", "max-age=60, s-maxage=120"), 2 * time.Minute, true},
		{"min>0 s-maxage below min", pMin, hdr("Cache-Control", "max-age=99999, s-maxage=10"), time.Hour, true},
		{"max-age over Expires", p0, hdr("Cache-Control", "max-age=60", "Date", date, "Expires", t0.Add(time.Hour).Format(http.TimeFormat)), time.Minute, true},
		{"Expires minus Date", p0, hdr("Date", date, "Expires", t0.Add(time.Hour).Format(http.TimeFormat)), time.Hour, true},
		{"Expires without Date uses receipt", p0, hdr("Expires", t0.Add(30*time.Minute).Format(http.TimeFormat)), 30 * time.Minute, true},
		{"Expires past", p0, hdr("Date", date, "Expires", t0.Add(-time.Hour).Format(http.TimeFormat)), 0, true},
		{"Expires invalid (0)", p0, hdr("Expires", "0"), 0, true},
		{"Expires with extra spaces is invalid", p0, hdr("Date", date, "Expires", "Sat,  01 Mar 2025 13:00:00 GMT"), 0, true},
		{"Expires with a one-digit hour is invalid", p0, hdr("Date", date, "Expires", "Sat, 01 Mar 2025 3:00:00 GMT"), 0, true},
		{"Expires in lower-case gmt is invalid", p0, hdr("Date", date, "Expires", "Sat, 01 Mar 2025 13:00:00 gmt"), 0, true},
		{"Expires in RFC 850 form", p0, hdr("Date", date, "Expires", "Saturday, 01-Mar-25 13:00:00 GMT"), time.Hour, true},
		{"Expires in asctime form", p0, hdr("Date", date, "Expires", "Sat Mar  1 13:00:00 2025"), time.Hour, true},
		{"min>0 Expires below min", pMin, hdr("Date", date, "Expires", t0.Add(time.Minute).Format(http.TimeFormat)), time.Hour, true},
		{"min>0 Expires above max", pMin, hdr("Date", date, "Expires", t0.Add(100*time.Hour).Format(http.TimeFormat)), 10 * time.Hour, true},
		{"no headers: default", p0, hdr(), 24 * time.Hour, false},
		{"no headers, min>0: default", pMin, hdr(), 2 * time.Hour, false},
		{"pure RFC: no heuristics", pPure, hdr("Last-Modified", t0.Add(-24*time.Hour).Format(http.TimeFormat)), 0, false},
		{"no-cache min 0", p0, hdr("Cache-Control", "no-cache, max-age=600"), 0, true},
		{"no-store min 0", p0, hdr("Cache-Control", "no-store"), 0, false},
		{"private min>0", pMin, hdr("Cache-Control", "private, max-age=5"), time.Hour, true},
		{"no-store min>0", pMin, hdr("Cache-Control", "no-store"), time.Hour, false},
		{"no-cache min>0", pMin, hdr("Cache-Control", "no-cache"), time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, explicit := tt.p.Lifetime(tt.h, t0)
			if got != tt.want || explicit != tt.explicit {
				t.Fatalf("Lifetime = %s explicit=%v, want %s explicit=%v", got, explicit, tt.want, tt.explicit)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	p0 := Policy{DefaultTTL: time.Hour, MaxTTL: 24 * time.Hour}
	pure := Policy{MaxTTL: 24 * time.Hour}
	pMin := Policy{MinTTL: time.Minute, DefaultTTL: time.Hour, MaxTTL: 24 * time.Hour}
	pErr := Policy{DefaultTTL: time.Hour, MaxTTL: 24 * time.Hour, ErrorCachingMinTTL: 10 * time.Second}
	pAuth := Policy{DefaultTTL: time.Hour, MaxTTL: 24 * time.Hour, Key: KeyPolicy{Headers: []string{"authorization"}}}
	pCookie := Policy{DefaultTTL: time.Hour, MaxTTL: 24 * time.Hour, Key: KeyPolicy{Cookies: SelectNames("lang")}}
	pStale := Policy{DefaultTTL: time.Hour, MaxTTL: 24 * time.Hour, StaleIfError: time.Hour, StaleWhileRevalidate: 30 * time.Second}
	head, _ := http.NewRequest(http.MethodHead, "https://e.com/", nil)
	opts, _ := http.NewRequest(http.MethodOptions, "https://e.com/", nil)
	post, _ := http.NewRequest(http.MethodPost, "https://e.com/", nil)
	tests := []struct {
		name   string
		p      Policy
		req    *http.Request
		status int
		h      http.Header
		store  bool
		check  func(t *testing.T, d Decision)
	}{
		{"200 plain with default", p0, getReq(), 200, hdr(), true, nil},
		{"200 plain pure RFC no validator", pure, getReq(), 200, hdr(), false, nil},
		{"200 plain pure RFC with ETag", pure, getReq(), 200, hdr("ETag", `"a"`), true, func(t *testing.T, d Decision) {
			if d.Lifetime != 0 {
				t.Errorf("lifetime %s", d.Lifetime)
			}
		}},
		{"HEAD response", p0, head, 200, hdr("Cache-Control", "max-age=60"), false, nil},
		{"OPTIONS off", p0, opts, 200, hdr("Cache-Control", "max-age=60"), false, nil},
		{"OPTIONS on", Policy{DefaultTTL: time.Hour, MaxTTL: time.Hour, CacheOPTIONS: true}, opts, 200, hdr(), true, nil},
		{"POST", p0, post, 200, hdr("Cache-Control", "max-age=60"), false, nil},
		{"206", p0, getReq(), 206, hdr("Cache-Control", "max-age=60", "Content-Range", "bytes 0-1/10"), false, nil},
		{"304", p0, getReq(), 304, hdr("Cache-Control", "max-age=60"), false, nil},
		{"400 even with max-age", p0, getReq(), 400, hdr("Cache-Control", "public, max-age=600"), false, nil},
		{"431", p0, getReq(), 431, hdr("Cache-Control", "max-age=600"), false, nil},
		{"503 with max-age", p0, getReq(), 503, hdr("Cache-Control", "max-age=600"), true, nil},
		{"503 public without freshness", p0, getReq(), 503, hdr("Cache-Control", "public"), false, nil},
		{"500 without freshness", pErr, getReq(), 500, hdr(), false, nil},
		{"599 with must-understand", p0, getReq(), 599, hdr("Cache-Control", "max-age=60, must-understand"), false, nil},
		{"599 with max-age", p0, getReq(), 599, hdr("Cache-Control", "max-age=60"), true, nil},
		{"must-understand overrides no-store", p0, getReq(), 200, hdr("Cache-Control", "max-age=60, must-understand, no-store"), true, nil},
		{"413 with max-age", p0, getReq(), 413, hdr("Cache-Control", "max-age=600"), false, nil},
		{"404 default: error caching minimum TTL", pErr, getReq(), 404, hdr(), true, func(t *testing.T, d Decision) {
			if d.Lifetime != 10*time.Second {
				t.Errorf("lifetime %s, want the error caching minimum TTL", d.Lifetime)
			}
		}},
		{"404 pure RFC: no heuristics", pure, getReq(), 404, hdr(), false, nil},
		{"404 with max-age", pErr, getReq(), 404, hdr("Cache-Control", "max-age=60"), true, func(t *testing.T, d Decision) {
			if d.Lifetime != time.Minute {
				t.Errorf("lifetime %s", d.Lifetime)
			}
		}},
		{"410 default", pErr, getReq(), 410, hdr(), true, nil},
		{"403 default is not heuristically cacheable", pErr, getReq(), 403, hdr(), false, nil},
		{"302 without freshness", p0, getReq(), 302, hdr(), false, nil},
		{"302 with max-age", p0, getReq(), 302, hdr("Cache-Control", "max-age=60"), true, nil},
		{"403 public", pErr, getReq(), 403, hdr("Cache-Control", "public"), true, nil},
		{"Authorization plain", p0, getReq("Authorization", "Bearer x"), 200, hdr("Cache-Control", "max-age=60"), false, nil},
		{"Authorization public", p0, getReq("Authorization", "Bearer x"), 200, hdr("Cache-Control", "public, max-age=60"), true, nil},
		{"Authorization s-maxage", p0, getReq("Authorization", "Bearer x"), 200, hdr("Cache-Control", "s-maxage=60"), true, nil},
		{"Authorization keyed must-revalidate (RFC 9111 §3.5)", pAuth, getReq("Authorization", "Bearer x"), 200, hdr("Cache-Control", "must-revalidate, max-age=60"), true, nil},
		{"Authorization keyed plain", pAuth, getReq("Authorization", "Bearer x"), 200, hdr("Cache-Control", "max-age=60"), false, nil},
		{"Authorization unkeyed must-revalidate", p0, getReq("Authorization", "Bearer x"), 200, hdr("Cache-Control", "must-revalidate, max-age=60"), false, nil},
		{"Authorization unkeyed CDN-Cache-Control", p0, getReq("Authorization", "Bearer x"), 200, hdr("Cdn-Cache-Control", "max-age=60"), true, nil},
		{"unkeyed cookie, default TTL", p0, getReq("Cookie", "session=1"), 200, hdr(), false, nil},
		{"unkeyed cookie, max-age", p0, getReq("Cookie", "session=1"), 200, hdr("Cache-Control", "max-age=60"), false, nil},
		{"unkeyed cookie, public", p0, getReq("Cookie", "session=1"), 200, hdr("Cache-Control", "public, max-age=60"), true, nil},
		{"unkeyed cookie, s-maxage", p0, getReq("Cookie", "session=1"), 200, hdr("Cache-Control", "s-maxage=60"), true, nil},
		{"cookie separated by Vary: Cookie", p0, getReq("Cookie", "session=1"), 200, hdr("Cache-Control", "max-age=60", "Vary", "Cookie"), true, nil},
		{"Authorization separated by Vary (RFC 9111 §3.5 still applies)", p0, getReq("Authorization", "Bearer x"), 200, hdr("Cache-Control", "max-age=60, must-revalidate", "Vary", "Authorization"), true, nil},
		{"keyed cookie, default TTL", pCookie, getReq("Cookie", "lang=en"), 200, hdr(), true, nil},
		{"keyed and unkeyed cookie", pCookie, getReq("Cookie", "lang=en; session=1"), 200, hdr(), false, nil},
		{"CDN-Cache-Control over Cache-Control", p0, getReq(), 200, hdr("Cache-Control", "no-store", "Cdn-Cache-Control", "max-age=600"), true, func(t *testing.T, d Decision) {
			if d.Lifetime != 10*time.Minute {
				t.Errorf("lifetime %s", d.Lifetime)
			}
		}},
		{"Edgegate-CDN-Cache-Control over CDN-Cache-Control", p0, getReq(), 200, hdr("Cache-Control", "max-age=60", "Cdn-Cache-Control", "no-store", "Edgegate-Cdn-Cache-Control", "max-age=86400"), true, func(t *testing.T, d Decision) {
			if d.Lifetime != 24*time.Hour {
				t.Errorf("lifetime %s", d.Lifetime)
			}
		}},
		{"CDN-Cache-Control private", p0, getReq(), 200, hdr("Cache-Control", "max-age=60", "Cdn-Cache-Control", "private"), false, nil},
		{"invalid CDN-Cache-Control is ignored", p0, getReq(), 200, hdr("Cache-Control", "no-store", "Cdn-Cache-Control", "Max-Age=600"), false, nil},
		{"CDN-Cache-Control ignores Expires", p0, getReq(), 200, hdr("Cdn-Cache-Control", "public", "Expires", "Thu, 01 Dec 2100 16:00:00 GMT"), true, func(t *testing.T, d Decision) {
			if d.Lifetime != p0.DefaultTTL {
				t.Errorf("lifetime %s", d.Lifetime)
			}
		}},
		{"operator stale windows without origin directives", pStale, getReq(), 200, hdr("Cache-Control", "max-age=60"), true, func(t *testing.T, d Decision) {
			if d.StaleIfError != time.Hour || d.StaleWhileRevalidate != 30*time.Second {
				t.Errorf("got %+v", d)
			}
		}},
		{"operator stale windows: the origin's longer one wins", pStale, getReq(), 200, hdr("Cache-Control", "max-age=60, stale-while-revalidate=90"), true, func(t *testing.T, d Decision) {
			if d.StaleWhileRevalidate != 90*time.Second {
				t.Errorf("got %+v", d)
			}
		}},
		{"operator stale windows: must-revalidate forbids", pStale, getReq(), 200, hdr("Cache-Control", "max-age=60, must-revalidate"), true, func(t *testing.T, d Decision) {
			if d.StaleIfError != 0 || d.StaleWhileRevalidate != 0 {
				t.Errorf("got %+v", d)
			}
		}},
		{"operator stale windows: proxy-revalidate forbids", pStale, getReq(), 200, hdr("Cache-Control", "max-age=60, proxy-revalidate"), true, func(t *testing.T, d Decision) {
			if d.StaleIfError != 0 || d.StaleWhileRevalidate != 0 {
				t.Errorf("got %+v", d)
			}
		}},
		{"operator stale windows: no-cache forbids", pStale, getReq(), 200, hdr("Cache-Control", "no-cache", "ETag", `"a"`), true, func(t *testing.T, d Decision) {
			if d.StaleIfError != 0 || d.StaleWhileRevalidate != 0 {
				t.Errorf("got %+v", d)
			}
		}},
		{"operator stale windows: s-maxage forbids", pStale, getReq(), 200, hdr("Cache-Control", "s-maxage=60"), true, func(t *testing.T, d Decision) {
			if d.StaleIfError != 0 || d.StaleWhileRevalidate != 0 {
				t.Errorf("got %+v", d)
			}
		}},
		{"no-store", p0, getReq(), 200, hdr("Cache-Control", "no-store"), false, nil},
		{"private", p0, getReq(), 200, hdr("Cache-Control", "private, max-age=60"), false, nil},
		{"private min>0 (AWS override)", pMin, getReq(), 200, hdr("Cache-Control", "private"), true, func(t *testing.T, d Decision) {
			if d.Lifetime != time.Minute || d.NoStale {
				t.Errorf("got %+v", d)
			}
		}},
		{"no-cache min 0 stored for revalidation", p0, getReq(), 200, hdr("Cache-Control", "no-cache", "ETag", `"v"`), true, func(t *testing.T, d Decision) {
			if d.Lifetime != 0 || !d.NoStale {
				t.Errorf("got %+v", d)
			}
		}},
		{"Vary star", p0, getReq(), 200, hdr("Vary", "Accept, *"), false, nil},
		{"Set-Cookie", p0, getReq(), 200, hdr("Cache-Control", "public, max-age=60", "Set-Cookie", "s=1"), false, nil},
		{"Set-Cookie min>0 still not", pMin, getReq(), 200, hdr("Set-Cookie", "s=1"), false, nil},
		{"Set-Cookie named private", p0, getReq(), 200, hdr("Cache-Control", `max-age=60, private="Set-Cookie"`, "Set-Cookie", "s=1"), true,
			func(t *testing.T, d Decision) {
				if len(d.Strip) != 1 || d.Strip[0] != "Set-Cookie" {
					t.Errorf("strip %v", d.Strip)
				}
			}},
		{"Set-Cookie named no-cache", p0, getReq(), 200, hdr("Cache-Control", `max-age=60, no-cache="set-cookie"`, "Set-Cookie", "s=1"), true, nil},
		{"stale windows", p0, getReq(), 200, hdr("Cache-Control", "max-age=60, stale-while-revalidate=30, stale-if-error=600"), true,
			func(t *testing.T, d Decision) {
				if d.StaleWhileRevalidate != 30*time.Second || d.StaleIfError != 10*time.Minute || d.NoStale {
					t.Errorf("got %+v", d)
				}
			}},
		{"stale windows capped by MaxTTL", Policy{MaxTTL: time.Minute}, getReq(), 200, hdr("Cache-Control", "max-age=60, stale-if-error=86400"), true,
			func(t *testing.T, d Decision) {
				if d.StaleIfError != time.Minute {
					t.Errorf("got %+v", d)
				}
			}},
		{"must-revalidate forbids stale", p0, getReq(), 200, hdr("Cache-Control", "max-age=60, must-revalidate, stale-if-error=600"), true,
			func(t *testing.T, d Decision) {
				if !d.NoStale || d.StaleIfError != 0 {
					t.Errorf("got %+v", d)
				}
			}},
		{"proxy-revalidate forbids stale", p0, getReq(), 200, hdr("Cache-Control", "max-age=60, proxy-revalidate, stale-while-revalidate=9"), true,
			func(t *testing.T, d Decision) {
				if !d.NoStale || d.StaleWhileRevalidate != 0 {
					t.Errorf("got %+v", d)
				}
			}},
		{"max-age=0 with stale-if-error is kept", pure, getReq(), 200, hdr("Cache-Control", "max-age=0, stale-if-error=60"), true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.p.Decide(tt.req, tt.status, tt.h, t0)
			if d.Store != tt.store {
				t.Fatalf("Store = %v (%s), want %v", d.Store, d.Reason, tt.store)
			}
			if !d.Store && d.Reason == "" {
				t.Fatal("refusal without a reason")
			}
			if tt.check != nil {
				tt.check(t, d)
			}
		})
	}
}

func TestCacheable(t *testing.T) {
	for _, tt := range []struct {
		method string
		opts   bool
		want   bool
	}{{"GET", false, true}, {"HEAD", false, true}, {"OPTIONS", false, false}, {"OPTIONS", true, true}, {"POST", true, false}, {"PUT", false, false}} {
		r, _ := http.NewRequest(tt.method, "https://e.com/", nil)
		r.Header.Set("Cache-Control", "no-cache") // viewer directives are ignored
		if got := (Policy{CacheOPTIONS: tt.opts}).Cacheable(r); got != tt.want {
			t.Errorf("%s opts=%v: %v", tt.method, tt.opts, got)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		p  Policy
		ok bool
	}{
		{Policy{MinTTL: 0, DefaultTTL: time.Hour, MaxTTL: time.Hour}, true},
		{Policy{MinTTL: 2 * time.Hour, DefaultTTL: time.Hour, MaxTTL: time.Hour}, false},
		{Policy{DefaultTTL: 2 * time.Hour, MaxTTL: time.Hour}, false},
		{Policy{Key: KeyPolicy{Headers: []string{"connection"}}}, false},
		{Policy{Key: KeyPolicy{Headers: []string{"Cookie"}}}, false},
		{Policy{Key: KeyPolicy{Headers: []string{"Accept-Encoding"}}}, false},
		{Policy{Key: KeyPolicy{Headers: []string{"Origin", "Accept-Language"}}}, true},
	} {
		if err := tt.p.Validate(); (err == nil) != tt.ok {
			t.Errorf("%+v: %v", tt.p, err)
		}
	}
}

func TestAgeAndFreshness(t *testing.T) {
	tests := []struct {
		name      string
		h         http.Header
		reqTime   time.Time
		respTime  time.Time
		now       time.Time
		lifetime  time.Duration
		swr, sie  time.Duration
		noStale   bool
		wantAge   time.Duration
		wantState Freshness
		wantSIE   bool
	}{
		{"fresh, no Date", hdr(), t0, t0, t0.Add(10 * time.Second), time.Minute, 0, 0, false, 10 * time.Second, Fresh, true},
		{"Age header counts", hdr("Age", "50"), t0, t0, t0.Add(10 * time.Second), time.Minute, 0, 0, false, time.Minute, Stale, false},
		{"response delay counts", hdr("Age", "10"), t0, t0.Add(2 * time.Second), t0.Add(2 * time.Second), time.Minute, 0, 0, false, 12 * time.Second, Fresh, true},
		{"apparent age from Date", hdr("Date", t0.Add(-30*time.Second).Format(http.TimeFormat)), t0, t0, t0, time.Minute, 0, 0, false, 30 * time.Second, Fresh, true},
		{"Date in future ignored", hdr("Date", t0.Add(time.Hour).Format(http.TimeFormat)), t0, t0, t0, time.Minute, 0, 0, false, 0, Fresh, true},
		{"invalid Age", hdr("Age", "-5"), t0, t0, t0, time.Minute, 0, 0, false, 0, Fresh, true},
		{"Age list: the first member", hdr("Age", "7200, 0"), t0, t0, t0, 3 * time.Hour, 0, 0, false, 2 * time.Hour, Fresh, true},
		{"Age field lines: the first", http.Header{"Age": {"30", "0"}}, t0, t0, t0, time.Hour, 0, 0, false, 30 * time.Second, Fresh, true},
		{"Age list with an invalid first member", hdr("Age", "x, 50"), t0, t0, t0, time.Hour, 0, 0, false, 0, Fresh, true},
		{"in swr window", hdr(), t0, t0, t0.Add(70 * time.Second), time.Minute, 30 * time.Second, 0, false, 70 * time.Second, StaleRevalidateInBackground, false},
		{"past swr, in sie", hdr(), t0, t0, t0.Add(100 * time.Second), time.Minute, 30 * time.Second, time.Minute, false, 100 * time.Second, Stale, true},
		{"past sie", hdr(), t0, t0, t0.Add(200 * time.Second), time.Minute, 0, time.Minute, false, 200 * time.Second, Stale, false},
		{"no stale", hdr(), t0, t0, t0.Add(70 * time.Second), time.Minute, time.Minute, time.Minute, true, 70 * time.Second, Stale, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decision{Store: true, Lifetime: tt.lifetime, StaleWhileRevalidate: tt.swr, StaleIfError: tt.sie, NoStale: tt.noStale}
			e := NewEntry(200, tt.h, nil, d, "/", tt.reqTime, tt.respTime)
			if got := e.Age(tt.now); got != tt.wantAge {
				t.Errorf("Age = %s, want %s", got, tt.wantAge)
			}
			if got := e.Freshness(tt.now); got != tt.wantState {
				t.Errorf("Freshness = %s, want %s", got, tt.wantState)
			}
			if got := e.StaleIfErrorAllowed(tt.now); got != tt.wantSIE {
				t.Errorf("StaleIfErrorAllowed = %v", got)
			}
			if got := e.ResponseHeader(tt.now).Get("Age"); got != strconv.Itoa(int(tt.wantAge/time.Second)) {
				t.Errorf("Age header %q", got)
			}
		})
	}
}

func TestNewEntryStripsHeaders(t *testing.T) {
	h := hdr("Connection", "close, X-Conn", "X-Conn", "1", "Keep-Alive", "5", "Transfer-Encoding", "chunked",
		"Set-Cookie", "a=1", "X-Secret", "s", "Content-Type", "text/plain", "Vary", "accept-language, Accept")
	d := Decision{Store: true, Lifetime: time.Minute, Strip: []string{"Set-Cookie", "X-Secret"}}
	e := NewEntry(200, h, []byte("x"), d, "/p", t0, t0)
	for _, f := range []string{"Connection", "X-Conn", "Keep-Alive", "Transfer-Encoding", "Set-Cookie", "X-Secret"} {
		if e.Header.Get(f) != "" {
			t.Errorf("%s kept", f)
		}
	}
	if e.Header.Get("Content-Type") != "text/plain" {
		t.Error("Content-Type dropped")
	}
	if len(e.VaryFields) != 2 || e.VaryFields[0] != "Accept" || e.VaryFields[1] != "Accept-Language" {
		t.Errorf("vary fields %v", e.VaryFields)
	}
	if h.Get("Set-Cookie") == "" {
		t.Error("NewEntry changed the caller's header")
	}
}

func TestConditional(t *testing.T) {
	e := NewEntry(200, hdr("ETag", `"v1"`, "Last-Modified", t0.Format(http.TimeFormat)), nil, Decision{}, "/", t0, t0)
	r := getReq("If-None-Match", `"viewer"`, "Range", "bytes=0-1", "If-Range", `"x"`)
	Conditional(r, e)
	if r.Header.Get("If-None-Match") != `"v1"` || r.Header.Get("If-Modified-Since") != t0.Format(http.TimeFormat) ||
		r.Header.Get("Range") != "" || r.Header.Get("If-Range") != "" {
		t.Fatalf("header %v", r.Header)
	}
	r = getReq("If-None-Match", `"viewer"`)
	Conditional(r, NewEntry(200, hdr(), nil, Decision{}, "/", t0, t0))
	if len(r.Header) != 0 {
		t.Fatalf("header %v", r.Header)
	}
}

func TestFreshen(t *testing.T) {
	p := Policy{DefaultTTL: time.Hour, MaxTTL: 24 * time.Hour}
	stored := NewEntry(200, hdr("ETag", `"v1"`, "Content-Length", "5", "Cache-Control", "max-age=60", "X-Old", "1"),
		[]byte("hello"), Decision{Store: true, Lifetime: time.Minute}, "/", t0, t0)
	later := t0.Add(2 * time.Minute)
	tests := []struct {
		name    string
		h304    http.Header
		ok      bool
		store   bool
		life    time.Duration
		wantHdr map[string]string
	}{
		{"same etag updates", hdr("ETag", `"v1"`, "Cache-Control", "max-age=120", "X-New", "2", "Content-Length", "0", "Connection", "close",
			"Content-Encoding", "br", "Content-Range", "bytes 0-1/2", "Content-Md5", "x"),
			true, true, 2 * time.Minute, map[string]string{"X-Old": "1", "X-New": "2", "Content-Length": "5", "Connection": "",
				"Content-Encoding": "", "Content-Range": "", "Content-Md5": ""}},
		{"no validators updates", hdr("Cache-Control", "max-age=30"), true, true, 30 * time.Second, map[string]string{"ETag": `"v1"`}},
		{"other etag refused", hdr("ETag", `"v2"`), false, false, 0, nil},
		{"304 turning no-store", hdr("ETag", `"v1"`, "Cache-Control", "no-store"), true, false, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, d, ok := Freshen(stored, p, getReq(), tt.h304, later, later)
			if ok != tt.ok {
				t.Fatalf("ok = %v", ok)
			}
			if !ok {
				return
			}
			if d.Store != tt.store {
				t.Fatalf("store = %v (%s)", d.Store, d.Reason)
			}
			if tt.store && (n.Lifetime != tt.life || n.Freshness(later) != Fresh) {
				t.Errorf("lifetime %s freshness %s", n.Lifetime, n.Freshness(later))
			}
			for k, v := range tt.wantHdr {
				if got := n.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if string(n.Body) != "hello" || stored.Header.Get("X-New") != "" {
				t.Error("body lost or stored entry mutated")
			}
		})
	}
}

func TestParseTargeted(t *testing.T) {
	for _, tt := range []struct {
		in     string
		ok     bool
		maxAge int64
		check  func(cacheControl) bool
	}{
		{"max-age=600", true, 600, nil},
		{"max-age=600, stale-if-error=30;x=1", true, 600, func(cc cacheControl) bool { return cc.staleIfError == 30 }},
		{`no-cache="set-cookie", public`, true, absent, func(cc cacheControl) bool {
			return !cc.noCache && cc.public && len(cc.noCacheFields) == 1 && cc.noCacheFields[0] == "Set-Cookie"
		}},
		{"no-store", true, absent, func(cc cacheControl) bool { return cc.noStore }},
		{"private=?0, max-age=5", true, 5, func(cc cacheControl) bool { return !cc.private }},
		{"foobar, max-age=3600", true, 3600, nil},
		{"max-age=2147483648", true, maxDelta, nil},
		{"max-age=99999999999", true, maxDelta, nil},
		{"max-age=1.5", false, 0, nil},    // valid SF, but not a delta: the field is ignored
		{"max-age=\"60\"", false, 0, nil}, // likewise
		{"max-age=10000, &&&&&", false, 0, nil},
		{"max-age =100", false, 0, nil},
		{"max-age= 100", false, 0, nil},
		{"Max-Age=600", false, 0, nil}, // SF keys are lower case
		{"max-age=600,", false, 0, nil},
		{"max-age=", false, 0, nil},
		{"", false, 0, nil},
		{"max-age=600 public", false, 0, nil},
	} {
		cc, ok := parseTargeted(tt.in)
		if ok != tt.ok || (ok && cc.maxAge != tt.maxAge) || (ok && tt.check != nil && !tt.check(cc)) {
			t.Errorf("%q: ok %v %+v", tt.in, ok, cc)
		}
	}
}

func TestHTTPDateStrict(t *testing.T) {
	for v, ok := range map[string]bool{
		"Sun, 06 Nov 1994 08:49:37 GMT":   true,
		"Sunday, 06-Nov-94 08:49:37 GMT":  true,
		"Sun Nov  6 08:49:37 1994":        true,
		"Sun Nov 16 08:49:37 1994":        true,
		"Sun, 06 Nov 1994 08:49:37 UTC":   false,
		"Sun, 6 Nov 1994 08:49:37 GMT":    false,
		"Sun, 06 Nov 1994 8:49:37 GMT":    false,
		" Sun, 06 Nov 1994 08:49:37 GMT":  false,
		"Sun, 06 Nov 1994 08:49:37 GMT ":  false,
		"Sun,  06 Nov 1994 08:49:37 GMT":  false,
		"Sun, 06 Nov 1994 08:49:37 +0000": false,
		"0":                               false,
		"Sun, 06 Foo 1994 08:49:37 GMT":   false,
	} {
		if _, got := httpDate(v); got != ok {
			t.Errorf("%q: valid = %v, want %v", v, got, ok)
		}
	}
}
