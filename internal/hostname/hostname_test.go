package hostname

import "testing"

func TestWithoutPort(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"www.example.test", "www.example.test"},
		{"www.example.test:443", "www.example.test"},
		{"WWW.Example.Test.:8443", "WWW.Example.Test."},
		{"127.0.0.1:80", "127.0.0.1"},
		{"[::1]:443", "::1"},
		{"[::1]", "[::1]"}, // no port: as it is
		{"::1", "::1"},     // too many colons for a port: as it is
		{"host:", "host"},  // an empty port is still a port
		{"", ""},
	} {
		if got := WithoutPort(tt.in); got != tt.want {
			t.Errorf("WithoutPort(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func BenchmarkWithoutPortNoPort(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = WithoutPort("www.example.test")
	}
}
