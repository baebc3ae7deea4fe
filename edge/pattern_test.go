package edge

import "testing"

func TestMatchPath(t *testing.T) {
	tests := []struct {
		pattern, path string
		want          bool
	}{
		{"/api/*", "/api/users/1", true},
		{"/api/*", "/api", false},
		{"api/*", "/api/x", true},
		{"*.jpg", "/images/a/b.jpg", true},
		{"/images/*.jpg", "/images/a.png", false},
		{"/images/*.jpg", "/IMAGES/a.jpg", false},
		{"/file?.txt", "/file1.txt", true},
		{"/file?.txt", "/file12.txt", false},
		{"*", "/anything", true},
		{"/index.html", "/index.html", true},
		{"/index.html", "/index.htm", false},
		{"/a*b*c", "/aXXbYYc", true},
		{"/a*b*c", "/aXXbYY", false},
	}
	for _, tt := range tests {
		if got := matchPath(tt.pattern, tt.path); got != tt.want {
			t.Errorf("matchPath(%q, %q) = %v, want %v", tt.pattern, tt.path, got, tt.want)
		}
	}
}
