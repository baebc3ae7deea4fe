package cache

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// absent marks a delta-seconds directive that was not given.
const absent = -1

// maxDelta is the largest delta-seconds value honoured; RFC 9111 §1.2.2 says
// larger values are to be taken as 2^31.
const maxDelta = 1 << 31

// cacheControl is a parsed Cache-Control response header. Delta-seconds
// fields hold absent when the directive is missing.
type cacheControl struct {
	noStore, noCache, private, public     bool
	mustRevalidate, proxyRevalidate       bool
	noCacheFields, privateFields          []string
	maxAge, sMaxAge, staleWhileRevalidate int64
	staleIfError                          int64
}

// parseCacheControl parses every Cache-Control field line. A delta-seconds
// directive that is malformed, or repeated with different values, counts as 0
// (stale): RFC 9111 §4.2.1 allows treating conflicting freshness as stale,
// and erring towards revalidation is the safe side for a shared cache.
func parseCacheControl(h http.Header) cacheControl {
	cc := cacheControl{maxAge: absent, sMaxAge: absent, staleWhileRevalidate: absent, staleIfError: absent}
	for _, line := range h.Values("Cache-Control") {
		for len(line) > 0 {
			var name, value string
			name, value, line = nextDirective(line)
			switch name {
			case "":
			case "no-store":
				cc.noStore = true
			case "no-cache":
				if value == "" {
					cc.noCache = true
				} else {
					cc.noCacheFields = append(cc.noCacheFields, fieldList(value)...)
				}
			case "private":
				if value == "" {
					cc.private = true
				} else {
					cc.privateFields = append(cc.privateFields, fieldList(value)...)
				}
			case "public":
				cc.public = true
			case "must-revalidate":
				cc.mustRevalidate = true
			case "proxy-revalidate":
				cc.proxyRevalidate = true
			case "max-age":
				cc.maxAge = mergeDelta(cc.maxAge, value)
			case "s-maxage":
				cc.sMaxAge = mergeDelta(cc.sMaxAge, value)
			case "stale-while-revalidate":
				cc.staleWhileRevalidate = mergeDelta(cc.staleWhileRevalidate, value)
			case "stale-if-error":
				cc.staleIfError = mergeDelta(cc.staleIfError, value)
			}
		}
	}
	return cc
}

// nextDirective splits the first directive off a Cache-Control list. Names
// are lower-cased (they are case-insensitive); quoted values are unquoted.
func nextDirective(s string) (name, value, rest string) {
	s = strings.TrimLeft(s, " \t,")
	i := strings.IndexAny(s, "=,")
	if i < 0 {
		return strings.ToLower(strings.TrimSpace(s)), "", ""
	}
	name = strings.ToLower(strings.TrimSpace(s[:i]))
	if s[i] == ',' {
		return name, "", s[i+1:]
	}
	s = strings.TrimLeft(s[i+1:], " \t")
	if strings.HasPrefix(s, `"`) {
		var b strings.Builder
		j := 1
		for ; j < len(s) && s[j] != '"'; j++ {
			if s[j] == '\\' && j+1 < len(s) {
				j++
			}
			b.WriteByte(s[j])
		}
		rest = s[min(j+1, len(s)):]
		if k := strings.IndexByte(rest, ','); k >= 0 {
			rest = rest[k+1:]
		} else {
			rest = ""
		}
		return name, b.String(), rest
	}
	if k := strings.IndexByte(s, ','); k >= 0 {
		return name, strings.TrimSpace(s[:k]), s[k+1:]
	}
	return name, strings.TrimSpace(s), ""
}

// fieldList splits the field names of a qualified private or no-cache.
func fieldList(v string) []string {
	var out []string
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, http.CanonicalHeaderKey(f))
		}
	}
	return out
}

// mergeDelta parses a delta-seconds value and folds it into a previous one.
func mergeDelta(prev int64, v string) int64 {
	d := parseDelta(v)
	if prev != absent && prev != d {
		return 0
	}
	return d
}

// parseDelta parses delta-seconds (RFC 9111 §1.2.2): digits only, capped at
// 2^31; anything else is 0 so that the response counts as stale.
func parseDelta(v string) int64 {
	if v == "" {
		return 0
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int64(c-'0')
		if n >= maxDelta {
			return maxDelta
		}
	}
	return n
}

func seconds(n int64) time.Duration { return time.Duration(n) * time.Second }

// httpDate parses an HTTP date; ok is false for an invalid one.
func httpDate(v string) (time.Time, bool) {
	if v == "" {
		return time.Time{}, false
	}
	t, err := http.ParseTime(v)
	return t, err == nil
}

// ageValue is the Age header's value in seconds, 0 when absent or invalid.
func ageValue(h http.Header) int64 {
	v := h.Get("Age")
	if v == "" {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return min(n, maxDelta)
}
