// Package urlpath normalises request paths the way the edge routes, caches
// and forwards them, so that one resource has one path: a traversal such as
// /dc/../api/secret or /dc/%2e%2e/api/secret is /api/secret for behavior
// matching, for the cache key and for the origin alike.
//
// Normalize follows RFC 3986 §6.2.2 as CloudFront does before matching:
// percent-encoded unreserved characters (ALPHA, DIGIT, "-", ".", "_", "~")
// are decoded and other escapes get upper-case hex; dot segments are
// removed (§5.2.4), after that decoding so that "%2e%2e" counts as "..";
// runs of slashes are merged into one, as nginx's merge_slashes does. An
// encoded slash (%2F) stays encoded and is never a segment boundary; a
// stray "%" becomes "%25".
package urlpath

import "strings"

// Normalize returns the normalised form of an escaped path (URL.EscapedPath
// of an origin-form request target, starting with "/"). It is idempotent:
// Normalize(Normalize(p)) == Normalize(p). A path not starting with "/"
// is returned with one added.
func Normalize(escaped string) string {
	if isNormal(escaped) {
		return escaped // most paths: nothing to build
	}
	return normalize(escaped)
}

// isNormal reports a path that Normalize would return unchanged, without
// building anything: absolute, no escapes (decoding them may change the
// path), no empty segment but a final one (a trailing slash), no dot
// segment.
func isNormal(p string) bool {
	if p == "" || p[0] != '/' || strings.IndexByte(p, '%') >= 0 {
		return false
	}
	for seg := p[1:]; ; {
		s, rest, more := strings.Cut(seg, "/")
		if s == "." || s == ".." || (s == "" && more) {
			return false
		}
		if !more {
			return true
		}
		seg = rest
	}
}

// normalize is Normalize the long way, for any path.
func normalize(escaped string) string {
	var b strings.Builder
	b.Grow(len(escaped) + 1)
	if !strings.HasPrefix(escaped, "/") {
		b.WriteByte('/')
	}
	for i := 0; i < len(escaped); i++ {
		c := escaped[i]
		if c == '%' && i+2 < len(escaped) && isHex(escaped[i+1]) && isHex(escaped[i+2]) {
			d := unhex(escaped[i+1])<<4 | unhex(escaped[i+2])
			if unreserved(d) {
				b.WriteByte(d)
			} else {
				b.WriteByte('%')
				b.WriteByte(upper(escaped[i+1]))
				b.WriteByte(upper(escaped[i+2]))
			}
			i += 2
			continue
		}
		if c == '%' {
			// A stray % (never valid in a URL; net/http refuses it) is
			// escaped, so that no decoding here can form a new escape.
			b.WriteString("%25")
			continue
		}
		b.WriteByte(c)
	}
	return removeDots(b.String())
}

// removeDots merges slashes and resolves "." and ".." segments; ".." at the
// root stays at the root. A trailing slash, or a final dot segment, leaves
// the path ending in "/".
func removeDots(p string) string {
	segs := strings.Split(p[1:], "/")
	out := make([]string, 0, len(segs))
	trailing := false
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case "", ".":
			trailing = last
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			trailing = last
		default:
			out = append(out, s)
			trailing = false
		}
	}
	if len(out) == 0 {
		return "/"
	}
	r := "/" + strings.Join(out, "/")
	if trailing {
		r += "/"
	}
	return r
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

func upper(c byte) byte {
	if 'a' <= c && c <= 'f' {
		return c - 'a' + 'A'
	}
	return c
}
