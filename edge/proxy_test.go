package edge

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestProxyStreamsAsTheOriginSends: the edge holds no part of a response
// back waiting for the rest. An event stream's header reaches the viewer
// before the first event exists, and a body of known length arrives part
// by part as the origin writes it (the header block then travels with the
// first part, not in a write of its own). Over HTTP/2 too, where the edge
// holds a header block back for a moment, waiting for its body.
func TestProxyStreamsAsTheOriginSends(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("h2=%v", h2), func(t *testing.T) { testProxyStreams(t, h2) })
	}
}

func testProxyStreams(t *testing.T, h2 bool) {
	e := newTestEnv(t)
	release := make(chan struct{})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		switch r.URL.Path {
		case "/events":
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			_ = rc.Flush()
			<-release
			fmt.Fprint(w, "data: one\n\n")
		case "/parts":
			w.Header().Set("Content-Length", "10")
			fmt.Fprint(w, "first")
			_ = rc.Flush()
			<-release
			fmt.Fprint(w, "-last")
		}
	})
	addr, _ := e.httpsOrigin("127.0.0.2", origin, "app.example.test")
	re := e.startEdge(e.edgeConfig("", fmt.Sprintf(`    origins: [{id: app, domain_name: app.example.test, connect_to: %q, trusted_ca: %q}]
    default_behavior: {target: app, cache_policy: disabled}`, addr, e.caFile)))
	c := re.client(h2)

	// The header arrives while the origin is still holding the first event:
	// Do returns only once the viewer has it.
	resp, err := c.Get("https://www.example.test/events")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[bool]int{false: 1, true: 2}[h2]; resp.ProtoMajor != want {
		t.Fatalf("%s, want HTTP/%d", resp.Proto, want)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	resp.Body.Close()

	resp, err = c.Get("https://www.example.test/parts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "first" {
		t.Fatalf("first part: %q, %v", first, err)
	}
	close(release)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || !strings.HasPrefix(string(rest), "-last") {
		t.Fatalf("rest: %q, %v", rest, err)
	}
}

func TestBufferPool(t *testing.T) {
	var bp bufferPool
	b := bp.Get()
	if len(b) != copyBufferSize {
		t.Fatalf("buffer of %d bytes, want %d", len(b), copyBufferSize)
	}
	b[0] = 'x'
	bp.Put(b)
	bp.Put(make([]byte, 10)) // not ours: dropped, never handed out short
	for range 3 {
		if got := bp.Get(); len(got) != copyBufferSize {
			t.Fatalf("buffer of %d bytes after Put of a short one", len(got))
		}
	}
	var none *bufferPool // a target built without a pool still copies
	if got := none.Get(); len(got) != copyBufferSize {
		t.Fatalf("nil pool: %d bytes", len(got))
	}
	none.Put(b)
}
