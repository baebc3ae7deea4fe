package cache

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by Store.Get on a miss.
var ErrNotFound = errors.New("cache: not found")

// ErrTooLarge is returned by Store.Set for an entry above the store's
// per-object limit; the entry is simply not stored there.
var ErrTooLarge = errors.New("cache: entry too large for this store")

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
