package originconn

import (
	"testing"
)

// FuzzFramer feeds any response bytes to the framer that tells when an
// origin response has ended (so its connection can be reused): never a
// panic, and the verdict does not depend on how the bytes arrive, whole or
// in reads of any size, since TCP decides that. Seeds: the responses of
// TestFramerFindsTheEndOfResponses.
func FuzzFramer(f *testing.F) {
	f.Fuzz(func(t *testing.T, request, response string, size uint8) {
		var whole, pieces framer
		whole.request([]byte(request))
		pieces.request([]byte(request))
		whole.feed([]byte(response))
		n := 1 + int(size)%17
		for b := []byte(response); len(b) > 0; {
			k := min(n, len(b))
			pieces.feed(b[:k])
			b = b[k:]
		}
		if whole.busy() != pieces.busy() || whole.state != pieces.state {
			t.Fatalf("whole: state %d, in reads of %d: state %d, for %q", whole.state, n, pieces.state, response)
		}
	})
}
