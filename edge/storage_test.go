package edge

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgegate/edgegate/edge/accesslog"
	"github.com/edgegate/edgegate/internal/testredis"
)

// bigObjects serves /SIZE.bin: SIZE bytes made on the fly, cacheable.
type bigObjects struct{ calls atomic.Int64 }

func (o *bigObjects) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.calls.Add(1)
	n, err := strconv.ParseInt(strings.TrimSuffix(path.Base(r.URL.Path), ".bin"), 10, 64)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Cache-Control", "max-age=3600")
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	buf := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	for n > 0 {
		k, err := w.Write(buf[:min(int64(len(buf)), n)])
		if err != nil {
			return
		}
		n -= int64(k)
	}
}

func sumBody(t *testing.T, c *http.Client, url string) (*http.Response, [32]byte, int64) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body after %d bytes: %v", url, n, err)
	}
	return resp, [32]byte(h.Sum(nil)), n
}

// TestDiskTierAtTheEdge: with cache.disk, a 20 MB object is a Miss that
// says it was stored, then a Hit, and still a Hit from a restarted edge; an
// object over the policy's max_object_size says why it was not stored, and
// X-Cache, Cache-Status and the log agree. An invalidation made without
// Redis is journaled beside the disk tier and outlives the restart.
func TestDiskTierAtTheEdge(t *testing.T) {
	e := newTestEnv(t)
	o := &bigObjects{}
	addr, _ := e.httpsOrigin("127.0.0.2", o, "app.example.test")
	disk := filepath.Join(e.dir, "cache")
	extra := fmt.Sprintf("  cache: {memory: 16MiB, disk: {path: %q, size: 1GiB}}\n  admin: {listen: \"127.0.0.1:0\", token: %q}", disk, testAdminToken)
	dist := fmt.Sprintf(`    origins: [{id: app, domain_name: app.example.test, connect_to: %q, trusted_ca: %q}]
    default_behavior: {target: app, cache_policy: {default_ttl: 1h}}
    behaviors:
      - {path_pattern: "/small/*", target: app, cache_policy: {default_ttl: 1h, max_object_size: 1MiB}}`, addr, e.caFile)
	cfg := e.edgeConfig(extra, dist)
	re := e.startEdge(cfg)
	c := re.client(false)

	const big = "https://www.example.test/20000000.bin"
	first, sum1, n := sumBody(t, c, big)
	if first.Header.Get("X-Cache") != "Miss from edgegate" || first.Header.Get("Cache-Status") != "edgegate; fwd=miss; stored" || n != 20_000_000 {
		t.Fatalf("first: %s, %q, %d bytes", first.Header.Get("X-Cache"), first.Header.Get("Cache-Status"), n)
	}
	re.cache.c.Wait()
	second, sum2, _ := sumBody(t, c, big)
	if second.Header.Get("X-Cache") != "Hit from edgegate" || sum1 != sum2 || o.calls.Load() != 1 {
		t.Fatalf("second: %s, same body %v, origin asked %d times", second.Header.Get("X-Cache"), sum1 == sum2, o.calls.Load())
	}
	tooBig, _, _ := sumBody(t, c, "https://www.example.test/small/2000000.bin")
	if tooBig.Header.Get("X-Cache") != "Miss from edgegate" || tooBig.Header.Get("Cache-Status") != "edgegate; fwd=uri-miss; detail=too-large" {
		t.Fatalf("over max_object_size: %s, %q", tooBig.Header.Get("X-Cache"), tooBig.Header.Get("Cache-Status"))
	}
	// Cached on disk, then invalidated; after a restart, the journal still
	// refuses the entry.
	_, _, _ = sumBody(t, c, "https://www.example.test/1000.bin")
	re.cache.c.Wait()
	post := adminCall(t, re.Addr("admin"), http.MethodPost, "/invalidations", testAdminToken, `{"paths": ["/1000.bin"]}`)
	if post.StatusCode != http.StatusCreated {
		t.Fatalf("POST /invalidations: %d", post.StatusCode)
	}
	recs := re.records()
	for _, tc := range []struct {
		resp *http.Response
		want accesslog.ResultType
	}{{first, accesslog.ResultMiss}, {second, accesslog.ResultHit}, {tooBig, accesslog.ResultMiss}} {
		if rec := byID(t, recs, tc.resp.Header.Get("X-Edge-Request-Id")); rec.ResultType != tc.want {
			t.Errorf("log says %s, X-Cache %s", rec.ResultType, tc.resp.Header.Get("X-Cache"))
		}
	}

	re2 := e.startEdge(cfg)
	c2 := re2.client(false)
	after, sum3, _ := sumBody(t, c2, big)
	if after.Header.Get("X-Cache") != "Hit from edgegate" || sum3 != sum1 || o.calls.Load() != 3 {
		t.Fatalf("after restart: %s, same body %v, origin asked %d times", after.Header.Get("X-Cache"), sum3 == sum1, o.calls.Load())
	}
	purged, _, _ := sumBody(t, c2, "https://www.example.test/1000.bin")
	if purged.Header.Get("X-Cache") != "Miss from edgegate" {
		t.Fatalf("an invalidated object came back after a restart: %s", purged.Header.Get("X-Cache"))
	}
}

// TestInvalidationStatusCodes: bad paths are the caller's 400; with Redis
// refused the invalidation cannot be made durable: 503 with Retry-After,
// never a 4xx that tells automation not to retry.
func TestInvalidationStatusCodes(t *testing.T) {
	e := newTestEnv(t)
	rds := testredis.Start(t)
	o := &countingOrigin{}
	addr, _ := e.httpsOrigin("127.0.0.2", o, "app.example.test")
	extra := fmt.Sprintf("  cache: {memory: 16MiB, redis: %q}\n  admin: {listen: \"127.0.0.1:0\", token: %q}", rds.URL(), testAdminToken)
	re := e.startEdge(e.edgeConfig(extra, cachedDistribution(e, addr)))
	post := func(body string) *http.Response {
		return adminCall(t, re.Addr("admin"), http.MethodPost, "/invalidations", testAdminToken, body)
	}
	if r := post(`{"paths": ["/a*b"]}`); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("'*' inside a path: %d", r.StatusCode)
	}
	// A 503 here was seen once under load and never reproduced: the time
	// taken and the edge's log tell a Redis write past its 2s budget from
	// a failure of another kind.
	sent := time.Now()
	if r := post(`{"paths": ["/ok/*"]}`); r.StatusCode != http.StatusCreated {
		body, _ := io.ReadAll(r.Body)
		t.Fatalf("with Redis up: %d after %s: %s\n%s", r.StatusCode, time.Since(sent), body, re.diagnose())
	}
	ok := post(`{"paths": ["/ok/*"]}`)
	rds.Kill()
	start := time.Now()
	r := post(`{"paths": ["/leaked.pdf"]}`)
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" || time.Since(start) > 5*time.Second {
		t.Fatalf("with Redis refused: %d, Retry-After %q, after %s", r.StatusCode, r.Header.Get("Retry-After"), time.Since(start))
	}
	st := adminCall(t, re.Addr("admin"), http.MethodGet, ok.Header.Get("Location"), testAdminToken, "")
	if st.StatusCode != http.StatusServiceUnavailable || st.Header.Get("Retry-After") == "" {
		t.Fatalf("status with Redis refused: %d", st.StatusCode)
	}
}

// TestHungRedisBudget: with Redis hung (SIGSTOP), a miss costs at most the
// configured redis_timeout more than the origin's own time (it cost 5s).
func TestHungRedisBudget(t *testing.T) {
	e := newTestEnv(t)
	rds := testredis.Start(t)
	o := &countingOrigin{}
	addr, _ := e.httpsOrigin("127.0.0.2", o, "app.example.test")
	extra := fmt.Sprintf("  cache: {memory: 16MiB, redis: %q, redis_timeout: 50ms}\n  admin: {listen: \"127.0.0.1:0\", token: %q}", rds.URL(), testAdminToken)
	re := e.startEdge(e.edgeConfig(extra, cachedDistribution(e, addr)))
	c := re.client(false)
	get(t, c, "https://www.example.test/warm") // connections up
	rds.Pause()
	defer rds.Resume()
	var worst time.Duration
	for i := range 10 {
		start := time.Now()
		resp, _ := get(t, c, fmt.Sprintf("https://www.example.test/miss/%d", i))
		worst = max(worst, time.Since(start))
		if resp.StatusCode != 200 || resp.Header.Get("X-Cache") != "Miss from edgegate" {
			t.Fatalf("miss %d: %d %s", i, resp.StatusCode, resp.Header.Get("X-Cache"))
		}
	}
	t.Logf("worst miss with Redis hung: %s (redis_timeout 50ms)", worst)
	if worst > time.Second {
		t.Fatalf("a miss took %s with Redis hung", worst)
	}
	// An invalidation cannot be made durable: a prompt 503, not a hang.
	start := time.Now()
	post := adminCall(t, re.Addr("admin"), http.MethodPost, "/invalidations", testAdminToken, `{"paths": ["/x"]}`)
	if post.StatusCode != http.StatusServiceUnavailable || time.Since(start) > 5*time.Second {
		t.Fatalf("POST /invalidations with Redis hung: %d after %s", post.StatusCode, time.Since(start))
	}
}

// TestInvalidationSurvivesEverything: two edges with disk tiers sharing
// Redis hold an object; an invalidation posted to one is Completed; then
// every edge and Redis restart (Redis without persistence, so its copy is
// gone): neither edge serves the purged object from its disk again.
func TestInvalidationSurvivesEverything(t *testing.T) {
	e := newTestEnv(t)
	rds := testredis.Start(t)
	o := &bigObjects{}
	addr, _ := e.httpsOrigin("127.0.0.2", o, "app.example.test")
	dist := fmt.Sprintf(`    origins: [{id: app, domain_name: app.example.test, connect_to: %q, trusted_ca: %q}]
    default_behavior: {target: app, cache_policy: {default_ttl: 1h}}`, addr, e.caFile)
	cfg := func(loc string) string {
		extra := fmt.Sprintf("  cache: {memory: 16MiB, disk: {path: %q, size: 64MiB}, redis: %q, redis_timeout: 1s}\n  admin: {listen: \"127.0.0.1:0\", token: %q}",
			filepath.Join(e.dir, "cache-"+loc), rds.URL(), testAdminToken)
		return strings.Replace(e.edgeConfig(extra, dist), "location: TST1", "location: "+loc, 1)
	}
	const leak = "https://www.example.test/5000000.bin" // streamed to disk
	one, two := e.startEdge(cfg("ONE1")), e.startEdge(cfg("TWO1"))
	for _, re := range []*runningEdge{one, two} {
		if resp, _, _ := sumBody(t, re.client(false), leak); resp.StatusCode != 200 {
			t.Fatalf("fill: %d", resp.StatusCode)
		}
		re.cache.c.Wait()
	}
	fetches := o.calls.Load()
	post := adminCall(t, one.Addr("admin"), http.MethodPost, "/invalidations", testAdminToken, `{"paths": ["/5000000.bin"]}`)
	if post.StatusCode != http.StatusCreated {
		t.Fatalf("POST /invalidations: %d", post.StatusCode)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := adminCall(t, one.Addr("admin"), http.MethodGet, post.Header.Get("Location"), testAdminToken, "")
		body, _ := io.ReadAll(st.Body)
		st.Body.Close()
		if strings.Contains(string(body), `"Completed"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not Completed after 10s: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	one.stop()
	two.stop()
	rds.Restart()
	for _, loc := range []string{"ONE1", "TWO1"} {
		re := e.startEdge(cfg(loc))
		resp, _, _ := sumBody(t, re.client(false), leak)
		if resp.Header.Get("X-Cache") != "Miss from edgegate" {
			t.Fatalf("%s served the purged object after restarts: %s", loc, resp.Header.Get("X-Cache"))
		}
		re.stop()
	}
	if got := o.calls.Load() - fetches; got != 2 {
		t.Fatalf("origin asked %d times after the restarts, want 2", got)
	}
}

// TestLargeObjectViewersAtTheEdge: 20 viewers over HTTP/2 ask for an
// uncached 20 MB object at once: one origin request, and every viewer gets
// the whole object.
func TestLargeObjectViewersAtTheEdge(t *testing.T) {
	e := newTestEnv(t)
	o := &bigObjects{}
	addr, _ := e.httpsOrigin("127.0.0.2", o, "app.example.test")
	extra := fmt.Sprintf("  cache: {memory: 16MiB, disk: {path: %q, size: 1GiB}}", filepath.Join(e.dir, "cache"))
	dist := fmt.Sprintf(`    origins: [{id: app, domain_name: app.example.test, connect_to: %q, trusted_ca: %q}]
    default_behavior: {target: app, cache_policy: {default_ttl: 1h}}`, addr, e.caFile)
	re := e.startEdge(e.edgeConfig(extra, dist))
	c := re.client(true)
	want := sha256.Sum256(bytes.Repeat([]byte("0123456789abcdef"), 20_000_000/16))
	sums := make(chan [32]byte, 20)
	for range 20 {
		go func() {
			var sum [32]byte // zero on failure
			if resp, err := c.Get("https://www.example.test/20000000.bin"); err == nil {
				h := sha256.New()
				if _, err := io.Copy(h, resp.Body); err == nil {
					sum = [32]byte(h.Sum(nil))
				}
				resp.Body.Close()
			}
			sums <- sum
		}()
	}
	for range 20 {
		if <-sums != want {
			t.Fatal("a viewer got a different body")
		}
	}
	if n := o.calls.Load(); n != 1 {
		t.Fatalf("origin asked %d times", n)
	}
}
