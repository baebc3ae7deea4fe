package acme

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
)

// errStorageClosed is what certificate storage answers once the Manager
// that owns it has closed.
var errStorageClosed = errors.New("certificate storage: closed (the edge is shutting down or reloading)")

// gatedStorage is the certmagic.Storage a Manager hands to certmagic. An
// order or renewal that certmagic started keeps running on its own job
// queue after the Manager's context is cancelled; without the gate it could
// still write to the storage after Close returned, leaving lock files in a
// directory the operator (or a reload's new Manager) believes is settled.
// After close, every operation but Unlock fails with errStorageClosed, and
// close waits for the operations in flight and the locks still held.
type gatedStorage struct {
	certmagic.Storage

	mu     sync.Mutex
	cond   *sync.Cond
	closed bool
	busy   int             // operations in flight
	held   map[string]bool // locks taken through the gate and not yet released
}

// newGatedStorage wraps s. The Storage it returns keeps the optional
// interfaces certmagic looks for (TryLocker, LockLeaseRenewer) exactly when
// s has them, since certmagic changes how it locks on their presence.
func newGatedStorage(s certmagic.Storage) (certmagic.Storage, *gatedStorage) {
	g := &gatedStorage{Storage: s, held: make(map[string]bool)}
	g.cond = sync.NewCond(&g.mu)
	_, try := s.(certmagic.TryLocker)
	_, lease := s.(certmagic.LockLeaseRenewer)
	switch {
	case try && lease:
		return gatedTryLeaser{gatedTryLocker{g}}, g
	case try:
		return gatedTryLocker{g}, g
	case lease:
		return gatedLeaser{g}, g
	}
	return g, g
}

// gatedTryLocker is a gated storage whose underlying one is a TryLocker.
type gatedTryLocker struct{ *gatedStorage }

// TryLock implements certmagic.TryLocker.
func (g gatedTryLocker) TryLock(ctx context.Context, name string) (bool, error) {
	if err := g.enter(); err != nil {
		return false, err
	}
	defer g.leave()
	ok, err := g.Storage.(certmagic.TryLocker).TryLock(ctx, name)
	if ok && err == nil {
		g.mu.Lock()
		g.held[name] = true
		g.mu.Unlock()
	}
	return ok, err
}

// gatedLeaser is a gated storage whose underlying one renews lock leases.
type gatedLeaser struct{ *gatedStorage }

// RenewLockLease implements certmagic.LockLeaseRenewer.
func (g gatedLeaser) RenewLockLease(ctx context.Context, lockKey string, lease time.Duration) error {
	if err := g.enter(); err != nil {
		return err
	}
	defer g.leave()
	return g.Storage.(certmagic.LockLeaseRenewer).RenewLockLease(ctx, lockKey, lease)
}

// gatedTryLeaser is a gated storage with both optional interfaces.
type gatedTryLeaser struct{ gatedTryLocker }

// RenewLockLease implements certmagic.LockLeaseRenewer.
func (g gatedTryLeaser) RenewLockLease(ctx context.Context, lockKey string, lease time.Duration) error {
	return gatedLeaser{g.gatedStorage}.RenewLockLease(ctx, lockKey, lease)
}

// enter admits an operation unless the gate is closed; a nil error must be
// followed by leave.
func (g *gatedStorage) enter() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return errStorageClosed
	}
	g.busy++
	return nil
}

func (g *gatedStorage) leave() {
	g.mu.Lock()
	g.busy--
	g.mu.Unlock()
	g.cond.Broadcast()
}

// close refuses new operations and waits, at most wait, for those in flight
// and for held locks to be released (certmagic releases them as its jobs see
// their context cancelled). It reports whether everything settled in time.
func (g *gatedStorage) close(wait time.Duration) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	// sync.Cond has no timed wait: a timer wakes the waiter at the deadline.
	expired := false
	t := time.AfterFunc(wait, func() {
		g.mu.Lock()
		expired = true
		g.mu.Unlock()
		g.cond.Broadcast()
	})
	defer t.Stop()
	for (g.busy > 0 || len(g.held) > 0) && !expired {
		g.cond.Wait()
	}
	return g.busy == 0 && len(g.held) == 0
}

// Lock implements certmagic.Locker.
func (g *gatedStorage) Lock(ctx context.Context, name string) error {
	if err := g.enter(); err != nil {
		return err
	}
	defer g.leave()
	if err := g.Storage.Lock(ctx, name); err != nil {
		return err
	}
	g.mu.Lock()
	g.held[name] = true
	g.mu.Unlock()
	return nil
}

// Unlock implements certmagic.Locker; it is let through after close, so
// that a job cancelled by close can release what it holds.
func (g *gatedStorage) Unlock(ctx context.Context, name string) error {
	g.mu.Lock()
	g.busy++
	g.mu.Unlock()
	err := g.Storage.Unlock(ctx, name)
	g.mu.Lock()
	delete(g.held, name)
	g.busy--
	g.mu.Unlock()
	g.cond.Broadcast()
	return err
}

// Store implements certmagic.Storage.
func (g *gatedStorage) Store(ctx context.Context, key string, value []byte) error {
	if err := g.enter(); err != nil {
		return err
	}
	defer g.leave()
	return g.Storage.Store(ctx, key, value)
}

// Load implements certmagic.Storage.
func (g *gatedStorage) Load(ctx context.Context, key string) ([]byte, error) {
	if err := g.enter(); err != nil {
		return nil, err
	}
	defer g.leave()
	return g.Storage.Load(ctx, key)
}

// Delete implements certmagic.Storage.
func (g *gatedStorage) Delete(ctx context.Context, key string) error {
	if err := g.enter(); err != nil {
		return err
	}
	defer g.leave()
	return g.Storage.Delete(ctx, key)
}

// Exists implements certmagic.Storage; a closed gate reports false.
func (g *gatedStorage) Exists(ctx context.Context, key string) bool {
	if err := g.enter(); err != nil {
		return false
	}
	defer g.leave()
	return g.Storage.Exists(ctx, key)
}

// List implements certmagic.Storage.
func (g *gatedStorage) List(ctx context.Context, path string, recursive bool) ([]string, error) {
	if err := g.enter(); err != nil {
		return nil, err
	}
	defer g.leave()
	return g.Storage.List(ctx, path, recursive)
}

// Stat implements certmagic.Storage.
func (g *gatedStorage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	if err := g.enter(); err != nil {
		return certmagic.KeyInfo{}, err
	}
	defer g.leave()
	return g.Storage.Stat(ctx, key)
}
