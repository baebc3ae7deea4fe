package urlpath

import "testing"

func TestNormalize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/", "/"},
		{"", "/"},
		{"/index.html", "/index.html"},
		{"/dc/../api/secret", "/api/secret"},
		{"/dc/%2e%2e/api/secret", "/api/secret"},
		{"/dc/%2E%2E/api/secret", "/api/secret"},
		{"/dc/.%2e/api/secret", "/api/secret"},
		{"/a/./b/", "/a/b/"},
		{"/a/b/..", "/a/"},
		{"/a/b/.", "/a/b/"},
		{"/../../etc/passwd", "/etc/passwd"},
		{"//a///b//", "/a/b/"},
		{"/a%2Fb", "/a%2Fb"},
		{"/a%2fb", "/a%2Fb"},
		{"/dc%2F..%2Fapi", "/dc%2F..%2Fapi"},
		{"/%7euser/%41%62%63", "/~user/Abc"},
		{"/caf%c3%a9", "/caf%C3%A9"},
		{"/a%20b", "/a%20b"},
		{"/100%", "/100%25"},
		{"/%%32%65", "/%252e"},
		{"relative", "/relative"},
	} {
		if got := Normalize(tc.in); got != tc.want || normalize(tc.in) != tc.want {
			t.Errorf("Normalize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzNormalize: normalising twice changes nothing, and the result is
// always an absolute path without dot segments or empty segments.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "/%2e%2e/x", "//a//b/", "/a%2Fb/%2E/c", "/%", "/%%2e2e/", "/.%2e/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		n := Normalize(p)
		if long := normalize(p); n != long {
			t.Fatalf("the shortcut changes the result: %q -> %q, the long way %q", p, n, long)
		}
		if n2 := Normalize(n); n2 != n {
			t.Fatalf("not idempotent: %q -> %q -> %q", p, n, n2)
		}
		if n[0] != '/' {
			t.Fatalf("%q -> %q: not absolute", p, n)
		}
		if contains(n, "//") {
			t.Fatalf("%q -> %q has an empty segment", p, n)
		}
		for _, bad := range []string{"/./", "/../"} {
			if contains(n+"/", bad) {
				t.Fatalf("%q -> %q contains %q", p, n, bad)
			}
		}
	})
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
