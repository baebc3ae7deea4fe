package cache

import (
	"context"
	"encoding/binary"
	"net/http"
	"net/url"
	"testing"
)

func viewer(t testing.TB, target string, kv ...string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Header = hdr(kv...)
	return r
}

func TestKeyEquivalence(t *testing.T) {
	all := KeyPolicy{QueryStrings: SelectAll(), Headers: []string{"origin"}, Cookies: SelectNames("lang"), AcceptEncodingGzip: true, AcceptEncodingBrotli: true, AcceptEncodingZstd: true}
	none := KeyPolicy{}
	list := KeyPolicy{QueryStrings: SelectNames("v", "w")}
	tests := []struct {
		name string
		p    KeyPolicy
		a, b *http.Request
		same bool
	}{
		{"host case and port", none, viewer(t, "https://Example.COM:443/a"), viewer(t, "https://example.com/a"), true},
		{"path case matters", none, viewer(t, "https://e.com/A"), viewer(t, "https://e.com/a"), false},
		{"encoded slash differs", none, viewer(t, "https://e.com/a%2Fb"), viewer(t, "https://e.com/a/b"), false},
		{"query ignored with none", none, viewer(t, "https://e.com/a?x=1"), viewer(t, "https://e.com/a?x=2"), true},
		{"query order canonical", all, viewer(t, "https://e.com/a?b=2&a=1"), viewer(t, "https://e.com/a?a=1&b=2"), true},
		{"query escapes canonical", all, viewer(t, "https://e.com/a?a=%41"), viewer(t, "https://e.com/a?a=A"), true},
		{"query flag equals empty", all, viewer(t, "https://e.com/a?f"), viewer(t, "https://e.com/a?f="), true},
		{"duplicate order kept", all, viewer(t, "https://e.com/a?a=1&a=2"), viewer(t, "https://e.com/a?a=2&a=1"), false},
		{"allow-list", list, viewer(t, "https://e.com/a?v=1&utm=x"), viewer(t, "https://e.com/a?v=1&utm=y"), true},
		{"allow-list value", list, viewer(t, "https://e.com/a?v=1"), viewer(t, "https://e.com/a?v=2"), false},
		{"query names case-sensitive", list, viewer(t, "https://e.com/a?V=1"), viewer(t, "https://e.com/a?V=2"), true},
		{"keyed header", all, viewer(t, "https://e.com/", "Origin", "a"), viewer(t, "https://e.com/", "Origin", "b"), false},
		{"absent vs empty header", all, viewer(t, "https://e.com/"), viewer(t, "https://e.com/", "Origin", ""), false},
		{"unkeyed header", all, viewer(t, "https://e.com/", "X-Forwarded-Host", "evil"), viewer(t, "https://e.com/"), true},
		{"unkeyed cookie", all, viewer(t, "https://e.com/", "Cookie", "session=1; lang=en"), viewer(t, "https://e.com/", "Cookie", "lang=en; session=2"), true},
		{"keyed cookie", all, viewer(t, "https://e.com/", "Cookie", "lang=en"), viewer(t, "https://e.com/", "Cookie", "lang=fr"), false},
		{"accept-encoding normalised", all, viewer(t, "https://e.com/", "Accept-Encoding", "gzip, deflate, br"), viewer(t, "https://e.com/", "Accept-Encoding", "br;q=1, gzip"), true},
		{"accept-encoding q=0", all, viewer(t, "https://e.com/", "Accept-Encoding", "gzip;q=0, br"), viewer(t, "https://e.com/", "Accept-Encoding", "br"), true},
		{"accept-encoding differs", all, viewer(t, "https://e.com/", "Accept-Encoding", "gzip"), viewer(t, "https://e.com/", "Accept-Encoding", "br"), false},
		{"one variant per encoding", all, viewer(t, "https://e.com/", "Accept-Encoding", "gzip, br, zstd"), viewer(t, "https://e.com/", "Accept-Encoding", "br"), true},
		{"zstd before gzip", all, viewer(t, "https://e.com/", "Accept-Encoding", "gzip, zstd"), viewer(t, "https://e.com/", "Accept-Encoding", "zstd"), true},
		{"zstd is its own variant", all, viewer(t, "https://e.com/", "Accept-Encoding", "zstd"), viewer(t, "https://e.com/", "Accept-Encoding", "gzip"), false},
		{"unknown coding is identity", all, viewer(t, "https://e.com/", "Accept-Encoding", "deflate"), viewer(t, "https://e.com/"), true},
		{"accept-encoding off", none, viewer(t, "https://e.com/", "Accept-Encoding", "gzip"), viewer(t, "https://e.com/"), true},
		// crafted collisions that a naive "host+path+?+query" concatenation would merge
		{"path vs query", all, viewer(t, "https://e.com/a%3Fb=1"), viewer(t, "https://e.com/a?b=1"), false},
		{"query name vs value split", all, viewer(t, "https://e.com/?a=b%26c%3Dd"), viewer(t, "https://e.com/?a=b&c=d"), false},
		{"equals in name", all, viewer(t, "https://e.com/?a%3Db=c"), viewer(t, "https://e.com/?a=b%3Dc"), false},
		{"cookie value smuggles another", all, viewer(t, "https://e.com/", "Cookie", `lang="en; x=1"`), viewer(t, "https://e.com/", "Cookie", "lang=en"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ka, kb := Key(tt.a, tt.p), Key(tt.b, tt.p)
			if (ka == kb) != tt.same {
				t.Fatalf("same=%v, want %v\n%q\n%q", ka == kb, tt.same, ka, kb)
			}
		})
	}
	head := viewer(t, "https://e.com/a")
	head.Method = http.MethodHead
	opts := viewer(t, "https://e.com/a")
	opts.Method = http.MethodOptions
	if Key(head, none) != Key(viewer(t, "https://e.com/a"), none) || Key(opts, none) == Key(head, none) {
		t.Fatal("HEAD must share GET's key and OPTIONS must not")
	}
}

// parseKey decodes a key back into its parts; if every key parses to
// exactly what produced it, no two different inputs can share a key.
func parseKey(k string) (parts []string, rest string, ok bool) {
	b := []byte(k)
	if len(b) < 2 || string(b[:2]) != keyMagic {
		return nil, "", false
	}
	b = b[2:]
	str := func() bool {
		n, m := binary.Uvarint(b)
		if m <= 0 || n > uint64(len(b)-m) {
			return false
		}
		parts = append(parts, string(b[m:m+int(n)]))
		b = b[m+int(n):]
		return true
	}
	count := func() (int, bool) {
		n, m := binary.Uvarint(b)
		if m <= 0 || n > uint64(len(b)) {
			return 0, false
		}
		b = b[m:]
		return int(n), true
	}
	for range 3 { // host, method, path
		if !str() {
			return nil, "", false
		}
	}
	nq, ok := count()
	for i := 0; ok && i < 2*nq; i++ {
		ok = str()
	}
	nh, ok2 := count()
	for i := 0; ok && ok2 && i < nh; i++ {
		ok = str()
		nv, ok3 := count()
		for j := 0; ok && ok3 && j < nv; j++ {
			ok = str()
		}
		ok = ok && ok3
	}
	nc, ok4 := count()
	for i := 0; ok && ok4 && i < 2*nc; i++ {
		ok = str()
	}
	if !ok || !ok2 || !ok4 || !str() {
		return nil, "", false
	}
	return parts, string(b), true
}

func FuzzKeyUnambiguous(f *testing.F) {
	f.Add("/a", "x=1&y=2", "en", "lang=fr; s=1", "a")
	f.Add("/a%3Fb", "a=b%26c", "", `lang="x; y"`, "")
	f.Fuzz(func(t *testing.T, path, query, hv, cookie, vary string) {
		u := &url.URL{Scheme: "https", Host: "e.com", Path: path, RawQuery: query}
		r, err := http.NewRequest(http.MethodGet, u.String(), nil)
		if err != nil {
			return
		}
		r.Header.Set("X-K", hv)
		r.Header.Set("Cookie", cookie)
		p := KeyPolicy{QueryStrings: SelectAll(), Headers: []string{"x-k"}, Cookies: SelectAll()}
		k := Key(r, p)
		parts, rest, ok := parseKey(k)
		if !ok || rest != "" {
			t.Fatalf("key does not parse back exactly: %q (rest %q)", k, rest)
		}
		if parts[2] != r.URL.EscapedPath() {
			t.Fatalf("path part %q", parts[2])
		}
		vk := VaryKey(k, []string{"Accept"}, http.Header{"Accept": {vary}})
		if _, rest, ok := parseKey(vk); !ok || rest == "" || vk == k {
			t.Fatalf("variant key is not a primary key plus a suffix")
		}
	})
}

func TestVaryKey(t *testing.T) {
	k := "K1primary"
	f := []string{"Accept-Language", "Origin"}
	a := VaryKey(k, f, hdr("Accept-Language", "en, fr", "Origin", "o"))
	b := VaryKey(k, f, hdr("Accept-Language", "en,fr", "Origin", "o"))
	c := VaryKey(k, f, http.Header{"Accept-Language": {"en", "fr"}, "Origin": {"o"}})
	if a != b || a != c {
		t.Error("normalised values must match")
	}
	if VaryKey(k, f, hdr("Origin", "o")) == VaryKey(k, f, hdr("Accept-Language", "", "Origin", "o")) {
		t.Error("absent and empty must differ")
	}
	if VaryKey(k, f, hdr("Accept-Language", "en")) == a {
		t.Error("different values must differ")
	}
}

func TestOriginRequestStripsUnkeyed(t *testing.T) {
	p := KeyPolicy{QueryStrings: SelectNames("v", "a"), Headers: []string{"Origin"}, Cookies: SelectNames("lang"), AcceptEncodingGzip: true}
	r := viewer(t, "https://Example.com/p/a%2Fb?utm=1&v=2&a=%41&v=1",
		"Origin", "https://o.example", "X-Forwarded-Host", "evil.example", "X-Original-URL", "/admin",
		"X-Rewrite-URL", "/admin", "X-Forwarded-Scheme", "http", "X-Forwarded-Proto", "http", "X-Host", "evil",
		"X-HTTP-Method-Override", "DELETE", "Forwarded", "host=evil", "Cookie", "session=s3cr3t; lang=en",
		"Authorization", "Bearer x", "Range", "bytes=0-0", "If-None-Match", `"viewer"`, "If-Modified-Since", "x",
		"Accept-Encoding", "br, gzip, deflate", "User-Agent", "ua", "Connection", "close")
	r.RequestURI = r.URL.RequestURI()
	o := OriginRequest(context.Background(), r, Policy{Key: p})
	want := http.Header{"Origin": {"https://o.example"}, "Cookie": {"lang=en"}, "Accept-Encoding": {"gzip"}}
	if len(o.Header) != len(want) {
		t.Errorf("forwarded headers %v", o.Header)
	}
	for k, v := range want {
		if o.Header.Get(k) != v[0] {
			t.Errorf("%s = %q, want %q", k, o.Header.Get(k), v[0])
		}
	}
	if o.URL.RawQuery != "a=A&v=2&v=1" || o.URL.EscapedPath() != "/p/a%2Fb" || o.Host != "Example.com" || o.RequestURI != "" {
		t.Errorf("url %s query %q host %q", o.URL, o.URL.RawQuery, o.Host)
	}
	if r.Header.Get("X-Forwarded-Host") == "" || r.URL.RawQuery == o.URL.RawQuery {
		t.Error("the viewer request was modified")
	}
	// No key policy: only identity Accept-Encoding (so Go's transport does
	// not decode gzip behind the cache's back).
	o = OriginRequest(context.Background(), r, Policy{})
	if len(o.Header) != 1 || o.Header.Get("Accept-Encoding") != "identity" || o.URL.RawQuery != "" {
		t.Errorf("bare forward: %v %q", o.Header, o.URL.RawQuery)
	}
	// What the key holds is exactly what is forwarded: the forwarded
	// request has the same key as the viewer's.
	if Key(OriginRequest(context.Background(), r, Policy{Key: p}), p) != Key(r, p) {
		t.Error("origin request keys differently from the viewer request")
	}
}
