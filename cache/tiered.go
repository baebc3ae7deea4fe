package cache

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Tier is one level of a Tiered store.
type Tier struct {
	// Name is used in logs ("memory", "disk", "redis").
	Name string
	// Store holds the level's entries.
	Store Store
	// Remote marks a tier across the network (Redis): each call is bounded
	// by TieredOptions.Budget, and after a failure the tier is skipped by a
	// circuit breaker until a probe finds it answering again.
	Remote bool
}

// TieredOptions configures a Tiered store.
type TieredOptions struct {
	// Logger receives remote tiers' outages and recoveries.
	Logger zerolog.Logger
	// Budget bounds how long a viewer waits for a remote tier, so a hung
	// Redis costs a request at most this much; default 50ms.
	Budget time.Duration
	// WriteTimeout bounds a remote write, which goes on in the background
	// once Budget has passed; default 2s.
	WriteTimeout time.Duration
	// RetryInterval is how long a failed remote tier is skipped before one
	// request probes it again; default 1s.
	RetryInterval time.Duration
	// PromoteMinHits is how many lower-tier hits an object larger than
	// PromoteSmall needs before it is copied into the tiers above; default 2.
	// Small objects are promoted on their first lower-tier hit.
	PromoteMinHits int
	// PromoteSmall is the size below which a lower-tier hit is promoted at
	// once; default 64 KiB.
	PromoteSmall int64
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Tiered is an ordered list of tiers (memory → disk → Redis, any subset),
// itself a Store. Get looks in each tier in turn and promotes a lower-tier
// hit into the tiers above it by size and frequency; Set writes every tier
// that takes the entry; Delete deletes everywhere. A remote tier's failure
// never reaches the caller: it is bounded by the budget, logged, and the
// tier is skipped until it answers again.
//
// Tiered has the capabilities some of its tiers have: Purger and Sizer over
// those that implement them, StreamStore through the first streaming tier.
type Tiered struct {
	levels []*level
	o      TieredOptions
	freq   freqSketch
	// writing bounds background writes into tiers that write files; writes
	// tracks them for Wait.
	writing chan struct{}
	writes  sync.WaitGroup
}

// level is a tier and, for a remote one, its circuit breaker.
type level struct {
	Tier
	down    atomic.Bool
	probing atomic.Bool
	retryAt atomic.Int64
}

// errSkipped is a remote tier's call not made because its breaker is open.
var errSkipped = errors.New("cache: remote tier skipped while down")

// NewTiered builds a Tiered store over tiers, fastest first.
func NewTiered(o TieredOptions, tiers ...Tier) *Tiered {
	if o.Budget <= 0 {
		o.Budget = 50 * time.Millisecond
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 2 * time.Second
	}
	if o.PromoteMinHits <= 0 {
		o.PromoteMinHits = 2
	}
	if o.PromoteSmall <= 0 {
		o.PromoteSmall = 64 << 10
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	t := &Tiered{o: o, writing: make(chan struct{}, 16)}
	t.freq.init()
	for _, tr := range tiers {
		if tr.Store != nil {
			t.levels = append(t.levels, &level{Tier: tr})
		}
	}
	return t
}

// Tier returns the store of the named tier, or nil.
func (t *Tiered) Tier(name string) Store {
	for _, l := range t.levels {
		if l.Name == name {
			return l.Store
		}
	}
	return nil
}

// RemoteUp reports whether every remote tier is in use (not skipped by its
// circuit breaker), and false when there is none.
func (t *Tiered) RemoteUp() bool {
	n := 0
	for _, l := range t.levels {
		if l.Remote {
			n++
			if l.down.Load() {
				return false
			}
		}
	}
	return n > 0
}

// Get looks in each tier in turn. A hit in a lower tier is copied into the
// tiers above it when it is small or has been asked for PromoteMinHits
// times (a scan of one-hit objects does not wash out the upper tiers).
func (t *Tiered) Get(ctx context.Context, key string) (*Entry, error) {
	for i, l := range t.levels {
		var e *Entry
		var err error
		if !l.Remote {
			e, err = l.Store.Get(ctx, key) // the hit path: no closure, no goroutine
		} else {
			e, err = t.getRemote(ctx, l, key)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			continue
		}
		if i > 0 {
			e.ownHeader = false // a background write into an upper tier may read it
			t.promote(ctx, key, e, i)
		}
		return e, nil
	}
	return nil, ErrNotFound
}

// getRemote is Get on a remote tier. The call may outlive the wait for it
// (a hung Redis), so its result is passed atomically, not through a shared
// variable.
func (t *Tiered) getRemote(ctx context.Context, l *level, key string) (*Entry, error) {
	var got atomic.Pointer[Entry]
	err := t.call(ctx, l, "get", func(ctx context.Context) error {
		e, err := l.Store.Get(ctx, key)
		if err == nil {
			got.Store(e)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return got.Load(), nil
}

// promote copies e from level i into the levels above it. A write into a
// tier that writes files (a StreamStore: disk) runs in the background,
// bounded, so that a viewer never waits for an fsync; a large body kept
// outside memory (Content: a Redis object read chunk by chunk) moves up
// only into such a tier, streamed.
func (t *Tiered) promote(ctx context.Context, key string, e *Entry, from int) {
	if size := max(int64(e.Size()), e.BodySize()); size > t.o.PromoteSmall && t.freq.add(key) < t.o.PromoteMinHits {
		return
	}
	ttl := e.Expires.Sub(t.o.Now())
	if ttl <= 0 {
		return
	}
	for _, l := range t.levels[:from] {
		switch {
		case writesFiles(l):
			t.background(ctx, l, key, e, ttl, false)
		case e.Content == nil:
			_ = t.call(ctx, l, "promote", func(ctx context.Context) error { return l.Store.Set(ctx, key, e, ttl) }, true)
		}
	}
}

// writesFiles reports whether a tier writes files (a local StreamStore:
// disk), whose Set may wait for an fsync.
func writesFiles(l *level) bool {
	_, ok := l.Store.(StreamStore)
	return ok && !l.Remote
}

// background writes e into a tier that writes files without making the
// caller wait for it (the entry is in the faster tiers meanwhile); when
// too many writes are pending it writes inline if must, else skips.
func (t *Tiered) background(ctx context.Context, l *level, key string, e *Entry, ttl time.Duration, must bool) {
	select {
	case t.writing <- struct{}{}:
		t.writes.Add(1)
		go func() {
			defer t.writes.Done()
			defer func() { <-t.writing }()
			if err := l.Store.Set(context.WithoutCancel(ctx), key, e, ttl); err != nil && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrNotAdmitted) {
				t.o.Logger.Warn().Err(err).Str("tier", l.Name).Msg("cache: write failed")
			}
		}()
	default:
		if must {
			_ = l.Store.Set(ctx, key, e, ttl)
		}
	}
}

// Wait blocks until background writes have finished.
func (t *Tiered) Wait() { t.writes.Wait() }

// Set stores e in every tier that takes it. It returns nil when at least
// one tier stored it, else an error (wrapping ErrTooLarge when every tier
// refused it for its size). A tier that writes files (disk) is written in
// the background, so that a miss does not wait for an fsync, nor a 304 for
// a large body to be copied with its new header (Wait waits).
func (t *Tiered) Set(ctx context.Context, key string, e *Entry, ttl time.Duration) error {
	stored, tooLarge := 0, 0
	var last error
	for _, l := range t.levels {
		if writesFiles(l) {
			if lim, ok := l.Store.(ObjectLimiter); ok && e.BodySize() > lim.MaxObjectSize() {
				tooLarge++
				continue
			}
			t.background(ctx, l, key, e, ttl, true)
			stored++
			continue
		}
		err := t.call(ctx, l, "set", func(ctx context.Context) error { return l.Store.Set(ctx, key, e, ttl) }, true)
		switch {
		case err == nil:
			stored++
		case errors.Is(err, ErrTooLarge):
			tooLarge++
			last = err
		default:
			last = err
		}
	}
	if stored > 0 || len(t.levels) == 0 {
		return nil
	}
	if tooLarge == len(t.levels) {
		return fmt.Errorf("cache: no tier takes %d bytes: %w", e.BodySize(), ErrTooLarge)
	}
	return fmt.Errorf("cache: stored in no tier: %w", last)
}

// Delete removes key from every tier; a remote failure is logged only.
func (t *Tiered) Delete(ctx context.Context, key string) error {
	for _, l := range t.levels {
		_ = t.call(ctx, l, "delete", func(ctx context.Context) error { return l.Store.Delete(ctx, key) }, true)
	}
	return nil
}

// DeleteFunc purges the tiers that can (Purger) and are local.
func (t *Tiered) DeleteFunc(match func(key string, e *Entry) bool) int {
	n := 0
	for _, l := range t.levels {
		if p, ok := l.Store.(Purger); ok && !l.Remote {
			n += p.DeleteFunc(match)
		}
	}
	return n
}

// Usage sums the tiers that report it (Sizer).
func (t *Tiered) Usage() (bytes int64, entries int) {
	for _, l := range t.levels {
		if s, ok := l.Store.(Sizer); ok {
			b, n := s.Usage()
			bytes += b
			entries += n
		}
	}
	return bytes, entries
}

// MaxObjectSize is the largest in-memory entry some tier takes: unbounded
// (-1) when a tier has no limit.
func (t *Tiered) MaxObjectSize() int64 {
	var m int64
	for _, l := range t.levels {
		lim, ok := l.Store.(ObjectLimiter)
		if !ok {
			return -1
		}
		m = max(m, lim.MaxObjectSize())
	}
	return m
}

// Create streams into the first local tier that can (StreamStore: disk).
// Once committed, the entry is copied in the background into the remote
// tiers that take streamed bodies (Redis), so that other edges share it;
// the fill itself never waits for them.
func (t *Tiered) Create(ctx context.Context, key string, e *Entry, ttl time.Duration) (BodyWriter, error) {
	for _, l := range t.levels {
		if s, ok := l.Store.(StreamStore); ok && !l.Remote {
			w, err := s.Create(ctx, key, e, ttl)
			if err != nil {
				return nil, err
			}
			return &sharingWriter{BodyWriter: w, t: t, local: l.Store, key: key, ttl: ttl}, nil
		}
	}
	return nil, fmt.Errorf("cache: no tier takes a streamed body: %w", ErrTooLarge)
}

// sharingWriter copies a committed fill to the remote tiers.
type sharingWriter struct {
	BodyWriter
	t     *Tiered
	local Store
	key   string
	ttl   time.Duration
}

func (w *sharingWriter) Commit(ctx context.Context) error {
	if err := w.BodyWriter.Commit(ctx); err != nil {
		return err
	}
	w.t.copyToRemotes(ctx, w.local, w.key, w.ttl)
	return nil
}

// copyToRemotes streams an entry of a local tier into each remote tier that
// takes streamed bodies and this size, in the background, chunk by chunk
// (no whole body in memory), within 10 times WriteTimeout.
func (t *Tiered) copyToRemotes(ctx context.Context, from Store, key string, ttl time.Duration) {
	for _, l := range t.levels {
		rs, ok := l.Store.(StreamStore)
		if !ok || !l.Remote || !t.allow(l) {
			continue
		}
		t.writes.Add(1)
		go func() {
			defer t.writes.Done()
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*t.o.WriteTimeout)
			defer cancel()
			e, err := from.Get(cctx, key)
			if err != nil || e.Content == nil {
				l.probing.Store(false)
				return
			}
			if lim, ok := l.Store.(ObjectLimiter); ok && e.Content.Size() > lim.MaxObjectSize() {
				l.probing.Store(false)
				return
			}
			t.record(l, copyEntry(cctx, rs, key, e, ttl), false)
		}()
	}
}

func copyEntry(ctx context.Context, to StreamStore, key string, e *Entry, ttl time.Duration) error {
	r, err := e.Content.Open(0)
	if err != nil {
		return nil // gone meanwhile: nothing to share
	}
	defer r.Close()
	w, err := to.Create(ctx, key, e, ttl)
	if err != nil {
		return err
	}
	defer w.Close()
	if _, err := io.Copy(w, r); err != nil {
		w.Abort()
		return err
	}
	return w.Commit(ctx)
}

// CanStream reports whether some tier takes streamed bodies.
func (t *Tiered) CanStream() bool {
	for _, l := range t.levels {
		if _, ok := l.Store.(StreamStore); ok && !l.Remote {
			return true
		}
	}
	return false
}

// call runs op on a tier. A local tier is called directly. A remote one is
// skipped while its breaker is open; otherwise the caller waits for it no
// longer than Budget, even if the client does not honour its context (a
// SIGSTOPped Redis accepts connections and never answers). A read is
// abandoned at Budget and counts as a failure; a write (write true) goes
// on in the background up to WriteTimeout, so that a slow moment does not
// lose it, and only its own outcome counts.
func (t *Tiered) call(ctx context.Context, l *level, what string, op func(context.Context) error, write ...bool) error {
	if !l.Remote {
		return op(ctx)
	}
	if !t.allow(l) {
		return errSkipped
	}
	isWrite := len(write) > 0 && write[0]
	var octx context.Context
	var cancel context.CancelFunc
	if isWrite {
		octx, cancel = context.WithTimeout(context.WithoutCancel(ctx), t.o.WriteTimeout)
	} else {
		octx, cancel = context.WithTimeout(ctx, t.o.Budget)
	}
	done := make(chan error, 1)
	go func() {
		defer cancel()
		err := op(octx)
		if isWrite {
			t.record(l, err, false)
		}
		done <- err
	}()
	wait := time.NewTimer(t.o.Budget)
	defer wait.Stop()
	var err error
	select {
	case err = <-done:
	case <-wait.C:
		if isWrite {
			return nil // still going; its outcome is recorded when it ends
		}
		err = fmt.Errorf("%s tier %s: no answer within %s: %w", l.Name, what, t.o.Budget, context.DeadlineExceeded)
	case <-ctx.Done():
		if isWrite {
			return nil
		}
		err = ctx.Err()
	}
	if !isWrite {
		t.record(l, err, ctx.Err() != nil)
	}
	return err
}

// record feeds a remote call's outcome to the tier's breaker.
func (t *Tiered) record(l *level, err error, callerGone bool) {
	switch {
	case err == nil, errors.Is(err, ErrNotFound), errors.Is(err, ErrTooLarge):
		t.ok(l)
	case callerGone:
		l.probing.Store(false) // the caller went away; not the tier's fault
	default:
		t.failed(l, err)
	}
}

// allow says whether this call may use a remote tier: always while it is
// up; while it is down, one caller per RetryInterval, as a probe.
func (t *Tiered) allow(l *level) bool {
	if !l.down.Load() {
		return true
	}
	if t.o.Now().UnixNano() < l.retryAt.Load() {
		return false
	}
	return l.probing.CompareAndSwap(false, true)
}

func (t *Tiered) ok(l *level) {
	if l.down.CompareAndSwap(true, false) {
		t.o.Logger.Info().Str("tier", l.Name).Msg("cache: remote tier answers again; using it")
	}
	l.probing.Store(false)
}

func (t *Tiered) failed(l *level, err error) {
	l.retryAt.Store(t.o.Now().Add(t.o.RetryInterval).UnixNano())
	if l.down.CompareAndSwap(false, true) {
		t.o.Logger.Warn().Err(err).Str("tier", l.Name).Msg("cache: remote tier failed; going on without it")
	}
	l.probing.Store(false)
}

// freqSketch is a count-min sketch of recent lower-tier hits per key, with
// 4 rows of byte counters halved every resetAfter additions so that old
// popularity fades (TinyLFU's aging). It costs 256 KiB whatever the number
// of keys.
type freqSketch struct {
	mu    sync.Mutex
	seed  maphash.Seed
	rows  [4][1 << 16]uint8
	added int
}

const resetAfter = 10 * (1 << 16)

func (f *freqSketch) init() { f.seed = maphash.MakeSeed() }

// add counts one more hit for key and returns its estimated count.
func (f *freqSketch) add(key string) int {
	h := maphash.String(f.seed, key)
	f.mu.Lock()
	defer f.mu.Unlock()
	est := 255
	for i := range f.rows {
		c := &f.rows[i][uint16(h>>(16*i))]
		if *c < 255 {
			*c++
		}
		est = min(est, int(*c))
	}
	if f.added++; f.added >= resetAfter {
		f.added = 0
		for i := range f.rows {
			for j := range f.rows[i] {
				f.rows[i][j] /= 2
			}
		}
	}
	return est
}
