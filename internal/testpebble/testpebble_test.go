package testpebble

import (
	"os"
	"testing"
)

// Start runs Pebble in-process for the test, in the test's temporary
// directory.
func TestStart(t *testing.T) {
	p := Start(t, Config{HTTPPort: 5002, TLSPort: 5001})
	if _, err := os.Stat(p.IssuerRoots); err != nil {
		t.Fatal(err)
	}
	if n := p.Orders(); n != 0 {
		t.Fatalf("%d orders before any client", n)
	}
}
