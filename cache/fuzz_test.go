package cache

import (
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// FuzzCacheControl parses any Cache-Control value. Never a panic; every
// delta-seconds is absent or within [0, 2^31]; directive names are
// case-insensitive; and a list split over two field lines at a comma means
// what it means on one line (RFC 9110 §5.3). Seeds: Cache-Control values of
// real origins (CDNs, frameworks, the RFC examples) and broken ones.
func FuzzCacheControl(f *testing.F) {
	f.Fuzz(func(t *testing.T, a, b string) {
		one := parseCacheControl(http.Header{"Cache-Control": {a + ", " + b}})
		for _, d := range []int64{one.maxAge, one.sMaxAge, one.staleWhileRevalidate, one.staleIfError} {
			if d != absent && (d < 0 || d > maxDelta) {
				t.Fatalf("delta-seconds %d out of range for %q", d, a+", "+b)
			}
		}
		if strings.ContainsRune(a+b, '"') {
			return // a quoted string may hold commas and letters of any case
		}
		if two := parseCacheControl(http.Header{"Cache-Control": {a, b}}); !reflect.DeepEqual(one, two) {
			t.Fatalf("%q and %q on two lines: %+v; on one line: %+v", a, b, two, one)
		}
		upper := parseCacheControl(http.Header{"Cache-Control": {strings.ToUpper(a + ", " + b)}})
		one.noCacheFields, one.privateFields, upper.noCacheFields, upper.privateFields = nil, nil, nil, nil
		if !reflect.DeepEqual(one, upper) {
			t.Fatalf("upper case changed the meaning of %q: %+v, %+v", a+", "+b, upper, one)
		}
	})
}

// FuzzTargetedCacheControl parses any CDN-Cache-Control /
// Edgegate-CDN-Cache-Control value (RFC 9213, a Structured Field
// Dictionary). Never a panic; a value that parses has deltas within
// [0, 2^31] and parses the same with the surrounding spaces RFC 8941 lets
// a parser drop; a targeted field that parses governs storage in place of
// Cache-Control, one that does not is ignored as a whole. Seeds: values
// from RFC 9213 and CDN documentation, and wrongly typed ones.
func FuzzTargetedCacheControl(f *testing.F) {
	f.Fuzz(func(t *testing.T, v string) {
		cc, ok := parseTargeted(v)
		if !ok {
			if _, targeted := responseCacheControl(http.Header{"Cdn-Cache-Control": {v}, "Cache-Control": {"max-age=7"}}); targeted && strings.TrimSpace(v) != "" {
				t.Fatalf("an invalid targeted field %q was obeyed", v)
			}
			return
		}
		for _, d := range []int64{cc.maxAge, cc.sMaxAge, cc.staleWhileRevalidate, cc.staleIfError} {
			if d != absent && (d < 0 || d > maxDelta) {
				t.Fatalf("delta-seconds %d out of range for %q", d, v)
			}
		}
		if again, ok2 := parseTargeted("  " + v + "  "); !ok2 || !reflect.DeepEqual(again, cc) {
			t.Fatalf("surrounding spaces changed %q: %v %+v, was %+v", v, ok2, again, cc)
		}
		got, targeted := responseCacheControl(http.Header{"Cdn-Cache-Control": {v}, "Cache-Control": {"max-age=7, private"}})
		if !targeted || !reflect.DeepEqual(got, cc) {
			t.Fatalf("a valid targeted field %q did not govern: %v %+v", v, targeted, got)
		}
	})
}

// FuzzVaryKey: the variant key of a stored response depends on the
// viewer's Vary fields only through their normalised values (blanks around
// items and parameters, lines joined at commas, case for Accept-*), and two
// viewers whose normalised values differ never share a variant. Seeds:
// Accept-Encoding, Accept-Language, Accept and Cookie values of real
// browsers.
func FuzzVaryKey(f *testing.F) {
	norm := func(field string, vs []string) string {
		var items []string
		for _, v := range vs {
			for it := range strings.SplitSeq(v, ",") {
				ps := strings.Split(it, ";")
				for i := range ps {
					ps[i] = strings.TrimSpace(ps[i])
				}
				items = append(items, strings.Join(ps, ";"))
			}
		}
		s := strings.Join(items, ",")
		if strings.HasPrefix(field, "Accept") {
			s = strings.ToLower(s)
		}
		return s
	}
	f.Fuzz(func(t *testing.T, field, v1, v2 string, split bool) {
		field = http.CanonicalHeaderKey(field)
		if field == "" {
			return
		}
		const primary = "primary"
		h1 := http.Header{field: {v1}}
		h2 := http.Header{field: {v2}}
		if split {
			// The same list sent on two field lines, with blanks added.
			if i := strings.IndexByte(v2, ','); i >= 0 {
				h2[field] = []string{v2[:i] + " ", " " + v2[i+1:]}
			}
		}
		k1, k2 := VaryKey(primary, []string{field}, h1), VaryKey(primary, []string{field}, h2)
		if !strings.HasPrefix(k1, primary) || k1 == primary {
			t.Fatalf("variant key %q is not the primary key plus a suffix", k1)
		}
		same := norm(field, h1.Values(field)) == norm(field, h2.Values(field))
		if (k1 == k2) != same {
			t.Fatalf("%s: %q and %q: same key %v, same normalised value %v", field, h1.Values(field), h2.Values(field), k1 == k2, same)
		}
		if absent := VaryKey(primary, []string{field}, http.Header{}); absent == k1 {
			t.Fatalf("%s: the value %q shares a variant with no value", field, v1)
		}
	})
}

// FuzzAcceptEncoding: the Accept-Encoding the key and the origin request
// use is one of the four normal forms, whatever the viewer sent, and does
// not depend on case. Seeds: real browsers' and tools' values.
func FuzzAcceptEncoding(f *testing.F) {
	p := KeyPolicy{AcceptEncodingGzip: true, AcceptEncodingBrotli: true}
	f.Fuzz(func(t *testing.T, v string) {
		got := acceptEncoding(http.Header{"Accept-Encoding": {v}}, p)
		if !slices.Contains([]string{"", "gzip", "br", "br,gzip"}, got) {
			t.Fatalf("Accept-Encoding %q normalised to %q", v, got)
		}
		if up := acceptEncoding(http.Header{"Accept-Encoding": {strings.ToUpper(v)}}, p); up != got {
			t.Fatalf("case changed %q: %q, %q", v, got, up)
		}
	})
}
