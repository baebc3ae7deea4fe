package cache

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is returned by Store.Get on a miss.
var ErrNotFound = errors.New("cache: not found")

// ErrTooLarge is returned by Store.Set for an entry above the store's
// per-object limit; the entry is simply not stored there.
var ErrTooLarge = errors.New("cache: entry too large for this store")

// ErrNotAdmitted is returned by a store that keeps an object out by its
// admission policy (a full disk tier admits an object on its second
// request, so one-hit wonders do not evict the working set).
var ErrNotAdmitted = errors.New("cache: entry not admitted (first request while the tier is full)")

// Store is one storage tier. Keys are the strings from Key and VaryKey.
// Entries returned by Get are shared and must not be modified.
type Store interface {
	// Get returns the entry at key, or an error wrapping ErrNotFound.
	Get(ctx context.Context, key string) (*Entry, error)
	// Set stores e at key for ttl; the stored copy's Expires is now+ttl.
	// A ttl <= 0 stores nothing.
	Set(ctx context.Context, key string, e *Entry, ttl time.Duration) error
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// The optional capabilities below are found by type assertion, as
// certmagic does for its Storage: a store implements what it can, and
// callers fall back gracefully when it does not.

// Purger is a store that can drop every entry a predicate selects, used
// to free space early after an invalidation (lookups refuse invalidated
// entries anyway, so a store without it is still correct).
type Purger interface {
	// DeleteFunc removes every entry for which match is true and reports
	// how many it removed. It may walk the whole store: call it off the
	// request path.
	DeleteFunc(match func(key string, e *Entry) bool) int
}

// Sizer is a store that reports what it holds.
type Sizer interface {
	// Usage is the bytes the store accounts for and its number of entries.
	Usage() (bytes int64, entries int)
}

// ObjectLimiter is a store with a largest entry it accepts from Set (an
// entry with an in-memory Body). Stores without it take any size.
type ObjectLimiter interface {
	// MaxObjectSize is the largest body Set keeps; larger is ErrTooLarge.
	MaxObjectSize() int64
}

// StreamStore is a store that takes a body as it arrives, so that an
// object larger than memory can be cached and served while it fills, and
// that hands back large bodies as Content instead of a Body in memory.
type StreamStore interface {
	Store
	// Create starts writing the entry e (whose Body is ignored) at key for
	// ttl. The body written to the returned writer becomes visible to Get
	// only after Commit succeeds.
	Create(ctx context.Context, key string, e *Entry, ttl time.Duration) (BodyWriter, error)
}

// BodyWriter receives a streamed body. What was written can be read back
// with ReadAt while writing (readers follow a fill). Exactly one of Commit
// or Abort ends the write; Close then releases the writer's resources and
// must be called after every reader of ReadAt is done.
type BodyWriter interface {
	io.Writer
	io.ReaderAt
	// Commit makes the whole entry visible, atomically and durably.
	Commit(ctx context.Context) error
	// Abort discards what was written; nothing becomes visible.
	Abort()
	io.Closer
}

// Content is a body held outside memory by a StreamStore (a file of the
// disk tier), read on demand. It may be shared by several viewers: each
// opens its own reader.
type Content interface {
	// Size is the body's length in bytes, -1 while unknown (a fill of a
	// body without Content-Length).
	Size() int64
	// Open returns a reader of the body from byte off on. Its Read returns
	// an error wrapping ErrCorrupt rather than bytes that fail their
	// checksum, so damaged bytes are never served.
	Open(off int64) (io.ReadCloser, error)
}
