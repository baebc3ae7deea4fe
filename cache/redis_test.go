package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgegate/edgegate/internal/testredis"
	"github.com/redis/go-redis/v9"
)

func redisClient(t testing.TB, s *testredis.Server) redis.UniversalClient {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRedisStoreChunks(t *testing.T) {
	srv := testredis.Start(t)
	rdb := redisClient(t, srv)
	s := NewRedis(rdb, RedisOptions{ChunkSize: 1000, MaxObjectSize: 100_000})
	ctx := context.Background()
	for _, n := range []int{0, 10, 1000, 1001, 5500} {
		e := sampleEntry()
		e.Body = bytes.Repeat([]byte{byte(n)}, n)
		key := "k" + strings.Repeat("x", n%7)
		if err := s.Set(ctx, key, e, time.Minute); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, key)
		if err != nil || !bytes.Equal(got.Body, e.Body) || got.Header.Get("Content-Type") != "text/html" || got.Expires.IsZero() {
			t.Fatalf("size %d: %v", n, err)
		}
	}
	if _, err := s.Get(ctx, "absent"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	big := sampleEntry()
	big.Body = make([]byte, 100_001)
	if err := s.Set(ctx, "big", big, time.Minute); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over the object limit: %v", err)
	}
	// Keys carry TTLs, chunks a little longer than the metadata.
	keys, _ := rdb.Keys(ctx, "*").Result()
	for _, k := range keys {
		ttl, _ := rdb.PTTL(ctx, k).Result()
		if ttl <= 0 || ttl > time.Minute+chunkGrace {
			t.Fatalf("key %s ttl %s", k, ttl)
		}
	}
	// A rewrite drops the old generation's chunks.
	e := sampleEntry()
	e.Body = make([]byte, 3000)
	_ = s.Set(ctx, "rw", e, time.Minute)
	before, _ := rdb.Keys(ctx, "*:c:*").Result()
	_ = s.Set(ctx, "rw", e, time.Minute)
	after, _ := rdb.Keys(ctx, "*:c:*").Result()
	if len(after) != len(before) {
		t.Fatalf("old chunks kept: %d then %d", len(before), len(after))
	}
	_ = s.Delete(ctx, "rw")
	if _, err := s.Get(ctx, "rw"); !errors.Is(err, ErrNotFound) {
		t.Fatal("deleted")
	}
	// Damage: a missing chunk or a corrupt metadata value is a miss.
	_ = s.Set(ctx, "dmg", e, time.Minute)
	chunks, _ := rdb.Keys(ctx, strings.ReplaceAll(s.objectKey("dmg"), "{", `\{`)+":c:*").Result()
	if len(chunks) != 3 {
		t.Fatalf("chunks %v", chunks)
	}
	rdb.Del(ctx, chunks[1])
	if _, err := s.Get(ctx, "dmg"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing chunk: %v", err)
	}
	rdb.Set(ctx, metaKey(s.objectKey("dmg")), "garbage", time.Minute)
	if _, err := s.Get(ctx, "dmg"); !errors.Is(err, ErrNotFound) || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt metadata: %v", err)
	}
}

// TestRedisNoTornReads rewrites one chunked object with alternating bodies
// while readers check every read is one whole body or a miss.
func TestRedisNoTornReads(t *testing.T) {
	srv := testredis.Start(t)
	s := NewRedis(redisClient(t, srv), RedisOptions{ChunkSize: 512})
	ctx := context.Background()
	bodies := [][]byte{bytes.Repeat([]byte("a"), 4000), bytes.Repeat([]byte("b"), 3000)}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		for i := range 150 {
			e := sampleEntry()
			e.Body = bodies[i%2]
			if err := s.Set(ctx, "hot", e, time.Minute); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var hits, misses int
	var mu sync.Mutex
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				e, err := s.Get(ctx, "hot")
				mu.Lock()
				switch {
				case errors.Is(err, ErrNotFound):
					misses++
				case err != nil:
					t.Error(err)
				case !bytes.Equal(e.Body, bodies[0]) && !bytes.Equal(e.Body, bodies[1]):
					t.Errorf("torn read of %d bytes", len(e.Body))
				default:
					hits++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("%d whole reads, %d misses during rewrites", hits, misses)
	if e, err := s.Get(ctx, "hot"); err != nil || !bytes.Equal(e.Body, bodies[1]) {
		t.Fatalf("final read: %v", err)
	}
}

// TestRedisStreamedWrite: a body written in pieces reads back whole, inline
// or chunked; an aborted write leaves the old object and no chunks.
func TestRedisStreamedWrite(t *testing.T) {
	srv := testredis.Start(t)
	rdb := redisClient(t, srv)
	s := NewRedis(rdb, RedisOptions{ChunkSize: 1000, MaxObjectSize: 100_000})
	ctx := context.Background()
	for _, n := range []int{0, 10, 1000, 1001, 5500} {
		body := patterned(n)
		w, err := s.Create(ctx, "k", sampleEntry(), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		for p := body; len(p) > 0; p = p[min(333, len(p)):] {
			if _, err := w.Write(p[:min(333, len(p))]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, "k")
		if err != nil || !bytes.Equal(got.Body, body) || got.Header.Get("Content-Type") != "text/html" {
			t.Fatalf("size %d: %v", n, err)
		}
	}
	w, _ := s.Create(ctx, "k", sampleEntry(), time.Minute)
	_, _ = w.Write(patterned(4000))
	w.Abort()
	if got, err := s.Get(ctx, "k"); err != nil || len(got.Body) != 5500 {
		t.Fatalf("after an aborted rewrite: %v", err)
	}
	if chunks, _ := rdb.Keys(ctx, "*:c:*").Result(); len(chunks) != 6 {
		t.Fatalf("%d chunks left, want the 6 of the committed object", len(chunks))
	}
	w, _ = s.Create(ctx, "big", sampleEntry(), time.Minute)
	if _, err := w.Write(make([]byte, 100_001)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
}

// TestRedisStreamedRead: a body over InlineBody is returned as Content and
// read chunk by chunk, from any offset; a damaged chunk fails the reader
// before its bytes are returned.
func TestRedisStreamedRead(t *testing.T) {
	srv := testredis.Start(t)
	rdb := redisClient(t, srv)
	s := NewRedis(rdb, RedisOptions{ChunkSize: 1000, InlineBody: 2000})
	ctx := context.Background()
	e := sampleEntry()
	e.Body = patterned(5500)
	if err := s.Set(ctx, "k", e, time.Minute); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "k")
	if err != nil || got.Content == nil || got.Body != nil || got.Content.Size() != 5500 {
		t.Fatalf("large get: %v %+v", err, got)
	}
	for _, off := range []int64{0, 999, 1000, 2500, 5499} {
		r, err := got.Content.Open(off)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(b, e.Body[off:]) {
			t.Fatalf("from %d: %d bytes, %v", off, len(b), err)
		}
	}
	chunks, _ := rdb.Keys(ctx, strings.ReplaceAll(s.objectKey("k"), "{", `\{`)+":c:*").Result()
	for _, k := range chunks {
		if strings.HasSuffix(k, ":3") {
			rdb.SetRange(ctx, k, 10, "XX")
		}
	}
	r, _ := got.Content.Open(0)
	b, err := io.ReadAll(r)
	if !errors.Is(err, ErrCorrupt) || len(b) != 3000 || !bytes.Equal(b, e.Body[:3000]) {
		t.Fatalf("damaged chunk: %d bytes, %v", len(b), err)
	}
}
