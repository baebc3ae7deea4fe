package cache

import (
	"hash/maphash"
	"sync"
	"time"
)

// passMarks remembers the store keys whose last fetch gave a response that
// could not be stored (no-store, private, Set-Cookie, too large, an
// uncacheable status), as Varnish's hit-for-miss objects do. Collapsing
// the fetches of such a key buys nothing: only one waiter may stream the
// shared response, so every other one fetches its own after waiting for
// the first, at twice the latency, and the origin sees one request per
// viewer anyway. A marked key is fetched without collapsing; its response
// is still judged, so one that became storable is stored (and unmarks the
// key) as usual.
//
// Keys are kept as hashes in a bounded map: a collision or an eviction
// only costs a key its collapsing for a while, never a wrong answer.
type passMarks struct {
	seed maphash.Seed
	mu   sync.Mutex
	m    map[uint64]time.Time // key hash -> mark expiry
}

const (
	// passMarkTTL is how long a mark lasts without being renewed by
	// another unstorable response.
	passMarkTTL = 30 * time.Second
	// maxPassMarks bounds the marks kept (16 bytes plus map overhead
	// each); beyond it the oldest half of the map is not worth tracking,
	// so the map is simply cleared.
	maxPassMarks = 16384
)

func newPassMarks() *passMarks {
	return &passMarks{seed: maphash.MakeSeed(), m: map[uint64]time.Time{}}
}

// marked reports whether key's last fetch, less than passMarkTTL ago, was
// unstorable.
func (pm *passMarks) marked(key string, now time.Time) bool {
	h := maphash.String(pm.seed, key)
	pm.mu.Lock()
	exp, ok := pm.m[h]
	if ok && !now.Before(exp) {
		delete(pm.m, h)
		ok = false
	}
	pm.mu.Unlock()
	return ok
}

// mark notes that key's fetch gave an unstorable response.
func (pm *passMarks) mark(key string, now time.Time) {
	h := maphash.String(pm.seed, key)
	pm.mu.Lock()
	if _, ok := pm.m[h]; !ok && len(pm.m) >= maxPassMarks {
		clear(pm.m)
	}
	pm.m[h] = now.Add(passMarkTTL)
	pm.mu.Unlock()
}

// unmark forgets key's mark: its response was stored.
func (pm *passMarks) unmark(key string) {
	h := maphash.String(pm.seed, key)
	pm.mu.Lock()
	delete(pm.m, h)
	pm.mu.Unlock()
}
