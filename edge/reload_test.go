package edge

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgegate/edgegate/internal/syncbuf"
	"github.com/rs/zerolog"
)

// startEdgeFile runs an edge from a config file, so that Reload can read
// it again.
func (e *testEnv) startEdgeFile(path string) *runningEdge {
	e.t.Helper()
	cfg, err := LoadConfig(path)
	if err != nil {
		e.t.Fatal(err)
	}
	oplog := &syncbuf.Buffer{}
	srv, err := New(context.Background(), cfg, Options{Logger: zerolog.New(oplog), ConfigPath: path})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	re := &runningEdge{Server: srv, e: e, oplog: oplog, logDir: cfg.Edge.Logs.Dir}
	e.t.Cleanup(func() { re.stop() })
	return re
}

func writeConfig(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Reload under load: thousands of requests over HTTP/1.1 and HTTP/2 while
// the edge reloads three times (an origin's custom header changed, a
// behavior added, an alias added) and refuses a broken config once. No
// request fails, every response has its log line, the listeners keep their
// sockets, and each change shows as soon as its reload returns.
func TestReloadUnderLoad(t *testing.T) {
	e := newTestEnv(t)
	var stages sync.Map // X-Stage values the origin saw
	origin, handshakes := e.httpsOrigin("127.0.0.2", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stages.Store(r.Header.Get("X-Stage"), true)
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprintf(w, "stage %s path %s", r.Header.Get("X-Stage"), r.URL.Path)
	}), "app.example.test")
	config := func(stage string, behaviors string, aliases string) string {
		cfg := e.edgeConfig("  admin: {listen: \"127.0.0.1:0\", token: \""+testAdminToken+"\"}", fmt.Sprintf(`    origins: [{id: app, domain_name: app.example.test, connect_to: %q, trusted_ca: %q,
               custom_headers: {X-Stage: %s}}]
    default_behavior: {target: app, cache_policy: disabled}
%s`, origin, e.caFile, stage, behaviors))
		return strings.Replace(cfg, "aliases: [www.example.test, api.example.test]", "aliases: ["+aliases+"]", 1)
	}
	path := filepath.Join(e.dir, "edge.yaml")
	writeConfig(t, path, config("one", "", "www.example.test"))
	re := e.startEdgeFile(path)
	addrs := [3]string{re.Addr("http"), re.Addr("https"), re.Addr("admin")}

	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	clients := []*http.Client{re.client(false), re.client(true)}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clients[w%2]
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(fmt.Sprintf("https://www.example.test/load/%d/%d", w, i))
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	extra := 0 // requests made by the checks below, which are logged too
	waitLoad := func(n int64) {
		deadline := time.Now().Add(20 * time.Second)
		for target := ok.Load() + n; ok.Load() < target && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
	}
	reload := func(text string) {
		t.Helper()
		writeConfig(t, path, text)
		if err := re.Reload(context.Background()); err != nil {
			t.Fatalf("reload: %v", err)
		}
	}
	c := re.client(false)
	waitLoad(500)

	// 1: a custom header changed reaches the origin over the same pool.
	reload(config("two", "", "www.example.test"))
	resp, body := get(t, c, "https://www.example.test/after-1")
	extra++
	if body != "stage two path /after-1" {
		t.Errorf("after reload 1: %d %q", resp.StatusCode, body)
	}
	waitLoad(500)

	// A broken config is refused with its place; the running one stays.
	writeConfig(t, path, strings.Replace(config("two", "", "www.example.test"), "viewer_protocol_policy", "viewer_protocol_polcy", 1)+
		"    viewer_protocol_polcy: allow-all\n")
	if err := re.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), path+":") ||
		!strings.Contains(err.Error(), "viewer_protocol_polcy") {
		t.Errorf("broken config: %v", err)
	}
	waitLoad(200)

	// 2: a behavior added (cached) is used at once.
	reload(config("two", "    behaviors: [{path_pattern: \"/static/*\", target: app, cache_policy: {default_ttl: 60s}}]", "www.example.test"))
	get(t, c, "https://www.example.test/static/a.css")
	resp, _ = get(t, c, "https://www.example.test/static/a.css")
	extra += 2
	if resp.Header.Get("X-Cache") != "Hit from edgegate" {
		t.Errorf("after reload 2, the new cached behavior: X-Cache %q", resp.Header.Get("X-Cache"))
	}
	waitLoad(500)

	// 3: an alias added is served (its certificate was already in the file).
	resp, _ = get(t, c, "http://api.example.test/before")
	extra++
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("api.example.test before reload 3: %d", resp.StatusCode)
	}
	reload(config("three", "    behaviors: [{path_pattern: \"/static/*\", target: app, cache_policy: {default_ttl: 60s}}]", "www.example.test, api.example.test"))
	resp, body = get(t, c, "https://api.example.test/after-3")
	extra++
	if resp.StatusCode != http.StatusOK || body != "stage three path /after-3" {
		t.Errorf("api.example.test after reload 3: %d %q", resp.StatusCode, body)
	}
	// The cache outlived the reloads.
	resp, _ = get(t, c, "https://www.example.test/static/a.css")
	extra++
	if resp.Header.Get("X-Cache") != "Hit from edgegate" {
		t.Errorf("cache after reload 3: X-Cache %q", resp.Header.Get("X-Cache"))
	}
	waitLoad(500)
	close(stop)
	wg.Wait()

	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d requests failed during reloads; first: %v", n, n+ok.Load(), firstErr.Load())
	}
	if got := [3]string{re.Addr("http"), re.Addr("https"), re.Addr("admin")}; got != addrs {
		t.Errorf("listeners moved: %v, were %v", got, addrs)
	}
	for _, s := range []string{"one", "two", "three"} {
		if _, seen := stages.Load(s); !seen {
			t.Errorf("the origin never saw X-Stage: %s", s)
		}
	}
	// The origin's pool was kept: a handful of connections, not one per
	// reload and client.
	if h := handshakes.get(); h > 40 {
		t.Errorf("%d TLS handshakes with the origin: connection pools were not kept", h)
	}
	recs := re.records()
	if want := int(ok.Load()) + extra; len(recs) != want {
		t.Errorf("%d log lines for %d responses", len(recs), want)
	}
	t.Logf("%d requests during 3 reloads, 0 failed, %d origin handshakes", ok.Load(), handshakes.get())
}

// A listener whose address changes is re-bound; the old socket closes once
// drained, and the admin POST /reload does what SIGHUP does.
func TestReloadRebindsListener(t *testing.T) {
	e := newTestEnv(t)
	origin, _ := e.httpsOrigin("127.0.0.2", hello("app"), "app.example.test")
	dist := fmt.Sprintf(`    origins: [{id: app, domain_name: app.example.test, connect_to: %q, trusted_ca: %q}]
    default_behavior: {target: app}`, origin, e.caFile)
	admin := "  admin: {listen: \"127.0.0.1:0\", token: \"" + testAdminToken + "\"}"
	path := filepath.Join(e.dir, "edge.yaml")
	text := e.edgeConfig(admin, dist)
	writeConfig(t, path, text)
	re := e.startEdgeFile(path)
	oldHTTP := re.Addr("http")
	port := freePort(t)
	writeConfig(t, path, strings.Replace(text, `http: "127.0.0.1:0"`, `http: "127.0.0.1:`+port+`"`, 1))
	resp := adminCall(t, re.Addr("admin"), http.MethodPost, "/reload", testAdminToken, "{}")
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST /reload: %d %s", resp.StatusCode, b)
	}
	if got := re.Addr("http"); got != "127.0.0.1:"+port {
		t.Fatalf("http listener on %s after reload, want port %s", got, port)
	}
	r, err := http.Get("http://" + re.Addr("http") + "/x")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusForbidden { // no Host of ours: but served
		t.Errorf("new listener: %d", r.StatusCode)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := (&net.Dialer{}).Dial("tcp", oldHTTP)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("old listener %s still accepts", oldHTTP)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A broken config through the admin API: 422 with FILE:LINE.
	writeConfig(t, path, text+"bogus: 1\n")
	resp = adminCall(t, re.Addr("admin"), http.MethodPost, "/reload", testAdminToken, "{}")
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(b), "edge.yaml:") {
		t.Errorf("broken config: %d %s", resp.StatusCode, b)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l := listen(t, "127.0.0.1")
	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close()
	return port
}
