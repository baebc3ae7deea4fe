package cache

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// Group collapses concurrent origin fetches for one key into one
// (collapsed forwarding). The fetch runs detached from the context of the
// viewer that started it, so that viewer hanging up does not fail the others
// waiting, but it has its own bound, Timeout.
type Group[T any] struct {
	// Timeout bounds one fetch; default 60s.
	Timeout time.Duration

	sf      singleflight.Group
	wg      sync.WaitGroup
	waiting atomic.Int64 // callers of Do waiting for a result
}

// Do runs fetch once for all concurrent callers with the same key. A caller
// whose ctx ends stops waiting (and gets ctx's error); the fetch goes on for
// the others. shared reports whether the result went to more than one caller.
func (g *Group[T]) Do(ctx context.Context, key string, fetch func(ctx context.Context) (T, error)) (v T, shared bool, err error) {
	ch := g.start(ctx, key, fetch)
	g.waiting.Add(1)
	defer g.waiting.Add(-1)
	select {
	case r := <-ch:
		if r.Err != nil {
			return v, r.Shared, r.Err
		}
		return r.Val.(T), r.Shared, nil
	case <-ctx.Done():
		return v, false, fmt.Errorf("waiting for origin fetch: %w", ctx.Err())
	}
}

// Background starts fetch for key unless one is already running, and returns
// at once: a stale-while-revalidate refresh runs once however many viewers
// see the stale entry meanwhile. ctx supplies values only; its cancellation
// is ignored.
func (g *Group[T]) Background(ctx context.Context, key string, fetch func(ctx context.Context) (T, error)) {
	_ = g.start(ctx, key, fetch)
}

// Waiting reports how many callers of Do are waiting for a fetch's result
// (a measure of collapsed forwarding).
func (g *Group[T]) Waiting() int64 { return g.waiting.Load() }

// Wait blocks until every fetch started by the group has finished (tests,
// graceful shutdown).
func (g *Group[T]) Wait() { g.wg.Wait() }

func (g *Group[T]) start(ctx context.Context, key string, fetch func(ctx context.Context) (T, error)) <-chan singleflight.Result {
	timeout := g.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	detached := context.WithoutCancel(ctx)
	ch := g.sf.DoChan(key, func() (any, error) {
		fctx, cancel := context.WithTimeout(detached, timeout)
		defer cancel()
		return fetch(fctx)
	})
	// Relay the result so that Wait covers this call whether it started the
	// fetch or joined one, and whether or not its caller still waits.
	out := make(chan singleflight.Result, 1)
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		out <- <-ch
	}()
	return out
}
