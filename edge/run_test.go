package edge

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgegate/edgegate/internal/syncbuf"
	"github.com/rs/zerolog"
)

// eventually polls cond until it holds, failing after bound.
func eventually(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(bound); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", bound, what)
		}
	}
}

// TestRunDrainsOnCancel: Run, the production entry point, ends on its
// context like SIGTERM: a request in flight then completes with its
// response and its log line, and Run returns nil.
func TestRunDrainsOnCancel(t *testing.T) {
	e := newTestEnv(t)
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	arrived := make(chan struct{}, 1)
	addr, _ := e.httpsOrigin("127.0.0.2", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			arrived <- struct{}{}
			<-release
		}
		fmt.Fprint(w, "drained")
	}), "app.example.test")
	t.Cleanup(unblock) // runs before the origin's cleanup, which waits for this handler
	cfg, err := ParseConfig("run test", []byte(e.edgeConfig("", fmt.Sprintf(`    origins: [{id: app, domain_name: app.example.test, connect_to: %q, trusted_ca: %q}]
    default_behavior: {target: app}`, addr, e.caFile))))
	if err != nil {
		t.Fatal(err)
	}
	oplog := &syncbuf.Buffer{}
	srv, err := New(context.Background(), cfg, Options{Logger: zerolog.New(oplog)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	eventually(t, 10*time.Second, "the edge listening", func() bool { return srv.Addr("https") != "" })
	re := &runningEdge{Server: srv, e: e, oplog: oplog, logDir: cfg.Edge.Logs.Dir}
	type answer struct {
		status int
		body   string
		err    error
	}
	answers := make(chan answer, 1)
	go func() {
		resp, err := re.client(false).Get("https://www.example.test/slow")
		if err != nil {
			answers <- answer{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		answers <- answer{resp.StatusCode, string(b), err}
	}()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the request did not reach the origin")
	}
	cancel()
	eventually(t, 10*time.Second, "the edge shutting down", func() bool { return strings.Contains(oplog.String(), "edge shutting down") })
	unblock()
	if a := <-answers; a.err != nil || a.status != 200 || a.body != "drained" {
		t.Fatalf("request in flight when Run's context ended: %d %q %v (cut instead of drained)", a.status, a.body, a.err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	var logged bool
	for _, r := range readRecords(t, cfg.Edge.Logs.Dir) {
		logged = logged || (r.URIStem == "/slow" && r.Status == 200)
	}
	if !logged {
		t.Fatal("the drained request has no log line")
	}
}
