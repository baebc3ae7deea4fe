package cache

import (
	"context"
	"encoding/binary"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/edgegate/edgegate/internal/hostname"
)

// Key layout: "K1", then sections in a fixed order, each a count followed by
// length-prefixed strings (uvarint lengths):
//
//	host | method class | path | nQuery {name value} |
//	nHeaders {name nValues {value}} | nCookies {name value} | accept-encoding
//
// Every part carries its length, so the bytes of one key can be parsed back
// in exactly one way: no crafted path, parameter, header or cookie can make
// two different requests share a key. A variant key (VaryKey) is a complete
// primary key followed by more sections, so it can never equal a primary key.
const keyMagic = "K1"

// Key computes the primary cache key of a viewer request under a key
// policy: the lower-cased host without port, the path as sent, and only the
// query parameters, headers and cookies the policy selects, in canonical
// order. GET and HEAD share a key; OPTIONS has its own.
func Key(r *http.Request, p KeyPolicy) string {
	b := make([]byte, 0, 128)
	b = append(b, keyMagic...)
	b = appendString(b, keyHost(r.Host))
	method := "G"
	if r.Method == http.MethodOptions {
		method = "O"
	}
	b = appendString(b, method)
	b = appendString(b, r.URL.EscapedPath())
	q := selectQuery(r.URL.RawQuery, p.QueryStrings)
	b = binary.AppendUvarint(b, uint64(len(q)))
	for _, kv := range q {
		b = appendString(appendString(b, kv[0]), kv[1])
	}
	names := keyHeaderNames(p.Headers)
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, n := range names {
		vs := r.Header.Values(n)
		b = appendString(b, n)
		b = binary.AppendUvarint(b, uint64(len(vs)))
		for _, v := range vs {
			b = appendString(b, v)
		}
	}
	cs := selectCookies(r, p.Cookies)
	b = binary.AppendUvarint(b, uint64(len(cs)))
	for _, c := range cs {
		b = appendString(appendString(b, c.Name), c.Value)
	}
	b = appendString(b, acceptEncoding(r.Header, p))
	return string(b)
}

// VaryKey is the key of the variant selected by the Vary fields of a stored
// response: the primary key, a marker, then each field's values in the
// viewer's request (RFC 9111 §4.1). Field values are normalised as RFC 9110
// allows: lines joined with ",", blanks around items and their parameters
// trimmed, and lower case for the Accept fields, whose values are
// case-insensitive.
func VaryKey(primary string, fields []string, viewer http.Header) string {
	b := make([]byte, 0, len(primary)+64)
	b = append(b, primary...)
	b = append(b, 'V')
	b = binary.AppendUvarint(b, uint64(len(fields)))
	for _, f := range fields {
		b = appendString(b, f)
		vs := viewer.Values(f)
		if len(vs) == 0 {
			b = append(b, 0) // absent differs from present-but-empty
			continue
		}
		b = append(b, 1)
		items := make([]string, 0, len(vs))
		for _, v := range vs {
			for _, it := range strings.Split(v, ",") {
				params := strings.Split(it, ";")
				for i := range params {
					params[i] = strings.TrimSpace(params[i])
				}
				items = append(items, strings.Join(params, ";"))
			}
		}
		v := strings.Join(items, ",")
		if strings.HasPrefix(f, "Accept") {
			v = strings.ToLower(v)
		}
		b = appendString(b, v)
	}
	return string(b)
}

// keyHost lower-cases the Host and drops a port: the edge routes by name
// only, so ":443" must not split the cache.
func keyHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(hostname.WithoutPort(h)), ".")
}

func keyHeaderNames(hs []string) []string {
	out := make([]string, 0, len(hs))
	for _, h := range hs {
		out = append(out, http.CanonicalHeaderKey(h))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// selectQuery parses a raw query into decoded name/value pairs, keeps the
// selected names, and orders them by name (stably, so repeated names keep
// their relative order, which origins that take the first or last value
// depend on). "a" and "a=" are the same parameter.
func selectQuery(raw string, s Selection) [][2]string {
	if raw == "" || s.none() {
		return nil
	}
	var out [][2]string
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		name, value, _ := strings.Cut(part, "=")
		name, value = unescapeQuery(name), unescapeQuery(value)
		if s.has(name) {
			out = append(out, [2]string{name, value})
		}
	}
	slices.SortStableFunc(out, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	return out
}

// unescapeQuery decodes a query component; an invalid escape is kept
// verbatim, and since forwarding re-encodes the same decoded form, the key
// and the origin always agree.
func unescapeQuery(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

func encodeQuery(q [][2]string) string {
	var b strings.Builder
	for i, kv := range q {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(kv[0]))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(kv[1]))
	}
	return b.String()
}

func selectCookies(r *http.Request, s Selection) []*http.Cookie {
	if s.none() {
		return nil
	}
	var out []*http.Cookie
	for _, c := range r.Cookies() {
		if s.has(c.Name) {
			out = append(out, c)
		}
	}
	slices.SortStableFunc(out, func(a, b *http.Cookie) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// acceptEncoding normalises Accept-Encoding to the one coding the edge
// would answer with: the best the policy enables and the viewer accepts
// (with q > 0), br before zstd before gzip, or "". One coding, not the
// set, so there is at most one stored variant per encoding: "gzip, br" and
// "br" share the br variant.
func acceptEncoding(h http.Header, p KeyPolicy) string {
	if !p.AcceptEncodingBrotli && !p.AcceptEncodingGzip && !p.AcceptEncodingZstd {
		return ""
	}
	var br, zs, gz bool
	for _, v := range h.Values("Accept-Encoding") {
		for it := range strings.SplitSeq(v, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(it), ";")
			// q=0 means "not acceptable"; the parameter name is
			// case-insensitive (RFC 9110 §5.6.6), so Q=0 too (found by fuzzing).
			if q := strings.TrimSpace(params); len(q) >= 2 && (q[0] == 'q' || q[0] == 'Q') && q[1] == '=' && strings.Trim(q[2:], "0.") == "" {
				continue
			}
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "br":
				br = br || p.AcceptEncodingBrotli
			case "zstd":
				zs = zs || p.AcceptEncodingZstd
			case "gzip":
				gz = gz || p.AcceptEncodingGzip
			}
		}
	}
	switch {
	case br:
		return "br"
	case zs:
		return "zstd"
	case gz:
		return "gzip"
	}
	return ""
}

// OriginRequest is the request to send the origin for a viewer request
// under policy p: the cache key's parts plus what the origin request policy
// (p.Forward) selects. It keeps the method, URL path and Host (the proxy
// rewrites Host unless p.Forward.Host, and adds its own Via and
// X-Forwarded-For/-Proto/-Host). Never forwarded: hop-by-hop fields and
// those named in Connection, the viewer's X-Forwarded-For/-Proto (the proxy
// sets them), and the override headers (X-Original-URL, X-Forwarded-Host,
// X-HTTP-Method-Override, ...) unless the key or an allow-list names them.
//
// For a request the cache answers (p.Cacheable) it also drops the body, the
// viewer's conditional and Range headers (the cache sets its own, see
// Conditional) and normalises Accept-Encoding as the key does, so that what
// is stored never depends on them. Other requests keep their body.
func OriginRequest(ctx context.Context, r *http.Request, p Policy) *http.Request {
	out := Forwarded(ctx, r, p)
	if p.Cacheable(r) {
		out.Header.Set("Accept-Encoding", forwardedAcceptEncoding(r.Header, p.Key))
		for _, f := range []string{"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range", "Range", "Expect"} {
			out.Header.Del(f)
		}
		out.Body, out.ContentLength, out.GetBody = http.NoBody, 0, nil
		out.Trailer = nil
		out.TransferEncoding = nil
	}
	return out
}

// Forwarded is the viewer request filtered by the origin request policy
// alone (with the key's parts), body, method and conditionals kept: what a
// behavior that does not cache sends its origin. Accept-Encoding, when the
// policy does not forward it, is the key's normalised value or identity.
func Forwarded(ctx context.Context, r *http.Request, p Policy) *http.Request {
	// r.Clone less its header, which forwardHeader replaces: cloning the
	// viewer's whole header first cost a map and its values per request.
	out := r.WithContext(ctx)
	u := *r.URL
	out.URL = &u
	out.Trailer = r.Trailer.Clone()
	out.TransferEncoding = slices.Clone(r.TransferEncoding)
	out.RequestURI = ""
	out.URL.RawQuery = forwardQuery(r.URL.RawQuery, p.Key.QueryStrings, p.Forward.QueryStrings)
	out.URL.ForceQuery = false
	out.Header = forwardHeader(r, p)
	if !p.Forward.Headers.hasHeader("Accept-Encoding") {
		out.Header.Set("Accept-Encoding", forwardedAcceptEncoding(r.Header, p.Key))
	}
	out.Close = false
	return out
}

// forwardedAcceptEncoding is the Accept-Encoding sent to the origin for a
// cached request: the key's normalised value, or an explicit identity,
// which stops Go's transport from asking for gzip on its own and
// transparently decoding (the stored body would disagree with the stored
// headers).
func forwardedAcceptEncoding(h http.Header, kp KeyPolicy) string {
	if ae := acceptEncoding(h, kp); ae != "" {
		return ae
	}
	return "identity"
}

// forwardQuery is the query sent to the origin: the raw query unchanged
// when either selection takes every parameter, else the selected ones in
// the key's canonical form.
func forwardQuery(raw string, key, fwd Selection) string {
	if (key.All && len(key.Except) == 0) || (fwd.All && len(fwd.Except) == 0) {
		return raw
	}
	either := Selection{Names: append(slices.Clone(key.Names), fwd.Names...)}
	if key.All || fwd.All {
		either = Selection{All: true}
		for _, n := range append(slices.Clone(key.Except), fwd.Except...) {
			if !key.has(n) && !fwd.has(n) {
				either.Except = append(either.Except, n)
			}
		}
	}
	return encodeQuery(selectQuery(raw, either))
}

// forwardHeader selects the viewer header fields for the origin.
func forwardHeader(r *http.Request, p Policy) http.Header {
	named := map[string]bool{}
	for _, c := range r.Header.Values("Connection") {
		for _, f := range fieldList(c) {
			named[f] = true
		}
	}
	keyed := keyHeaderNames(p.Key.Headers)
	fwd := p.Forward.Headers
	out := make(http.Header, len(r.Header))
	for k, vs := range r.Header {
		switch {
		case named[k] || slices.Contains(hopHeaders, k), k == "Cookie", k == "Accept-Encoding" && !fwd.hasHeader(k),
			k == "X-Forwarded-For", k == "X-Forwarded-Proto":
			continue
		case slices.Contains(keyed, k), fwd.namesHeader(k),
			fwd.hasHeader(k) && !slices.Contains(overrideHeaders, k):
			out[k] = slices.Clone(vs)
		}
	}
	fc := p.Forward.Cookies
	if fc.All && len(fc.Except) == 0 {
		if vs := r.Header.Values("Cookie"); len(vs) > 0 {
			out["Cookie"] = slices.Clone(vs)
		}
		return out
	}
	var parts []string
	for _, c := range r.Cookies() {
		if p.Key.Cookies.has(c.Name) || fc.has(c.Name) {
			parts = append(parts, c.Name+"="+c.Value)
		}
	}
	if len(parts) > 0 {
		out.Set("Cookie", strings.Join(parts, "; "))
	}
	return out
}

// unkeyedCredentials reports whether an origin request carries credentials
// that neither the key nor the response's Vary separates: Authorization, or
// a cookie the key does not select. The response to it could be one
// viewer's own.
func unkeyedCredentials(originReq *http.Request, k KeyPolicy, vary []string) bool {
	if originReq.Header.Get("Authorization") != "" && !slices.Contains(keyHeaderNames(k.Headers), "Authorization") &&
		!slices.Contains(vary, "Authorization") {
		return true
	}
	if originReq.Header.Get("Cookie") == "" || slices.Contains(vary, "Cookie") {
		return false
	}
	for _, c := range originReq.Cookies() {
		if !k.Cookies.has(c.Name) {
			return true
		}
	}
	return false
}
