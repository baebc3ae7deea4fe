package edge

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// FuzzMatchPath compares the behavior path-pattern matcher with a regular
// expression built from the same CloudFront pattern (* any run, ? one
// character, literal otherwise, leading slash optional) on ASCII input,
// and bounds its time on any input: a crafted path must not make routing
// slow. Seeds: the path patterns of configs/ and the README, and paths of
// the routing suite.
func FuzzMatchPath(f *testing.F) {
	f.Fuzz(func(t *testing.T, pattern, path string) {
		if len(pattern) > 256 || len(path) > 4096 {
			return
		}
		start := time.Now()
		got := matchPath(pattern, path)
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Fatalf("matchPath(%q, %d-byte path) took %v", pattern, len(path), d)
		}
		if !isASCII(pattern) || !isASCII(path) {
			return
		}
		p := pattern
		if p != "" && p[0] != '/' && p[0] != '*' {
			p = "/" + p
		}
		var re strings.Builder
		re.WriteString(`(?s)\A`)
		for _, c := range p {
			switch c {
			case '*':
				re.WriteString(".*")
			case '?':
				re.WriteString(".")
			default:
				re.WriteString(regexp.QuoteMeta(string(c)))
			}
		}
		re.WriteString(`\z`)
		if want := regexp.MustCompile(re.String()).MatchString(path); got != want {
			t.Fatalf("matchPath(%q, %q) = %v, want %v", pattern, path, got, want)
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
