package redisstore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"time"
)

// Lock takes the named lock, waiting while another holder's lease is live.
// It returns when the lock is acquired, when ctx ends, or at the first Redis
// error (certmagic retries the whole operation later). While held, the lease
// is refreshed every TTL/3 until Unlock, so a long ACME order (certmagic may
// hold the lock through retry sleeps) keeps it, and a crashed holder loses it
// one TTL after its last refresh.
func (s *Storage) Lock(ctx context.Context, name string) error {
	for {
		ok, left, err := s.acquire(ctx, name)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		// Retry at the poll interval, or sooner if the lease ends sooner; a
		// little jitter keeps waiting nodes from retrying in lockstep.
		wait := s.poll
		if left > 0 && left < wait {
			wait = left
		}
		wait += time.Duration(mrand.Int64N(int64(wait)/4 + 1))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("redisstore: lock %q: gave up waiting for the current holder: %w", name, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// TryLock takes the named lock if it is free and reports whether it did,
// without waiting. A taken lock is not an error.
func (s *Storage) TryLock(ctx context.Context, name string) (bool, error) {
	ok, _, err := s.acquire(ctx, name)
	return ok, err
}

// acquire makes one attempt; when the lock is taken it also returns how long
// the current lease has left.
func (s *Storage) acquire(ctx context.Context, name string) (bool, time.Duration, error) {
	if name == "" {
		return false, 0, errors.New("redisstore: lock: empty name")
	}
	key := s.lockKey(name)
	token := rand.Text()
	res, err := s.scripts.acquire.Run(ctx, s.client, []string{key}, token, s.ttl.Milliseconds()).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("redisstore: lock %q (key %s): %w", name, key, err)
	}
	if len(res) == 0 {
		return false, 0, fmt.Errorf("redisstore: lock %q (key %s): empty script reply", name, key)
	}
	if res[0] != 1 {
		var left time.Duration
		if len(res) > 1 {
			left = time.Duration(res[1]) * time.Millisecond
		}
		return false, left, nil
	}
	if err := s.hold(name, key, token); err != nil {
		return false, 0, err
	}
	return true, 0, nil
}

// hold records a newly acquired lease and starts its refresher.
func (s *Storage) hold(name, key, token string) error {
	ctx, cancel := context.WithCancel(context.Background())
	l := &lease{token: token, stop: cancel, done: make(chan struct{})}
	s.mu.Lock()
	if s.leases == nil {
		s.mu.Unlock()
		cancel()
		// Closed meanwhile: hand the lock back rather than leave it to expire.
		uctx, ucancel := context.WithTimeout(context.Background(), s.ttl)
		defer ucancel()
		_ = s.scripts.unlock.Run(uctx, s.client, []string{key}, token).Err()
		return fmt.Errorf("redisstore: lock %q: storage closed", name)
	}
	old := s.leases[name]
	s.leases[name] = l
	s.mu.Unlock()
	if old != nil {
		// Redis let us take a name we thought we held: our earlier lease
		// expired, and its refresher has already reported that.
		old.stop()
		<-old.done
		s.log.Warn().Str("lock", name).Msg("redisstore: replaced a lease of this storage that had expired")
	}
	go s.refresh(ctx, name, key, l)
	return nil
}

// refresh extends the lease every TTL/3 until ctx ends. Each failure is
// logged at error level with how long the lease has gone unrefreshed, since
// past one TTL another node may take the lock; a lease found gone or taken
// is logged and refreshing stops (there is nothing left to extend).
func (s *Storage) refresh(ctx context.Context, name, key string, l *lease) {
	defer close(l.done)
	interval := s.ttl / 3
	t := time.NewTicker(interval)
	defer t.Stop()
	last := time.Now()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, interval)
		n, err := s.scripts.refresh.Run(rctx, s.client, []string{key}, l.token, s.ttl.Milliseconds()).Int64()
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			failures++
			since := time.Since(last)
			s.log.Error().Err(err).Str("lock", name).Str("key", key).
				Int("consecutive_failures", failures).Stringer("since_last_refresh", since).
				Bool("lease_may_have_expired", since >= s.ttl).
				Msg("redisstore: could not refresh lock lease; once it expires another node may take the lock")
		case n == 0:
			s.log.Error().Str("lock", name).Str("key", key).Stringer("since_last_refresh", time.Since(last)).
				Msg("redisstore: lock lease lost (expired or taken by another holder); the critical section is no longer exclusive")
			return
		default:
			if failures > 0 {
				s.log.Warn().Str("lock", name).Int("failures", failures).Msg("redisstore: lock lease refreshed again after failures")
			}
			failures = 0
			last = time.Now()
		}
	}
}

// Unlock stops the refresher and deletes the lease if it still carries this
// holder's token. If it does not (the lease expired and another node may hold
// the lock now), the other holder's lock is left alone and the error wraps
// ErrLockLost. If Redis cannot be reached, the lease expires within one TTL.
func (s *Storage) Unlock(ctx context.Context, name string) error {
	key := s.lockKey(name)
	s.mu.Lock()
	l, ok := s.leases[name]
	if ok {
		delete(s.leases, name)
	}
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("redisstore: unlock %q: %w", name, ErrLockNotHeld)
	}
	l.stop()
	<-l.done
	n, err := s.scripts.unlock.Run(ctx, s.client, []string{key}, l.token).Int64()
	if err != nil {
		return fmt.Errorf("redisstore: unlock %q (key %s; the lease expires within %s): %w", name, key, s.ttl, err)
	}
	if n == 0 {
		return fmt.Errorf("redisstore: unlock %q (key %s): %w", name, key, ErrLockLost)
	}
	return nil
}

// RenewLockLease confirms that this Storage still holds lockKey and extends
// its lease by the configured TTL at once. certmagic calls it before each
// retry of an order.
//
// leaseDuration (certmagic asks for the retry interval plus the order
// timeout, up to hours) is deliberately not applied: the refresher already
// keeps the lease alive for as long as this process holds the lock, and a
// longer lease would only keep a crashed node's lock alive for hours.
// The error wraps ErrLockNotHeld or ErrLockLost when the lock is not ours, so
// that certmagic stops the attempt instead of ordering without exclusivity.
func (s *Storage) RenewLockLease(ctx context.Context, lockKey string, leaseDuration time.Duration) error {
	key := s.lockKey(lockKey)
	s.mu.Lock()
	l, ok := s.leases[lockKey]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("redisstore: renew lease %q: %w", lockKey, ErrLockNotHeld)
	}
	n, err := s.scripts.refresh.Run(ctx, s.client, []string{key}, l.token, s.ttl.Milliseconds()).Int64()
	if err != nil {
		return fmt.Errorf("redisstore: renew lease %q (key %s): %w", lockKey, key, err)
	}
	if n == 0 {
		return fmt.Errorf("redisstore: renew lease %q (key %s): %w", lockKey, key, ErrLockLost)
	}
	return nil
}
