package cache

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// TieredOptions configures a Tiered store.
type TieredOptions struct {
	// Logger receives the remote tier's outages and recoveries.
	Logger zerolog.Logger
	// RemoteTimeout bounds each remote call, so a black-holed Redis costs a
	// request at most this much; default 500ms.
	RemoteTimeout time.Duration
	// RetryInterval is how long the remote tier is skipped after a failure
	// before one request probes it again; default 1s.
	RetryInterval time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Tiered is the memory tier in front of a shared remote tier (Redis). A
// remote failure never reaches the caller: the store logs it, carries on
// memory-only, and lets one request at a time probe the remote again every
// RetryInterval until it answers, after which it is used again.
type Tiered struct {
	local  *Memory
	remote Store
	o      TieredOptions

	down    atomic.Bool
	probing atomic.Bool
	retryAt atomic.Int64
}

// NewTiered combines a memory tier and a remote tier (nil for memory only).
func NewTiered(local *Memory, remote Store, o TieredOptions) *Tiered {
	if o.RemoteTimeout <= 0 {
		o.RemoteTimeout = 500 * time.Millisecond
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Tiered{local: local, remote: remote, o: o}
}

// Local is the memory tier.
func (t *Tiered) Local() *Memory { return t.local }

// RemoteUp reports whether the remote tier is currently in use.
func (t *Tiered) RemoteUp() bool { return t.remote != nil && !t.down.Load() }

// Get looks in memory, then in the remote tier, copying a remote hit into
// memory for the rest of its remote lifetime.
func (t *Tiered) Get(ctx context.Context, key string) (*Entry, error) {
	if e, err := t.local.Get(ctx, key); err == nil {
		return e, nil
	}
	if !t.useRemote() {
		return nil, ErrNotFound
	}
	rctx, cancel := context.WithTimeout(ctx, t.o.RemoteTimeout)
	defer cancel()
	e, err := t.remote.Get(rctx, key)
	switch {
	case err == nil:
		t.remoteOK()
		if ttl := e.Expires.Sub(t.o.Now()); ttl > 0 {
			_ = t.local.Set(ctx, key, e, ttl)
		}
		return e, nil
	case errors.Is(err, ErrNotFound):
		t.remoteOK()
		return nil, ErrNotFound
	case ctx.Err() != nil:
		t.probing.Store(false)
		return nil, ctx.Err() // the caller went away; not the remote's fault
	default:
		t.remoteFailed(err)
		return nil, ErrNotFound
	}
}

// Set stores in memory and in the remote tier; neither failure is returned
// (an object too large for a tier is simply not kept there).
func (t *Tiered) Set(ctx context.Context, key string, e *Entry, ttl time.Duration) error {
	_ = t.local.Set(ctx, key, e, ttl)
	if !t.useRemote() {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, t.o.RemoteTimeout)
	defer cancel()
	switch err := t.remote.Set(rctx, key, e, ttl); {
	case err == nil, errors.Is(err, ErrTooLarge):
		t.remoteOK()
	case ctx.Err() != nil:
		t.probing.Store(false)
	default:
		t.remoteFailed(err)
	}
	return nil
}

// Delete removes key from both tiers; a remote failure is logged only.
func (t *Tiered) Delete(ctx context.Context, key string) error {
	_ = t.local.Delete(ctx, key)
	if !t.useRemote() {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, t.o.RemoteTimeout)
	defer cancel()
	if err := t.remote.Delete(rctx, key); err != nil && ctx.Err() == nil {
		t.remoteFailed(err)
		return nil
	}
	t.remoteOK()
	return nil
}

// useRemote says whether this call may use the remote tier: always while it
// is up; while it is down, only one caller per RetryInterval, as a probe.
func (t *Tiered) useRemote() bool {
	if t.remote == nil {
		return false
	}
	if !t.down.Load() {
		return true
	}
	if t.o.Now().UnixNano() < t.retryAt.Load() {
		return false
	}
	return t.probing.CompareAndSwap(false, true)
}

func (t *Tiered) remoteOK() {
	if t.down.CompareAndSwap(true, false) {
		t.o.Logger.Info().Msg("cache: remote tier answers again; using it")
	}
	t.probing.Store(false)
}

func (t *Tiered) remoteFailed(err error) {
	t.retryAt.Store(t.o.Now().Add(t.o.RetryInterval).UnixNano())
	if t.down.CompareAndSwap(false, true) {
		t.o.Logger.Warn().Err(err).Msg("cache: remote tier failed; serving from memory only")
	}
	t.probing.Store(false)
}
