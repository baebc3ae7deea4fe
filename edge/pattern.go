package edge

// matchPath reports whether path matches a CloudFront path pattern: `*`
// matches any run of characters (slashes included), `?` exactly one; the
// comparison is case-sensitive and a leading slash is optional in the
// pattern.
func matchPath(pattern, path string) bool {
	if len(pattern) > 0 && pattern[0] != '/' && pattern[0] != '*' {
		pattern = "/" + pattern
	}
	// Iterative glob match with single-star backtracking: linear in
	// practice, and never exponential for crafted paths.
	p, s := 0, 0
	star, mark := -1, 0
	for s < len(path) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			// Before the literal case: a '*' in the pattern is a wildcard
			// even where the path has a '*' of its own.
			star, mark = p, s
			p++
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == path[s]):
			p++
			s++
		case star >= 0:
			p = star + 1
			mark++
			s = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
