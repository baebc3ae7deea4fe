package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgegate/edgegate/internal/syncbuf"
	"github.com/edgegate/edgegate/internal/testredis"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

func newTiered(t testing.TB, srv *testredis.Server, log *syncbuf.Buffer) *Tiered {
	t.Helper()
	var remote Store
	if srv != nil {
		remote = NewRedis(redisClient(t, srv), RedisOptions{ChunkSize: 1024})
	}
	var w zerolog.Logger
	if log != nil {
		w = zerolog.New(log)
	}
	return NewTiered(TieredOptions{Logger: w, RetryInterval: 50 * time.Millisecond, Budget: 500 * time.Millisecond},
		Tier{Name: "memory", Store: newMemory(t, 1<<20)}, Tier{Name: "redis", Store: remote, Remote: true})
}

// TestTieredTwoEdges: a fill on one edge is a hit on another sharing Redis,
// copied into the second edge's memory tier.
func TestTieredTwoEdges(t *testing.T) {
	srv := testredis.Start(t)
	a, b := newTiered(t, srv, nil), newTiered(t, srv, nil)
	ctx := context.Background()
	e := sampleEntry()
	e.Body = bytes.Repeat([]byte("z"), 5000) // chunked
	if err := a.Set(ctx, "k", e, time.Minute); err != nil {
		t.Fatal(err)
	}
	got, err := b.Get(ctx, "k")
	if err != nil || !bytes.Equal(got.Body, e.Body) {
		t.Fatalf("edge b: %v", err)
	}
	if _, err := b.Tier("memory").Get(ctx, "k"); err != nil {
		t.Fatal("remote hit not promoted to memory")
	}
	_ = a.Delete(ctx, "k")
	if _, err := a.Get(ctx, "k"); !errors.Is(err, ErrNotFound) {
		t.Fatal("delete")
	}
}

// TestTieredRedisOutage kills Redis mid-load: callers see no error and keep
// their memory hits; Redis is used again once it is back.
func TestTieredRedisOutage(t *testing.T) {
	srv := testredis.Start(t)
	log := &syncbuf.Buffer{}
	a := newTiered(t, srv, log)
	b := newTiered(t, srv, nil)
	ctx := context.Background()
	var errs atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Sprintf("w%d-%d", w, i%50)
				if err := a.Set(ctx, k, sampleEntry(), time.Minute); err != nil {
					errs.Add(1)
				}
				if _, err := a.Get(ctx, k); err != nil {
					errs.Add(1) // memory always has it
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	srv.Kill()
	waitFor(t, "outage noticed", func() bool { return !a.RemoteUp() })
	time.Sleep(200 * time.Millisecond)
	srv.Restart()
	waitFor(t, "remote used again", func() bool { return a.RemoteUp() })
	_ = a.Set(ctx, "after", sampleEntry(), time.Minute)
	close(stop)
	wg.Wait()
	if n := errs.Load(); n != 0 {
		t.Fatalf("%d errors reached callers", n)
	}
	waitFor(t, "fill after restart visible on edge b", func() bool {
		_, err := b.Get(ctx, "after")
		return err == nil
	})
	out := log.String()
	if !bytes.Contains([]byte(out), []byte("going on without it")) || !bytes.Contains([]byte(out), []byte("answers again")) {
		t.Fatalf("log lacks outage and recovery:\n%s", out)
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTieredHungRedis stops Redis (SIGSTOP) with a client on go-redis's
// default timeouts (seconds): a lookup costs at most the budget, later ones
// skip Redis, and once Redis runs again it is used again by itself.
func TestTieredHungRedis(t *testing.T) {
	srv := testredis.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()}) // default timeouts: 5s dial, 3s read
	t.Cleanup(func() { rdb.Close() })
	const budget = 40 * time.Millisecond
	tr := NewTiered(TieredOptions{Budget: budget, RetryInterval: 100 * time.Millisecond},
		Tier{Name: "memory", Store: newMemory(t, 1<<20)},
		Tier{Name: "redis", Store: NewRedis(rdb, RedisOptions{}), Remote: true})
	ctx := context.Background()
	if err := tr.Set(ctx, "warm", sampleEntry(), time.Minute); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	defer srv.Resume()
	var worst time.Duration
	for i := range 20 {
		start := time.Now()
		if _, err := tr.Get(ctx, fmt.Sprintf("absent%d", i)); !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
		_ = tr.Set(ctx, fmt.Sprintf("new%d", i), sampleEntry(), time.Minute)
		worst = max(worst, time.Since(start))
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("worst lookup+store with Redis hung: %s (budget %s)", worst, budget)
	if worst > budget+150*time.Millisecond { // slack for a loaded 2-core machine; seconds before the fix
		t.Fatalf("a lookup and store took %s with a budget of %s", worst, budget)
	}
	if tr.RemoteUp() {
		t.Fatal("hung Redis still counted as up")
	}
	srv.Resume()
	waitFor(t, "Redis used again", func() bool {
		_, _ = tr.Get(ctx, "probe")
		return tr.RemoteUp()
	})
}

// TestTieredPromotion: a small lower-tier hit moves up at once; a larger
// one only once asked for again.
func TestTieredPromotion(t *testing.T) {
	mem := newMemory(t, 8<<20)
	disk := newDisk(t, t.TempDir(), 8<<20)
	tr := NewTiered(TieredOptions{}, Tier{Name: "memory", Store: mem}, Tier{Name: "disk", Store: disk})
	ctx := context.Background()
	small, large := bodyEntry(1000), bodyEntry(80<<10)
	_ = disk.Set(ctx, "small", small, time.Hour)
	_ = disk.Set(ctx, "large", large, time.Hour)
	for _, k := range []string{"small", "large"} {
		if _, err := tr.Get(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := mem.Get(ctx, "small"); err != nil {
		t.Fatal("small object not promoted on its first lower-tier hit")
	}
	if _, err := mem.Get(ctx, "large"); err == nil {
		t.Fatal("large object promoted on one hit")
	}
	_, _ = tr.Get(ctx, "large")
	if _, err := mem.Get(ctx, "large"); err != nil {
		t.Fatal("large object not promoted on its second hit")
	}
	if b, n := tr.Usage(); n != 4 || b <= 80<<10 {
		t.Fatalf("usage %d bytes in %d entries", b, n)
	}
}
