package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgegate/edgegate/internal/testredis"
)

// patternReader yields n bytes whose values depend on their offset, made
// on the fly so a test never holds a large body in memory.
type patternReader struct{ off, n int64 }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	k := min(int64(len(b)), p.n-p.off)
	for i := range k {
		o := p.off + i
		b[i] = byte(o*7 + o/251)
	}
	p.off += k
	return int(k), nil
}

func patternSum(off, n int64) [32]byte {
	h := sha256.New()
	_, _ = io.Copy(h, io.LimitReader(&patternReader{off: off, n: off + n}, n))
	return [32]byte(h.Sum(nil))
}

// bigOrigin is a TLS origin serving /SIZE (bytes, generated) with
// Content-Length, or /chunked/SIZE without; gate, when set, holds each
// response after its first MiB until closed.
type bigOrigin struct {
	srv    *httptest.Server
	calls  atomic.Int64
	ranges atomic.Int64
	mu     sync.Mutex
	gate   chan struct{}
	cc     string
}

func newBigOrigin(t testing.TB) *bigOrigin {
	o := &bigOrigin{cc: "max-age=3600"}
	o.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.calls.Add(1)
		path := strings.TrimPrefix(r.URL.Path, "/")
		chunked := strings.HasPrefix(path, "chunked/")
		n, err := strconv.ParseInt(strings.TrimPrefix(path, "chunked/"), 10, 64)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		o.mu.Lock()
		gate, cc := o.gate, o.cc
		o.mu.Unlock()
		w.Header().Set("Cache-Control", cc)
		w.Header().Set("Content-Type", "application/octet-stream")
		var from, to int64
		if _, err := fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-%d", &from, &to); err == nil && !chunked {
			o.ranges.Add(1)
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, to, n))
			w.Header().Set("Content-Length", strconv.FormatInt(to-from+1, 10))
			w.WriteHeader(http.StatusPartialContent)
			_, _ = io.Copy(w, io.LimitReader(&patternReader{off: from, n: n}, to-from+1))
			return
		}
		if !chunked {
			w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		}
		body := &patternReader{n: n}
		if gate != nil {
			_, _ = io.CopyN(w, body, min(n, 1<<20))
			w.(http.Flusher).Flush()
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
		}
		_, _ = io.Copy(w, body)
	}))
	t.Cleanup(o.srv.Close)
	return o
}

func (o *bigOrigin) fetch(ctx context.Context, req *http.Request) (*http.Response, error) {
	req.URL.Scheme, req.URL.Host = "https", o.srv.Listener.Addr().String()
	return o.srv.Client().Transport.RoundTrip(req)
}

func (o *bigOrigin) hold() chan struct{} {
	g := make(chan struct{})
	o.mu.Lock()
	o.gate = g
	o.mu.Unlock()
	return g
}

// diskCache is a cache over memory and disk in dir.
func diskCache(t testing.TB, dir string) (*Cache, *Disk) {
	t.Helper()
	d, err := NewDisk(DiskOptions{Path: dir, MaxBytes: 16 << 30})
	if err != nil {
		t.Fatal(err)
	}
	<-d.Loaded()
	mem := newMemory(t, 64<<20)
	c := New(NewTiered(TieredOptions{}, Tier{Name: "memory", Store: mem}, Tier{Name: "disk", Store: d}), Options{FetchTimeout: 20 * time.Second})
	t.Cleanup(func() { c.Wait(); d.Close() })
	return c, d
}

// get does a request through c and returns the response with a hash of
// its body (read as a viewer would, never held whole).
func getSum(t testing.TB, c *Cache, p Policy, o *bigOrigin, target string, kv ...string) (*Response, [32]byte, int64) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, target, nil)
	r.Header = hdr(kv...)
	resp, err := c.Do(context.Background(), r, p, o.fetch)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	h := sha256.New()
	var n int64
	if resp.Stream != nil {
		n, err = io.Copy(h, resp.Stream)
		resp.Stream.Close()
		if err != nil {
			t.Fatalf("GET %s: body after %d bytes: %v", target, n, err)
		}
	} else {
		n, _ = io.Copy(h, bytes.NewReader(resp.Body))
	}
	return resp, [32]byte(h.Sum(nil)), n
}

// TestLargeObjects: a 20 MB and a 300 MB object are each a Miss that is
// stored, then a Hit; after a restart (a new cache on the same directory)
// they are still Hits, without asking the origin.
func TestLargeObjects(t *testing.T) {
	dir := t.TempDir()
	o := newBigOrigin(t)
	c, _ := diskCache(t, dir)
	sizes := []int64{20_000_000, 300_000_000}
	for _, n := range sizes {
		want := patternSum(0, n)
		target := fmt.Sprintf("https://e.com/%d", n)
		resp, sum, got := getSum(t, c, pol, o, target)
		if resp.Outcome != Miss || !resp.Stored || sum != want || resp.Header.Get("Content-Length") != strconv.FormatInt(n, 10) {
			t.Fatalf("%d: first: %v stored=%v detail=%q, %d bytes, body ok %v", n, resp.Outcome, resp.Stored, resp.Detail, got, sum == want)
		}
		c.Wait()
		resp, sum, _ = getSum(t, c, pol, o, target)
		if resp.Outcome != Hit || sum != want {
			t.Fatalf("%d: second: %v, body ok %v", n, resp.Outcome, sum == want)
		}
	}
	if calls := o.calls.Load(); calls != 2 {
		t.Fatalf("origin asked %d times", calls)
	}
	c2, _ := diskCache(t, dir)
	for _, n := range sizes {
		resp, sum, _ := getSum(t, c2, pol, o, fmt.Sprintf("https://e.com/%d", n))
		if resp.Outcome != Hit || sum != patternSum(0, n) {
			t.Fatalf("%d after restart: %v, body ok %v", n, resp.Outcome, sum == patternSum(0, n))
		}
	}
	if calls := o.calls.Load(); calls != 2 {
		t.Fatalf("origin asked %d times after restart", calls)
	}
}

// TestLargeObjectCorruptRefetched damages a stored large object on disk
// while the edge is down: after the restart it is fetched again, and the
// damaged bytes are never served.
func TestLargeObjectCorruptRefetched(t *testing.T) {
	dir := t.TempDir()
	o := newBigOrigin(t)
	c, d := diskCache(t, dir)
	const n = 5_000_000
	target := fmt.Sprintf("https://e.com/%d", n)
	getSum(t, c, pol, o, target)
	c.Wait()
	key := Key(httptest.NewRequest(http.MethodGet, target, nil), pol.Key)
	p := d.path(diskKeyID(key))
	d.Close()
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteAt([]byte("XXXX"), 3_000_000)
	f.Close()
	c2, _ := diskCache(t, dir)
	resp, sum, _ := getSum(t, c2, pol, o, target)
	if resp.Outcome != Miss || sum != patternSum(0, n) || o.calls.Load() != 2 {
		t.Fatalf("corrupt entry: %v, body ok %v, origin asked %d times", resp.Outcome, sum == patternSum(0, n), o.calls.Load())
	}
}

// TestLargeObjectReadAlong: 20 viewers ask for an uncached large object
// while it fills: one origin request; each gets the whole body. A Range
// request meanwhile is answered from the first bytes, without waiting for
// the rest of the object.
func TestLargeObjectReadAlong(t *testing.T) {
	o := newBigOrigin(t)
	c, _ := diskCache(t, t.TempDir())
	gate := o.hold()
	const n = 64 << 20
	want := patternSum(0, n)
	var wg sync.WaitGroup
	var bad atomic.Int64
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, sum, _ := getSum(t, c, pol, o, "https://e.com/67108864")
			if sum != want || resp.Outcome != Miss {
				bad.Add(1)
			}
		}()
	}
	// The origin has sent its first MiB and waits: a range inside it is
	// answered now.
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, sum, got := getSum(t, c, pol, o, "https://e.com/67108864", "Range", "bytes=1000-1999")
		if resp.Status != http.StatusPartialContent || got != 1000 || sum != patternSum(1000, 1000) {
			t.Errorf("range during the fill: %d, %d bytes, ok %v", resp.Status, got, sum == patternSum(1000, 1000))
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Error("a range inside the first bytes waited for the whole object")
	}
	// A range far beyond what has arrived is fetched on its own.
	far := make(chan struct{})
	go func() {
		defer close(far)
		resp, sum, got := getSum(t, c, pol, o, "https://e.com/67108864", "Range", "bytes=60000000-60000999")
		if resp.Status != http.StatusPartialContent || got != 1000 || sum != patternSum(60_000_000, 1000) || resp.Detail != "range-beyond-fill" {
			t.Errorf("range beyond the fill: %d, %d bytes, ok %v, detail %q", resp.Status, got, sum == patternSum(60_000_000, 1000), resp.Detail)
		}
	}()
	select {
	case <-far:
	case <-time.After(10 * time.Second):
		t.Error("a range far beyond the fill waited for it")
	}
	close(gate)
	wg.Wait()
	<-done
	if bad.Load() != 0 || o.calls.Load()-o.ranges.Load() != 1 {
		t.Fatalf("%d viewers got a wrong body; origin asked %d times for the whole object", bad.Load(), o.calls.Load()-o.ranges.Load())
	}
	// Without Content-Length too.
	resp, sum, _ := getSum(t, c, pol, o, "https://e.com/chunked/3000000")
	if resp.Outcome != Miss || !resp.Stored || sum != patternSum(0, 3_000_000) {
		t.Fatalf("chunked: %v %v", resp.Outcome, resp.Stored)
	}
	c.Wait()
	if resp, _, _ := getSum(t, c, pol, o, "https://e.com/chunked/3000000"); resp.Outcome != Hit {
		t.Fatalf("chunked second: %v", resp.Outcome)
	}
}

// TestCacheStatusTruth: a response is reported stored only when it was;
// otherwise the reason is given.
func TestCacheStatusTruth(t *testing.T) {
	o := newBigOrigin(t)
	c, _ := diskCache(t, t.TempDir())
	small := pol
	small.MaxObjectSize = 1 << 20
	for _, target := range []string{"https://e.com/2000000", "https://e.com/chunked/2000000"} {
		resp, sum, _ := getSum(t, c, small, o, target)
		if resp.Outcome != Pass || resp.Stored || resp.Detail != "too-large" || sum != patternSum(0, 2_000_000) {
			t.Fatalf("%s over max_object_size: %v stored=%v detail=%q ok=%v", target, resp.Outcome, resp.Stored, resp.Detail, sum == patternSum(0, 2_000_000))
		}
	}
	o.mu.Lock()
	o.cc = "no-store"
	o.mu.Unlock()
	resp, _, _ := getSum(t, c, pol, o, "https://e.com/1000")
	if resp.Stored || resp.Detail != "no-store" {
		t.Fatalf("no-store: stored=%v detail=%q", resp.Stored, resp.Detail)
	}
}

// BenchmarkLargeObjectViewers serves one large object to 20 concurrent
// viewers, first while it fills and then from disk, and reports the peak
// heap and the process's peak RSS: both stay flat whatever the object's
// size (LARGE_OBJECT_MIB, default 256).
func BenchmarkLargeObjectViewers(b *testing.B) {
	size := int64(256)
	if v, err := strconv.ParseInt(os.Getenv("LARGE_OBJECT_MIB"), 10, 64); err == nil {
		size = v
	}
	size <<= 20
	o := newBigOrigin(b)
	var peak atomic.Uint64
	stop := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	p := pol
	p.MaxObjectSize = 4 << 30
	for b.Loop() {
		c, _ := diskCache(b, b.TempDir())
		for round := range 2 {
			var wg sync.WaitGroup
			for range 20 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := httptest.NewRequest(http.MethodGet, "https://e.com/"+strconv.FormatInt(size, 10), nil)
					resp, err := c.Do(context.Background(), r, p, o.fetch)
					if err != nil || resp.Stream == nil {
						b.Errorf("round %d: %v", round, err)
						return
					}
					n, _ := io.Copy(io.Discard, resp.Stream)
					resp.Stream.Close()
					if n != size {
						b.Errorf("round %d: %d bytes", round, n)
					}
				}()
			}
			wg.Wait()
			c.Wait()
		}
	}
	close(stop)
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(vmHWM())/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(float64(o.calls.Load())/float64(b.N), "origin-requests/op")
}

// vmHWM is the process's peak resident set, from /proc/self/status.
func vmHWM() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// TestStopAbandonsFills: at shutdown a fill in progress is abandoned at
// once and leaves nothing half-written.
func TestStopAbandonsFills(t *testing.T) {
	o := newBigOrigin(t)
	c, d := diskCache(t, t.TempDir())
	gate := o.hold()
	defer close(gate)
	r := httptest.NewRequest(http.MethodGet, "https://e.com/50000000", nil)
	resp, err := c.Do(context.Background(), r, pol, o.fetch)
	if err != nil || resp.Stream == nil {
		t.Fatalf("%v", err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, resp.Stream)
		resp.Stream.Close()
		got <- err
	}()
	c.Stop()
	waited := make(chan struct{})
	go func() { c.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("Wait after Stop still waits for the fill")
	}
	if err := <-got; err == nil {
		t.Fatal("the viewer of an abandoned fill got a whole body")
	}
	tmp, _ := os.ReadDir(d.tmp)
	if _, n := d.Usage(); n != 0 || len(tmp) != 0 {
		t.Fatalf("%d entries, %d temporary files left", n, len(tmp))
	}
}

// TestLargeObjectRevalidated: a stale large object on disk revalidated
// with a 304 is served from disk (RefreshHit) and stored again with its new
// freshness, without the origin sending the body again.
func TestLargeObjectRevalidated(t *testing.T) {
	clk := &clock{t: time.Now()}
	var calls, conditional atomic.Int64
	const n = 5_000_000
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Date", clk.Now().UTC().Format(http.TimeFormat)) // the origin's clock is ours
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Cache-Control", "max-age=60")
		if r.Header.Get("If-None-Match") == `"v1"` {
			conditional.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(n))
		_, _ = io.Copy(w, &patternReader{n: n})
	}))
	defer srv.Close()
	o := &bigOrigin{srv: srv}
	d, err := NewDisk(DiskOptions{Path: t.TempDir(), MaxBytes: 1 << 30, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	mem, _ := NewMemory(MemoryOptions{MaxBytes: 16 << 20, Now: clk.Now})
	defer mem.Close()
	c := New(NewTiered(TieredOptions{Now: clk.Now}, Tier{Name: "memory", Store: mem}, Tier{Name: "disk", Store: d}), Options{Now: clk.Now})
	defer c.Wait()
	want := patternSum(0, n)
	for i, wantOutcome := range []Outcome{Miss, RefreshHit, Hit} {
		if i == 1 {
			clk.Add(2 * time.Minute)
		}
		resp, sum, _ := getSum(t, c, pol, o, "https://e.com/video.mp4")
		if resp.Outcome != wantOutcome || sum != want {
			t.Fatalf("request %d: %v, body ok %v", i, resp.Outcome, sum == want)
		}
		c.Wait()
	}
	if calls.Load() != 2 || conditional.Load() != 1 {
		t.Fatalf("origin asked %d times, %d conditionally", calls.Load(), conditional.Load())
	}
}

// TestLargeObjectSharedThroughRedis: a large object filled on one edge's
// disk is copied to Redis once whole, and is a Hit on another edge, which
// never asks the origin.
func TestLargeObjectSharedThroughRedis(t *testing.T) {
	srv := testredis.Start(t)
	o := newBigOrigin(t)
	edge := func() (*Cache, *Disk) {
		d, err := NewDisk(DiskOptions{Path: t.TempDir(), MaxBytes: 1 << 30})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(d.Close)
		rds := NewRedis(redisClient(t, srv), RedisOptions{})
		c := New(NewTiered(TieredOptions{Budget: time.Second}, Tier{Name: "memory", Store: newMemory(t, 16<<20)},
			Tier{Name: "disk", Store: d}, Tier{Name: "redis", Store: rds, Remote: true}), Options{})
		t.Cleanup(c.Wait)
		return c, d
	}
	a, _ := edge()
	b, bDisk := edge()
	const n = 5_000_000
	resp, sum, _ := getSum(t, a, pol, o, "https://e.com/5000000")
	if resp.Outcome != Miss || sum != patternSum(0, n) {
		t.Fatalf("edge a: %v", resp.Outcome)
	}
	a.Wait()
	// Read from Redis chunk by chunk; asked for again, it moves to b's disk.
	for i := range 3 {
		resp, sum, _ = getSum(t, b, pol, o, "https://e.com/5000000")
		if resp.Outcome != Hit || sum != patternSum(0, n) || o.calls.Load() != 1 {
			t.Fatalf("edge b, request %d: %v, body ok %v, origin asked %d times", i, resp.Outcome, sum == patternSum(0, n), o.calls.Load())
		}
		b.Wait()
	}
	if _, entries := bDisk.Usage(); entries != 1 {
		t.Fatalf("edge b's disk holds %d entries after repeated Redis hits", entries)
	}
}

// TestLargeObjectBrokenFill: an origin that breaks a large body midway
// fails the viewer's response (it is cut, never completed with other
// bytes), stores nothing, and the next request fetches again.
func TestLargeObjectBrokenFill(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Length", "5000000")
		_, _ = io.Copy(w, &patternReader{n: 2_000_000})
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer srv.Close()
	o := &bigOrigin{srv: srv}
	c, d := diskCache(t, t.TempDir())
	for i := range 2 {
		r := httptest.NewRequest(http.MethodGet, "https://e.com/broken", nil)
		resp, err := c.Do(context.Background(), r, pol, o.fetch)
		if err != nil {
			continue // broke before the response started: fine too
		}
		n, err := io.Copy(io.Discard, resp.Stream)
		resp.Stream.Close()
		if err == nil || n >= 5_000_000 {
			t.Fatalf("request %d: %d bytes, err %v", i, n, err)
		}
		c.Wait()
	}
	tmp, _ := os.ReadDir(d.tmp)
	if _, n := d.Usage(); n != 0 || len(tmp) != 0 || calls.Load() != 2 {
		t.Fatalf("%d entries, %d temporary files, origin asked %d times", n, len(tmp), calls.Load())
	}
}
