package edge

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgegate/edgegate/edge/accesslog"
	"github.com/edgegate/edgegate/internal/testredis"
)

// countingOrigin answers cacheable responses and counts requests per path.
type countingOrigin struct {
	mu    sync.Mutex
	count map[string]int
	total atomic.Int64
	delay time.Duration
}

func (o *countingOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	if o.count == nil {
		o.count = map[string]int{}
	}
	o.count[r.URL.Path]++
	o.mu.Unlock()
	o.total.Add(1)
	time.Sleep(o.delay)
	w.Header().Set("Cache-Control", "max-age=300")
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "object %s: %s", r.URL.Path, strings.Repeat("0123456789", 100))
}

func (o *countingOrigin) requests(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.count[path]
}

func cachedDistribution(e *testEnv, origin string) string {
	return fmt.Sprintf(`    origins: [{id: app, domain_name: app.example.test, connect_to: %q, trusted_ca: %q}]
    default_behavior: {target: app, cache_policy: {default_ttl: 1h, key: {query_strings: none}}}`, origin, e.caFile)
}

func TestCacheHitAndLogAgree(t *testing.T) {
	e := newTestEnv(t)
	o := &countingOrigin{}
	addr, _ := e.httpsOrigin("127.0.0.2", o, "app.example.test")
	re := e.startEdge(e.edgeConfig("", cachedDistribution(e, addr)))
	c := re.client(false)

	first, body1 := get(t, c, "https://www.example.test/a.txt?utm=1")
	second, body2 := get(t, c, "https://www.example.test/a.txt?utm=2") // query not in the key
	if first.Header.Get("X-Cache") != "Miss from edgegate" || second.Header.Get("X-Cache") != "Hit from edgegate" {
		t.Fatalf("X-Cache: %q then %q", first.Header.Get("X-Cache"), second.Header.Get("X-Cache"))
	}
	if body1 != body2 || o.requests("/a.txt") != 1 {
		t.Fatalf("origin asked %d times; bodies equal: %v", o.requests("/a.txt"), body1 == body2)
	}
	if second.Header.Get("Age") == "" || !strings.HasPrefix(second.Header.Get("Cache-Status"), "edgegate; hit") {
		t.Errorf("hit headers: Age %q Cache-Status %q", second.Header.Get("Age"), second.Header.Get("Cache-Status"))
	}

	req, _ := http.NewRequest("GET", "https://www.example.test/a.txt", nil)
	req.Header.Set("Range", "bytes=0-5")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || string(part) != "object" || resp.Header.Get("X-Cache") != "Hit from edgegate" {
		t.Fatalf("Range: %d %q %s", resp.StatusCode, part, resp.Header.Get("X-Cache"))
	}
	head, err := c.Head("https://www.example.test/a.txt")
	if err != nil {
		t.Fatal(err)
	}
	head.Body.Close()
	if head.StatusCode != 200 || head.Header.Get("X-Cache") != "Hit from edgegate" || o.requests("/a.txt") != 1 {
		t.Fatalf("HEAD: %d %s, origin asked %d times", head.StatusCode, head.Header.Get("X-Cache"), o.requests("/a.txt"))
	}

	recs := re.records()
	for _, tc := range []struct {
		resp *http.Response
		want accesslog.ResultType
	}{{first, accesslog.ResultMiss}, {second, accesslog.ResultHit}, {resp, accesslog.ResultHit}} {
		rec := byID(t, recs, tc.resp.Header.Get("X-Edge-Request-Id"))
		if rec.ResultType != tc.want || rec.ResponseResultType != tc.want || rec.DetailedResultType != tc.want {
			t.Errorf("log %s/%s/%s, viewer was given %s", rec.ResultType, rec.ResponseResultType, rec.DetailedResultType, tc.resp.Header.Get("X-Cache"))
		}
	}
	rangeRec := byID(t, recs, resp.Header.Get("X-Edge-Request-Id"))
	if rangeRec.Status != 206 || rangeRec.RangeStart != 0 || rangeRec.RangeEnd != 5 {
		t.Errorf("range log line: status %d range %d-%d", rangeRec.Status, rangeRec.RangeStart, rangeRec.RangeEnd)
	}
}

// 1,000 concurrent viewers of one uncached object cause one origin request.
//
// The requests share a few HTTP/2 connections made beforehand, as a busy
// object's viewers mostly do: fired at an edge with no connection yet, each
// would dial its own (Go's transport does not know the edge speaks HTTP/2
// until a handshake ends), and 1,000 TLS handshakes at once on a loaded
// 2-core machine under -race outlast the edge's handshake timeout, and
// starve the collapsed fetch past the test origin's header timeout: the
// test then measured the machine, not collapsing.
func TestCollapsedForwarding(t *testing.T) {
	e := newTestEnv(t)
	o := &countingOrigin{delay: 300 * time.Millisecond}
	addr, _ := e.httpsOrigin("127.0.0.2", o, "app.example.test")
	re := e.startEdge(e.edgeConfig("", cachedDistribution(e, addr)))
	const conns, viewers = 4, 1000
	clients := make([]*http.Client, conns)
	for i := range clients {
		clients[i] = re.client(true)
		tr := clients[i].Transport.(*http.Transport)
		// Past the edge's stream limit, requests wait for a stream on this
		// connection rather than dial another.
		tr.HTTP2 = &http.HTTP2Config{StrictMaxConcurrentRequests: true}
		if resp, _ := get(t, clients[i], fmt.Sprintf("https://www.example.test/warm-%d.txt", i)); resp.ProtoMajor != 2 {
			t.Fatalf("viewer connection %d speaks %s, want HTTP/2", i, resp.Proto)
		}
	}
	var wg sync.WaitGroup
	var failed atomic.Int64
	var firstErr atomic.Value
	for i := range viewers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := clients[i%conns].Get("https://www.example.test/popular.txt")
			if err != nil || resp.StatusCode != 200 {
				if failed.Add(1) == 1 {
					firstErr.Store(fmt.Sprint(err, resp))
				}
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d viewers failed; first: %v\n%s", failed.Load(), firstErr.Load(), re.diagnose())
	}
	if n := o.requests("/popular.txt"); n != 1 {
		t.Fatalf("1,000 concurrent viewers caused %d origin requests, want 1", n)
	}
	// The one fetch served viewers that waited on it together, not one
	// viewer after another from the cache.
	misses := 0
	for _, r := range re.records() {
		if r.URIStem == "/popular.txt" && r.ResultType == accesslog.ResultMiss {
			misses++
		}
	}
	if misses < 2 {
		t.Fatalf("%d viewers waited on the origin fetch, want several: the requests were not concurrent", misses)
	}
	t.Logf("%d viewers waited on the one origin fetch", misses)
}

// Two edges sharing Redis: a fill on one is a hit on the other, and an
// invalidation made on one applies on both.
func TestSharedRedisTierAndInvalidation(t *testing.T) {
	e := newTestEnv(t)
	rds := testredis.Start(t)
	o := &countingOrigin{}
	addr, _ := e.httpsOrigin("127.0.0.2", o, "app.example.test")
	extra := fmt.Sprintf("  cache: {memory: 16MiB, redis: %q}\n  admin: {listen: \"127.0.0.1:0\", token: %q}", rds.URL(), testAdminToken)
	one := e.startEdge(strings.Replace(e.edgeConfig(extra, cachedDistribution(e, addr)), "location: TST1", "location: ONE1", 1))
	two := e.startEdge(strings.Replace(e.edgeConfig(extra, cachedDistribution(e, addr)), "location: TST1", "location: TWO1", 1))

	resp, _ := get(t, one.client(false), "https://www.example.test/images/cat.jpg")
	if resp.Header.Get("X-Cache") != "Miss from edgegate" {
		t.Fatalf("first edge: %s", resp.Header.Get("X-Cache"))
	}
	resp, _ = get(t, two.client(false), "https://www.example.test/images/cat.jpg")
	if resp.Header.Get("X-Cache") != "Hit from edgegate" || o.requests("/images/cat.jpg") != 1 {
		t.Fatalf("second edge: %s, origin asked %d times", resp.Header.Get("X-Cache"), o.requests("/images/cat.jpg"))
	}

	sent := time.Now()
	post := adminCall(t, one.Addr("admin"), http.MethodPost, "/invalidations", testAdminToken, `{"paths": ["/images/*"]}`)
	if post.StatusCode != http.StatusCreated || post.Header.Get("Location") == "" {
		body, _ := io.ReadAll(post.Body)
		t.Fatalf("POST /invalidations: %d after %s: %s\n%s", post.StatusCode, time.Since(sent), body, one.diagnose())
	}
	status, err := http.Get("http://" + one.Addr("admin") + post.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	status.Body.Close()
	if status.StatusCode != 200 {
		t.Fatalf("GET %s: %d", post.Header.Get("Location"), status.StatusCode)
	}
	// Bounded wait for the other edge to learn of it (Pub/Sub).
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, _ = get(t, two.client(false), "https://www.example.test/images/cat.jpg")
		if resp.Header.Get("X-Cache") == "Miss from edgegate" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second edge still serves an invalidated object after 5s")
		}
		time.Sleep(50 * time.Millisecond)
	}

	metrics, err := http.Get("http://" + two.Addr("admin") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(metrics.Body)
	metrics.Body.Close()
	if want := `edgegate_edge_requests_total{location="TWO1",result_type="Hit",detailed_result_type="Hit",status="200"} `; !strings.Contains(string(text), want) {
		t.Errorf("/metrics lacks %s:\n%s", want, text)
	}

	// Redis dies mid-load: viewers see no error, both edges keep serving.
	rds.Kill()
	for i := range 50 {
		for _, re := range []*runningEdge{one, two} {
			resp, _ := get(t, re.client(false), fmt.Sprintf("https://www.example.test/during-outage/%d", i%5))
			if resp.StatusCode != 200 {
				t.Fatalf("request %d during the Redis outage: %d", i, resp.StatusCode)
			}
		}
	}
}
