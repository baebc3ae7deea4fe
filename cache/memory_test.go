package cache

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

func newMemory(t testing.TB, maxBytes int64) *Memory {
	t.Helper()
	m, err := NewMemory(MemoryOptions{MaxBytes: maxBytes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func bodyEntry(n int) *Entry {
	e := sampleEntry()
	e.Body = make([]byte, n)
	return e
}

// TestMemoryByteBound fills the tier with a working set ten times its bound
// and checks its own byte accounting stays within the bound.
func TestMemoryByteBound(t *testing.T) {
	const bound = 1 << 20
	m := newMemory(t, bound)
	ctx := context.Background()
	const objects = 10 * bound / (4 << 10) // 4 KiB bodies, 10x the bound
	var maxSeen uint64
	for i := range objects {
		if err := m.Set(ctx, fmt.Sprintf("k%d", i), bodyEntry(4<<10), time.Hour); err != nil {
			t.Fatal(err)
		}
		if i%256 == 0 {
			m.CleanUp()
			maxSeen = max(maxSeen, m.WeightedSize())
		}
	}
	m.CleanUp()
	if got := m.WeightedSize(); got > bound || maxSeen > bound {
		t.Fatalf("retained %d bytes (peak %d) over the %d bound", got, maxSeen, bound)
	}
	if m.WeightedSize() < bound/2 {
		t.Fatalf("retained only %d bytes: the tier is not being used", m.WeightedSize())
	}
	if err := m.Set(ctx, "huge", bodyEntry(bound), time.Hour); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("object over the per-object limit: %v", err)
	}
}

func TestMemoryGetSetDeleteExpiry(t *testing.T) {
	m := newMemory(t, 1<<20)
	ctx := context.Background()
	if _, err := m.Get(ctx, "a"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	e := sampleEntry()
	if err := m.Set(ctx, "a", e, time.Hour); err != nil {
		t.Fatal(err)
	}
	got, err := m.Get(ctx, "a")
	if err != nil || string(got.Body) != string(e.Body) || got.Expires.IsZero() || !e.Expires.Equal(sampleEntry().Expires) {
		t.Fatalf("get: %v %+v", err, got)
	}
	if err := m.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(ctx, "a"); !errors.Is(err, ErrNotFound) {
		t.Fatal("deleted entry still there")
	}
	// A short TTL is kept for that long, then dropped. The entry is read
	// back before its TTL can have passed (a run slowed past it says so
	// rather than blaming the tier).
	const short = time.Second
	set := time.Now()
	if err := m.Set(ctx, "b", e, short); err != nil {
		t.Fatal(err)
	}
	_, err = m.Get(ctx, "b")
	if err != nil && time.Since(set) < short {
		t.Fatalf("entry with a %v TTL was not kept: %v", short, err)
	}
	waitFor(t, "entry with a short TTL expires", func() bool {
		_, err := m.Get(ctx, "b")
		return errors.Is(err, ErrNotFound)
	})
	if err := m.Set(ctx, "c", e, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(ctx, "c"); !errors.Is(err, ErrNotFound) {
		t.Fatal("ttl 0 stored")
	}
	for k, path := range map[string]string{"d1": "/img/a", "d2": "/css/a"} {
		if err := m.Set(ctx, k, &Entry{Status: 200, Path: path}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if n := m.DeleteFunc(func(_ string, e *Entry) bool { return e.Path == "/img/a" }); n != 1 {
		t.Fatalf("DeleteFunc removed %d", n)
	}
	if _, err := m.Get(ctx, "d2"); err != nil {
		t.Fatal("DeleteFunc removed too much")
	}
}

// smallObject is a stored 1 KiB response with the header fields an origin
// typically sends, as issue 14 measured them.
func smallObject(i int) *Entry {
	now := time.Now()
	return &Entry{
		Kind: KindResponse, Status: 200,
		Header: http.Header{
			"Content-Type":   {"application/octet-stream"},
			"Content-Length": {"1024"},
			"Date":           {now.UTC().Format(http.TimeFormat)},
			"Last-Modified":  {t0.Format(http.TimeFormat)},
			"Etag":           {fmt.Sprintf(`"%08x-400"`, i)},
			"Cache-Control":  {"public, max-age=3600"},
			"Server":         {"origin"},
		},
		Body:        make([]byte, 1024), // its own, as read from an origin
		RequestTime: now, ResponseTime: now, Lifetime: time.Hour,
		Path: fmt.Sprintf("/objects/%d", i),
	}
}

// heapPerObject fills a tier (large enough to evict nothing) with n small
// objects and returns the live heap they added per object and what the
// tier weighed per object.
func heapPerObject(t testing.TB, n int) (heap, weighed, objects float64) {
	m := newMemory(t, 4<<30)
	ctx := context.Background()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		if err := m.Set(ctx, fmt.Sprintf("https://www.example.test/objects/%d?v=1", i), smallObject(i), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	m.CleanUp()
	runtime.GC()
	runtime.ReadMemStats(&after)
	if m.Len() != n {
		t.Fatalf("tier holds %d of %d objects", m.Len(), n)
	}
	heap = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
	weighed = float64(m.WeightedSize()) / float64(n)
	objects = float64(int64(after.HeapObjects)-int64(before.HeapObjects)) / float64(n)
	runtime.KeepAlive(m)
	return heap, weighed, objects
}

// TestMemoryWeighsHeap checks the weigher is honest: what the tier counts
// per object is what an object really adds to the heap, within 10%, so
// that the byte bound bounds memory (issue 14: 1.7 KB counted, 2.5 KB
// used).
func TestMemoryWeighsHeap(t *testing.T) {
	heap, weighed, _ := heapPerObject(t, 20_000)
	t.Logf("heap %.0f B/object, weighed %.0f B/object", heap, weighed)
	if heap > weighed*1.1 || heap < weighed*0.9 {
		t.Fatalf("an object costs %.0f bytes of heap but is weighed %.0f", heap, weighed)
	}
}

// BenchmarkMemoryOverhead measures what a small object costs in the
// memory tier: heap per object, what the tier weighs it, and the overhead
// beyond its encoding and key (otter's node and index), which is
// memEntryOverhead.
func BenchmarkMemoryOverhead(b *testing.B) {
	const n = 100_000
	var heap, weighed, objects float64
	for b.Loop() {
		heap, weighed, objects = heapPerObject(b, n)
	}
	b.ReportMetric(objects, "heap-objects/object")
	key := sizeClass(len("https://www.example.test/objects/50000?v=1"))
	block := int(flatten(smallObject(n / 2)).size())
	b.ReportMetric(heap, "B/object-heap")
	b.ReportMetric(weighed, "B/object-weighed")
	b.ReportMetric(heap-float64(key+block), "B/object-overhead")
}

// TestMemoryEntriesArePrivate checks the flat tier's copies: changing the
// entry given to Set, or one Get returned, changes nothing stored.
func TestMemoryEntriesArePrivate(t *testing.T) {
	m := newMemory(t, 1<<20)
	ctx := context.Background()
	e := sampleEntry()
	if err := m.Set(ctx, "a", e, time.Hour); err != nil {
		t.Fatal(err)
	}
	e.Body[0] = 'X'
	e.Header.Set("Content-Type", "changed/after-set")
	got, err := m.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	got.Header.Set("Age", "5")
	got.Header.Add("X-Multi", "c")
	got.Header.Del("Etag")
	got, err = m.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	want := sampleEntry()
	if string(got.Body) != string(want.Body) || got.Header.Get("Content-Type") != "text/html" ||
		got.Header.Get("Age") != "" || got.Header.Get("Etag") != `"v1"` || len(got.Header["X-Multi"]) != 2 ||
		got.Path != want.Path || len(got.VaryFields) != 1 || !got.ResponseTime.Equal(want.ResponseTime) {
		t.Fatalf("stored entry changed: %+v", got)
	}
}

// TestDoHitsLeaveTheStoredHeader checks that hits answered from the memory
// tier's decoded header (reused as the response's) never leak what one
// response added into the next: Age, a 206's Content-Range, a 304's
// missing fields.
func TestDoHitsLeaveTheStoredHeader(t *testing.T) {
	clk := &clock{t: t0}
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("ETag", `"e1"`)
		fmt.Fprint(w, "0123456789")
	})
	c := newCache(t, clk, nil)
	if resp, _ := do(t, c, pol, o, "GET", "https://e.com/h"); resp.Outcome != Miss {
		t.Fatalf("first GET: %v", resp.Outcome)
	}
	clk.Add(3 * time.Second)
	for _, kv := range [][]string{{"Range", "bytes=2-4"}, {"If-None-Match", `"e1"`}, nil} {
		resp, body := do(t, c, pol, o, "GET", "https://e.com/h", kv...)
		if resp.Outcome != Hit {
			t.Fatalf("%v: %v", kv, resp.Outcome)
		}
		if kv == nil && (resp.Status != 200 || body != "0123456789" || resp.Header.Get("Content-Range") != "" ||
			resp.Header.Get("Content-Type") != "text/plain" || resp.Header.Get("Content-Length") != "10") {
			t.Fatalf("full hit after a 206 and a 304: %d %q %v", resp.Status, body, resp.Header)
		}
		if ages := resp.Header.Values("Age"); len(ages) != 1 || ages[0] != "3" {
			t.Fatalf("%v: Age %q", kv, ages)
		}
	}
	if n := o.calls.Load(); n != 1 {
		t.Fatalf("%d origin calls", n)
	}
}

// TestMemoryTakesItsMaxObjectSize checks the tier keeps a body as large as
// the MaxObjectSize it advertises (what the cache reads into memory to
// store), although the block holding it is rounded up to whole pages.
func TestMemoryTakesItsMaxObjectSize(t *testing.T) {
	for _, bound := range []int64{1 << 20, 16 << 20, 256 << 20} {
		m := newMemory(t, bound)
		e := smallObject(1)
		e.Header.Set("Set-Cookie2", strings.Repeat("c", 4000)) // a large header too
		e.Body = make([]byte, m.MaxObjectSize())
		if err := m.Set(context.Background(), "https://www.example.test/"+strings.Repeat("k", 1000), e, time.Hour); err != nil {
			t.Fatalf("bound %d: a %d-byte body: %v", bound, len(e.Body), err)
		}
	}
}

// TestMemoryEntryOutlivesEviction checks an entry from Get stays intact
// after the tier drops it and the collector runs: its strings and body
// are views of the stored blocks, which they must keep alive.
func TestMemoryEntryOutlivesEviction(t *testing.T) {
	m := newMemory(t, 1<<20)
	ctx := context.Background()
	if err := m.Set(ctx, "a", smallObject(7), time.Hour); err != nil {
		t.Fatal(err)
	}
	got, err := m.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	m.CleanUp()
	var junk [][]byte
	for range 3 {
		runtime.GC()
		for range 2000 { // reuse the freed memory, if it was freed
			b := make([]byte, 1024)
			for i := range b {
				b[i] = 0xAA
			}
			junk = append(junk, b)
		}
	}
	runtime.KeepAlive(junk)
	want := smallObject(7)
	for k := range want.Header {
		if k != "Date" && got.Header.Get(k) != want.Header.Get(k) {
			t.Errorf("%s: %q, want %q", k, got.Header.Get(k), want.Header.Get(k))
		}
	}
	if got.Path != want.Path || len(got.Body) != 1024 || strings.Count(string(got.Body), "\x00") != 1024 {
		t.Fatalf("entry changed after eviction: path %q, body %d bytes", got.Path, len(got.Body))
	}
}
