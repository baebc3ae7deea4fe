package cache

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/maypok86/otter/v2"
)

// MemoryOptions configures the memory tier.
type MemoryOptions struct {
	// MaxBytes bounds the tier's accounted size (keys, headers, bodies).
	MaxBytes int64
	// MaxObjectSize is the largest single entry kept; larger ones would evict
	// a large part of the working set for one object. Default MaxBytes/16.
	MaxObjectSize int64
	// Now is the clock used to stamp Expires; time.Now when nil.
	Now func() time.Time
}

// Memory is the byte-bounded memory tier, built on otter (W-TinyLFU with a
// weigher, per-entry expiry).
type Memory struct {
	c      *otter.Cache[string, memItem]
	maxObj int64
	now    func() time.Time
}

type memItem struct {
	e      *Entry
	ttl    time.Duration
	weight uint32
}

// NewMemory builds a memory tier; Close it to stop its maintenance goroutine.
func NewMemory(o MemoryOptions) (*Memory, error) {
	if o.MaxBytes <= 0 {
		return nil, fmt.Errorf("memory cache: MaxBytes must be positive, got %d", o.MaxBytes)
	}
	if o.MaxObjectSize <= 0 {
		o.MaxObjectSize = max(o.MaxBytes/16, 1)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c, err := otter.New(&otter.Options[string, memItem]{
		MaximumWeight: uint64(o.MaxBytes),
		Weigher:       func(_ string, v memItem) uint32 { return v.weight },
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, memItem]) time.Duration {
			return e.Value.ttl
		}),
	})
	if err != nil {
		return nil, fmt.Errorf("memory cache: %w", err)
	}
	return &Memory{c: c, maxObj: min(o.MaxObjectSize, math.MaxUint32), now: o.Now}, nil
}

// Get returns the entry at key or ErrNotFound. It does not block.
func (m *Memory) Get(_ context.Context, key string) (*Entry, error) {
	if it, ok := m.c.GetIfPresent(key); ok {
		return it.e, nil
	}
	return nil, ErrNotFound
}

// Set keeps a shallow copy of e (its Expires stamped) for ttl.
func (m *Memory) Set(_ context.Context, key string, e *Entry, ttl time.Duration) error {
	if ttl <= 0 {
		return nil
	}
	if e.Content != nil {
		return fmt.Errorf("memory cache: a body kept outside memory stays there: %w", ErrTooLarge)
	}
	w := int64(len(key) + e.Size())
	if w > m.maxObj {
		return fmt.Errorf("memory cache: %d bytes over the %d-byte object limit: %w", w, m.maxObj, ErrTooLarge)
	}
	cp := *e
	cp.Expires = m.now().Add(ttl)
	m.c.Set(key, memItem{e: &cp, ttl: ttl, weight: uint32(w)})
	return nil
}

// Delete removes key.
func (m *Memory) Delete(_ context.Context, key string) error {
	m.c.Invalidate(key)
	return nil
}

// DeleteFunc removes every entry for which match is true. It walks the whole
// tier, so it is for invalidation purges off the request path.
func (m *Memory) DeleteFunc(match func(key string, e *Entry) bool) int {
	n := 0
	for k, it := range m.c.All() {
		if match(k, it.e) {
			m.c.Invalidate(k)
			n++
		}
	}
	return n
}

// WeightedSize is the tier's own account of the bytes it retains. It may
// briefly exceed MaxBytes while eviction catches up; CleanUp settles it.
func (m *Memory) WeightedSize() uint64 { return m.c.WeightedSize() }

// CleanUp runs pending maintenance (eviction, expiry) now.
func (m *Memory) CleanUp() { m.c.CleanUp() }

// Usage is the bytes accounted and the entries held (Sizer).
func (m *Memory) Usage() (bytes int64, entries int) {
	return int64(m.c.WeightedSize()), m.c.EstimatedSize()
}

// MaxObjectSize is the largest entry Set keeps (ObjectLimiter), less a
// little for the key and header.
func (m *Memory) MaxObjectSize() int64 { return max(m.maxObj-4096, 0) }

// Len is the number of entries held.
func (m *Memory) Len() int { return m.c.EstimatedSize() }

// Close stops the tier's background goroutines.
func (m *Memory) Close() { m.c.StopAllGoroutines() }
