package cache

import (
	"context"
	"encoding/binary"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
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
// request as forwarded to the origin (RFC 9111 §4.1). Field values are
// normalised by joining lines with "," and trimming blanks around items.
func VaryKey(primary string, fields []string, originHeader http.Header) string {
	b := make([]byte, 0, len(primary)+64)
	b = append(b, primary...)
	b = append(b, 'V')
	b = binary.AppendUvarint(b, uint64(len(fields)))
	for _, f := range fields {
		b = appendString(b, f)
		vs := originHeader.Values(f)
		if len(vs) == 0 {
			b = append(b, 0) // absent differs from present-but-empty
			continue
		}
		b = append(b, 1)
		items := make([]string, 0, len(vs))
		for _, v := range vs {
			for _, it := range strings.Split(v, ",") {
				items = append(items, strings.TrimSpace(it))
			}
		}
		b = appendString(b, strings.Join(items, ","))
	}
	return string(b)
}

// keyHost lower-cases the Host and drops a port: the edge routes by name
// only, so ":443" must not split the cache.
func keyHost(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
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

// acceptEncoding normalises Accept-Encoding to the codings the policy
// enables and the viewer accepts (with q > 0), in a fixed order.
func acceptEncoding(h http.Header, p KeyPolicy) string {
	if !p.AcceptEncodingBrotli && !p.AcceptEncodingGzip {
		return ""
	}
	var br, gz bool
	for _, v := range h.Values("Accept-Encoding") {
		for it := range strings.SplitSeq(v, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(it), ";")
			if q := strings.TrimSpace(params); strings.HasPrefix(q, "q=") && strings.Trim(q[2:], "0.") == "" {
				continue // q=0 means "not acceptable"
			}
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "br":
				br = br || p.AcceptEncodingBrotli
			case "gzip":
				gz = gz || p.AcceptEncodingGzip
			}
		}
	}
	switch {
	case br && gz:
		return "br,gzip"
	case br:
		return "br"
	case gz:
		return "gzip"
	}
	return ""
}

// OriginRequest is the request to send the origin on a miss for a cacheable
// viewer request: what is not in the cache key is not forwarded, so nothing
// the key ignores (X-Forwarded-Host, X-Original-URL, an unkeyed cookie or
// parameter, a viewer's Range or conditional headers) can shape a stored
// response. It keeps the method, URL path and Host (the proxy rewrites Host
// and adds its own Via / X-Forwarded-For), the selected query in the key's
// canonical form, the keyed headers, the selected cookies and the normalised
// Accept-Encoding. The cache sets its own conditional headers (Conditional).
func OriginRequest(ctx context.Context, r *http.Request, p KeyPolicy) *http.Request {
	out := r.Clone(ctx)
	out.URL.RawQuery = encodeQuery(selectQuery(r.URL.RawQuery, p.QueryStrings))
	out.URL.ForceQuery = false
	out.RequestURI = ""
	out.Header = make(http.Header, len(p.Headers)+2)
	for _, n := range keyHeaderNames(p.Headers) {
		if vs := r.Header.Values(n); len(vs) > 0 {
			out.Header[n] = slices.Clone(vs)
		}
	}
	if cs := selectCookies(r, p.Cookies); len(cs) > 0 {
		parts := make([]string, len(cs))
		for i, c := range cs {
			parts[i] = c.Name + "=" + c.Value
		}
		out.Header.Set("Cookie", strings.Join(parts, "; "))
	}
	if ae := acceptEncoding(r.Header, p); ae != "" {
		out.Header.Set("Accept-Encoding", strings.ReplaceAll(ae, ",", ", "))
	} else {
		// An explicit identity stops Go's transport from asking for gzip on
		// its own and transparently decoding, which would store a body that
		// disagrees with the stored headers.
		out.Header.Set("Accept-Encoding", "identity")
	}
	out.Body, out.ContentLength, out.GetBody = http.NoBody, 0, nil
	out.Trailer = nil
	out.TransferEncoding = nil
	out.Close = false
	return out
}
