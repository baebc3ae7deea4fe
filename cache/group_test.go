package cache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestGroupCollapses(t *testing.T) {
	var g Group[int]
	var calls atomic.Int64
	release := make(chan struct{})
	fetch := func(ctx context.Context) (int, error) {
		calls.Add(1)
		<-release
		return 42, nil
	}
	var wg sync.WaitGroup
	var entered atomic.Int64
	results := make(chan int, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			entered.Add(1)
			v, _, err := g.Do(context.Background(), "k", fetch)
			if err != nil {
				t.Error(err)
			}
			results <- v
		}()
	}
	waitFor(t, "fetch started, all callers in", func() bool { return calls.Load() == 1 && entered.Load() == 20 })
	time.Sleep(100 * time.Millisecond) // from entered to joined
	close(release)
	wg.Wait()
	close(results)
	for v := range results {
		if v != 42 {
			t.Fatalf("got %d", v)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d origin fetches for 20 concurrent misses", n)
	}
}

// TestGroupDetached: the first viewer leaving does not cancel the fetch the
// second still waits for; the fetch keeps its own bound.
func TestGroupDetached(t *testing.T) {
	g := Group[string]{Timeout: 2 * time.Second}
	started := make(chan struct{})
	var startOnce sync.Once
	release := make(chan struct{})
	var fetchErr atomic.Value
	fetch := func(ctx context.Context) (string, error) {
		startOnce.Do(func() { close(started) })
		select {
		case <-release:
			return "ok", nil
		case <-ctx.Done():
			fetchErr.Store(ctx.Err())
			return "", ctx.Err()
		}
	}
	first, cancel := context.WithCancel(context.Background())
	firstErr := make(chan error, 1)
	go func() {
		_, _, err := g.Do(first, "k", fetch)
		firstErr <- err
	}()
	<-started
	second := make(chan string, 1)
	go func() {
		v, _, _ := g.Do(context.Background(), "k", fetch)
		second <- v
	}()
	waitFor(t, "second viewer joined the fetch", func() bool { return g.Waiting() == 2 })
	cancel()
	if err := <-firstErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("first viewer: %v", err)
	}
	close(release)
	if v := <-second; v != "ok" {
		t.Fatalf("second viewer got %q (fetch error %v)", v, fetchErr.Load())
	}

	// Own bound: a fetch that never ends is cut at Timeout.
	g2 := Group[string]{Timeout: 50 * time.Millisecond}
	_, _, err := g2.Do(context.Background(), "slow", func(ctx context.Context) (string, error) {
		<-ctx.Done()
		return "", ctx.Err()
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unbounded fetch: %v", err)
	}
}

func TestGroupBackgroundOnce(t *testing.T) {
	var g Group[int]
	var calls atomic.Int64
	release := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	for range 10 {
		g.Background(ctx, "k", func(ctx context.Context) (int, error) {
			calls.Add(1)
			<-release
			return 1, ctx.Err()
		})
	}
	cancel() // the viewer that triggered the refresh is gone
	close(release)
	g.Wait()
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d refreshes", n)
	}
}
