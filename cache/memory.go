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
//
// Each entry is kept flat: its encoding without the body (appendMeta) in
// one byte slice and its body in another, neither holding pointers, so a
// full tier costs the garbage collector a few objects per entry to mark
// rather than a header map and dozens of strings (issue 14: a tier of
// 150,000 objects held as Entry values made every GC cycle slow and hits
// 30% slower). Get decodes a fresh Entry whose strings and body are views
// of the stored bytes, so it copies no header text. The body has a block
// of its own because header strings can outlive a response (an HTTP/2
// connection's HPACK table keeps up to 4 KiB of fields it sent): they pin
// only the small header block, never a large body.
//
// The weight of an entry is what it costs on the heap: its blocks as
// allocated (rounded up to the allocator's size class), its key, and
// memEntryOverhead for otter's node and index slot.
type Memory struct {
	c      *otter.Cache[string, memItem]
	maxObj int64
	now    func() time.Time
}

// memItem is what otter holds per entry: meta is the entry's encoding
// without the body, and body the body; neither is written after Set
// (Get's decoded entries point into them).
type memItem struct {
	meta, body []byte
	ttl        time.Duration
	weight     uint32
}

// memEntryOverhead is the heap an entry costs beyond its blocks and key:
// otter's node (key and memItem inline, its links, expiry and weight
// fields) and its hash-table slot. BenchmarkMemoryOverhead measured 167
// bytes per object at 100,000 and at 200,000 objects of 1 KiB (1,527
// bytes of heap each, in 4 heap objects; the tier of Entry values used
// 2,023 bytes in 17 objects and weighed them 1,656).
const memEntryOverhead = 168

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

// Get returns the entry at key or ErrNotFound. It does not block. The
// entry is the caller's own (its header map may be changed), but its
// strings and body are views of the stored blocks, which they keep alive
// (TestMemoryEntryOutlivesEviction).
func (m *Memory) Get(_ context.Context, key string) (*Entry, error) {
	it, ok := m.c.GetIfPresent(key)
	if !ok {
		return nil, ErrNotFound
	}
	fe := new(flatEntry)
	if err := decodeShared(it, &fe.Entry, fe.strs[:0]); err != nil {
		return nil, fmt.Errorf("memory cache: %w", err) // unreachable: Set encoded it
	}
	fe.ownHeader = true
	return &fe.Entry, nil
}

// flatEntry is an entry decoded with room for its strings in the same
// allocation: Get then allocates only the entry and its header map.
type flatEntry struct {
	Entry
	strs [16]string
}

// decodeShared decodes an item, whose blocks are never written again,
// sharing its bytes instead of copying them, with strs as room for its
// string slices. The body is capped: an append to it cannot write into
// the stored block.
func decodeShared(it memItem, e *Entry, strs []string) error {
	// The header map gets room for the fields Respond adds (Age,
	// Accept-Ranges, Content-Length) to the map it reuses (respondOwn):
	// growing a full map past 8 fields would allocate it twice.
	d := decoder{b: it.meta, shared: true, strs: strs, room: 3}
	d.meta(e)
	e.Body = it.body[:len(it.body):len(it.body)]
	return d.finish()
}

// Set keeps a copy of e (its Expires stamped) for ttl.
func (m *Memory) Set(_ context.Context, key string, e *Entry, ttl time.Duration) error {
	if ttl <= 0 {
		return nil
	}
	if e.Content != nil {
		return fmt.Errorf("memory cache: a body kept outside memory stays there: %w", ErrTooLarge)
	}
	if w := int64(len(key) + len(e.Body)); w > m.maxObj {
		return fmt.Errorf("memory cache: %d bytes over the %d-byte object limit: %w", w, m.maxObj, ErrTooLarge)
	}
	cp := *e
	cp.Expires = m.now().Add(ttl)
	it := flatten(&cp)
	it.ttl = ttl
	w := it.size() + int64(sizeClass(len(key))) + memEntryOverhead
	if w > m.maxObj {
		return fmt.Errorf("memory cache: %d bytes over the %d-byte object limit: %w", w, m.maxObj, ErrTooLarge)
	}
	it.weight = uint32(w)
	m.c.Set(key, it)
	return nil
}

// flatten copies e into blocks of its own, each with the capacity the
// allocator gave it (append rounds a new array up to its size class), so
// that cap is a block's real cost.
func flatten(e *Entry) memItem {
	meta := appendMeta(make([]byte, 0, 512), e)
	return memItem{meta: append([]byte(nil), meta...), body: append([]byte(nil), e.Body...)}
}

// size is the heap the item's blocks take.
func (it memItem) size() int64 { return int64(cap(it.meta) + cap(it.body)) }

// sizeClass approximates the allocator's rounding of a small allocation of
// n bytes (Go's size classes, runtime/sizeclasses.go): keys are small, and
// this avoids allocating a key just to learn its class.
func sizeClass(n int) int {
	up := func(n, to int) int { return (n + to - 1) / to * to }
	switch {
	case n <= 8:
		return 8
	case n <= 256:
		return up(n, 16)
	case n <= 512:
		return up(n, 32)
	case n <= 768:
		return up(n, 64)
	case n <= 1024:
		return up(n, 128)
	default:
		return up(n, 256)
	}
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
		var e Entry
		if decodeShared(it, &e, nil) == nil && match(k, &e) {
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

// MaxObjectSize is the largest body Set keeps (ObjectLimiter): the object
// limit less room for the key, the header and the allocator's rounding of
// a large block to whole 8 KiB pages.
func (m *Memory) MaxObjectSize() int64 { return max(m.maxObj-16<<10, 0) }

// Len is the number of entries held.
func (m *Memory) Len() int { return m.c.EstimatedSize() }

// Close stops the tier's background goroutines.
func (m *Memory) Close() { m.c.StopAllGoroutines() }
