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
	mustUnderstand                        bool
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
			case "must-understand":
				cc.mustUnderstand = true
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

// httpDate parses an HTTP date (RFC 9110 §5.6.7): IMF-fixdate or one of
// the two obsolete formats, exactly; ok is false for anything else (extra
// spaces, a one-digit hour, "0"), which Expires takes as already expired.
// Go's http.ParseTime alone is lenient about both.
func httpDate(v string) (time.Time, bool) {
	if !dateShape(v) {
		return time.Time{}, false
	}
	t, err := http.ParseTime(v)
	return t, err == nil
}

// dateShape checks the character classes of the three HTTP date formats:
// 'a' a letter, '9' a digit, '_' a space or digit; anything else literal.
func dateShape(v string) bool {
	match := func(shape, v string) bool {
		if len(shape) != len(v) {
			return false
		}
		for i := 0; i < len(v); i++ {
			c := v[i]
			switch shape[i] {
			case 'a':
				if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
					return false
				}
			case '9':
				if c < '0' || c > '9' {
					return false
				}
			case '_':
				if c != ' ' && (c < '0' || c > '9') {
					return false
				}
			default:
				if c != shape[i] {
					return false
				}
			}
		}
		return true
	}
	if match("aaa, 99 aaa 9999 99:99:99 GMT", v) || match("aaa aaa _9 99:99:99 9999", v) {
		return true
	}
	// rfc850-date: a full day name, then a fixed tail.
	day, rest, ok := strings.Cut(v, ", ")
	return ok && len(day) >= 6 && match(strings.Repeat("a", len(day)), day) && match("99-aaa-99 99:99:99 GMT", rest)
}

// ageValue is the Age header's value in seconds (RFC 9111 §5.1): of a list
// (or several field lines) the first member, 0 when it is absent or
// invalid.
func ageValue(h http.Header) int64 {
	v := h.Get("Age")
	if v == "" {
		return 0
	}
	v, _, _ = strings.Cut(v, ",")
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return maxDelta // all digits but too large: RFC 9111 §1.2.2
	}
	return min(n, maxDelta)
}

// targetedFields are the RFC 9213 targeted cache-control fields edgegate
// obeys, most specific first.
var targetedFields = []string{"Edgegate-Cdn-Cache-Control", "Cdn-Cache-Control"}

// OwnTargetedField is edgegate's own targeted field: it speaks to the edge
// only, so the edge never passes it on to viewers.
const OwnTargetedField = "Edgegate-Cdn-Cache-Control"

// responseCacheControl is the cache-control that governs storing a
// response (RFC 9213 §2.2): the first targeted field with a valid,
// non-empty value, in which case Cache-Control and Expires are ignored;
// otherwise Cache-Control. targeted reports which.
func responseCacheControl(h http.Header) (cc cacheControl, targeted bool) {
	for _, f := range targetedFields {
		if vs := h.Values(f); len(vs) > 0 {
			if cc, ok := parseTargeted(strings.Join(vs, ", ")); ok {
				return cc, true
			}
		}
	}
	return parseCacheControl(h), false
}

// parseTargeted reads a targeted field, a Structured Field Dictionary
// (RFC 8941 §3.2), into the same directives as Cache-Control. ok is false
// when the value does not parse, is empty, or gives a known directive a
// value of the wrong type (max-age="60"): the field is then ignored as a
// whole, as if absent (RFC 9213 §2.1). Unknown directives are skipped.
func parseTargeted(v string) (cc cacheControl, ok bool) {
	cc = cacheControl{maxAge: absent, sMaxAge: absent, staleWhileRevalidate: absent, staleIfError: absent}
	p := sfParser{s: strings.TrimLeft(v, " ")}
	if p.s == "" {
		return cc, false
	}
	for {
		name, val, ok := p.member()
		if !ok {
			return cc, false
		}
		typed := true
		delta := func(dst *int64) {
			n, isInt := val.(int64)
			if typed = isInt && n >= 0; typed {
				*dst = min(n, maxDelta)
			}
		}
		flag := func(dst *bool, fields *[]string) {
			switch x := val.(type) {
			case bool:
				*dst = x
			case string:
				if typed = fields != nil; typed {
					*fields = append(*fields, fieldList(x)...)
				}
			default:
				typed = false
			}
		}
		switch name {
		case "no-store":
			flag(&cc.noStore, nil)
		case "no-cache":
			flag(&cc.noCache, &cc.noCacheFields)
		case "private":
			flag(&cc.private, &cc.privateFields)
		case "public":
			flag(&cc.public, nil)
		case "must-revalidate":
			flag(&cc.mustRevalidate, nil)
		case "proxy-revalidate":
			flag(&cc.proxyRevalidate, nil)
		case "max-age":
			delta(&cc.maxAge)
		case "s-maxage":
			delta(&cc.sMaxAge)
		case "stale-while-revalidate":
			delta(&cc.staleWhileRevalidate)
		case "stale-if-error":
			delta(&cc.staleIfError)
		}
		if !typed {
			return cc, false
		}
		p.s = strings.TrimLeft(p.s, " \t")
		if p.s == "" {
			return cc, true
		}
		if p.s[0] != ',' {
			return cc, false
		}
		p.s = strings.TrimLeft(p.s[1:], " \t")
		if p.s == "" {
			return cc, false // trailing comma
		}
	}
}

// sfParser is the part of an RFC 8941 parser that a dictionary of bare
// items needs; inner lists are refused (no cache directive takes one).
type sfParser struct{ s string }

// member reads key[=bare-item] followed by parameters, which are skipped.
// A key without a value is the boolean true.
func (p *sfParser) member() (name string, val any, ok bool) {
	if name, ok = p.key(); !ok {
		return "", nil, false
	}
	val = true
	if strings.HasPrefix(p.s, "=") {
		p.s = p.s[1:]
		if val, ok = p.bareItem(); !ok {
			return "", nil, false
		}
	}
	for strings.HasPrefix(p.s, ";") {
		p.s = strings.TrimLeft(p.s[1:], " ")
		if _, ok = p.key(); !ok {
			return "", nil, false
		}
		if strings.HasPrefix(p.s, "=") {
			p.s = p.s[1:]
			if _, ok = p.bareItem(); !ok {
				return "", nil, false
			}
		}
	}
	return name, val, true
}

func (p *sfParser) key() (string, bool) {
	if p.s == "" || !(p.s[0] >= 'a' && p.s[0] <= 'z' || p.s[0] == '*') {
		return "", false
	}
	i := 1
	for i < len(p.s) {
		c := p.s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == '*') {
			break
		}
		i++
	}
	k := p.s[:i]
	p.s = p.s[i:]
	return k, true
}

func (p *sfParser) bareItem() (any, bool) {
	if p.s == "" {
		return nil, false
	}
	switch c := p.s[0]; {
	case c == '-' || c >= '0' && c <= '9':
		i := 0
		if c == '-' {
			i = 1
		}
		start := i
		for i < len(p.s) && (p.s[i] >= '0' && p.s[i] <= '9' || p.s[i] == '.') {
			i++
		}
		num := p.s[:i]
		p.s = p.s[i:]
		if i == start || i-start > 15 {
			return nil, false
		}
		if strings.Contains(num, ".") {
			return num, true // a decimal: valid, but no directive takes one
		}
		n, err := strconv.ParseInt(num, 10, 64)
		return n, err == nil
	case c == '"':
		var b strings.Builder
		for i := 1; i < len(p.s); i++ {
			switch ch := p.s[i]; {
			case ch == '\\':
				if i+1 >= len(p.s) || (p.s[i+1] != '"' && p.s[i+1] != '\\') {
					return nil, false
				}
				i++
				b.WriteByte(p.s[i])
			case ch == '"':
				p.s = p.s[i+1:]
				return b.String(), true
			case ch < 0x20 || ch > 0x7e:
				return nil, false
			default:
				b.WriteByte(ch)
			}
		}
		return nil, false
	case c == '?':
		if len(p.s) < 2 || (p.s[1] != '0' && p.s[1] != '1') {
			return nil, false
		}
		v := p.s[1] == '1'
		p.s = p.s[2:]
		return v, true
	case c == ':':
		end := strings.IndexByte(p.s[1:], ':')
		if end < 0 {
			return nil, false
		}
		p.s = p.s[end+2:]
		return []byte(nil), true
	case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '*':
		i := 1
		for i < len(p.s) && (isTchar(p.s[i]) || p.s[i] == ':' || p.s[i] == '/') {
			i++
		}
		tok := p.s[:i]
		p.s = p.s[i:]
		return sfToken(tok), true
	}
	return nil, false
}

// sfToken is a Structured Field token, told apart from a string.
type sfToken string

func isTchar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
