package cache

import (
	"crypto/sha256"
	"encoding/json"
	"slices"
	"sort"
	"strings"
)

// invIndex answers "is there an invalidation newer than t covering this
// path" in time that depends on the path's length, not on the number of
// invalidations: a radix tree over the patterns, each node keeping the
// newest time of the prefix ("/images/*") and of the exact path ending
// there, which is all the question needs. The tree lives in slices of
// plain values (labels as offsets into one byte slice, children as
// indexes), with no pointers for the garbage collector to trace: a tree of
// pointers and strings made every request ~10% slower at 10,000
// invalidations through GC work alone.
type invIndex struct {
	nodes  []radixNode // nodes[0] is the root, with an empty label
	labels []byte
	newest int64 // newest time of any record: entries fetched after it skip the walk
}

type radixNode struct {
	off, n      int32 // label: labels[off : off+n]
	prefix      int64 // newest invalidation of the prefix ending here; 0 none
	exact       int64 // newest invalidation of exactly the path ending here
	first, next int32 // first child, next sibling; -1 none
}

func newInvIndex() *invIndex {
	return &invIndex{nodes: []radixNode{{first: -1, next: -1}}}
}

// add records a pattern (decoded) invalidated at t (Unix nanoseconds). A
// pattern ending in '*' is a prefix; a '*' elsewhere (only in records made
// before the rule was enforced) makes a prefix of what comes before it,
// which invalidates more, never less.
func (x *invIndex) add(pattern string, t int64) {
	x.newest = max(x.newest, t)
	isPrefix := false
	if i := strings.IndexByte(pattern, '*'); i >= 0 {
		pattern, isPrefix = pattern[:i], true
	}
	n := x.insert(pattern)
	if isPrefix {
		x.nodes[n].prefix = max(x.nodes[n].prefix, t)
	} else {
		x.nodes[n].exact = max(x.nodes[n].exact, t)
	}
}

// insert returns the node where key ends, creating and splitting nodes.
func (x *invIndex) insert(key string) int32 {
	n := int32(0)
	for key != "" {
		c := x.nodes[n].first
		for c >= 0 && x.labels[x.nodes[c].off] != key[0] {
			c = x.nodes[c].next
		}
		if c < 0 {
			off := int32(len(x.labels))
			x.labels = append(x.labels, key...)
			x.nodes = append(x.nodes, radixNode{off: off, n: int32(len(key)), first: -1, next: x.nodes[n].first})
			x.nodes[n].first = int32(len(x.nodes) - 1)
			return x.nodes[n].first
		}
		cn := x.nodes[c]
		label := x.labels[cn.off : cn.off+cn.n]
		common := 0
		for common < len(label) && common < len(key) && label[common] == key[common] {
			common++
		}
		if common < len(label) { // split c: its tail becomes its only child
			x.nodes = append(x.nodes, radixNode{off: cn.off + int32(common), n: cn.n - int32(common),
				prefix: cn.prefix, exact: cn.exact, first: cn.first, next: -1})
			x.nodes[c] = radixNode{off: cn.off, n: int32(common), first: int32(len(x.nodes) - 1), next: cn.next}
		}
		n, key = c, key[common:]
	}
	return n
}

// covered reports whether an invalidation newer than after covers path.
func (x *invIndex) covered(path string, after int64) bool {
	if x.newest <= after {
		return false
	}
	n := int32(0)
	for {
		nd := &x.nodes[n]
		if nd.prefix > after {
			return true
		}
		if path == "" {
			return nd.exact > after
		}
		c := nd.first
		for c >= 0 && x.labels[x.nodes[c].off] != path[0] {
			c = x.nodes[c].next
		}
		if c < 0 {
			return false
		}
		cn := &x.nodes[c]
		if int(cn.n) > len(path) || path[:cn.n] != string(x.labels[cn.off:cn.off+cn.n]) {
			return false
		}
		n, path = c, path[cn.n:]
	}
}

// invRecords holds the invalidation records themselves (for Status,
// journal compaction and putting back what Redis lost) without pointers
// for the garbage collector to trace: their JSON back to back in one byte
// slice, references sorted by time, and an index by a hash of the ID.
type invRecords struct {
	arena []byte
	refs  []invRef // sorted by at
	byID  map[invID]invRef
}

type invID [16]byte

type invRef struct {
	at     int64 // CreateTime, Unix ns
	off, n int
	id     invID
}

func newInvRecords() invRecords { return invRecords{byID: map[invID]invRef{}} }

// idOf is a 128-bit hash of an ID (IDs from Redis are not trusted to be
// well-formed).
func idOf(id string) invID {
	sum := sha256.Sum256([]byte(id))
	return invID(sum[:16])
}

func (r *invRecords) has(id string) bool {
	_, ok := r.byID[idOf(id)]
	return ok
}

func (r *invRecords) add(inv Invalidation) {
	data, _ := json.Marshal(Invalidation{ID: inv.ID, Paths: inv.Paths, CreateTime: inv.CreateTime})
	ref := invRef{at: inv.CreateTime.UnixNano(), off: len(r.arena), n: len(data), id: idOf(inv.ID)}
	r.arena = append(r.arena, data...)
	i := sort.Search(len(r.refs), func(i int) bool { return r.refs[i].at > ref.at })
	r.refs = slices.Insert(r.refs, i, ref)
	r.byID[ref.id] = ref
}

func (r *invRecords) decode(ref invRef) Invalidation {
	var inv Invalidation
	_ = json.Unmarshal(r.arena[ref.off:ref.off+ref.n], &inv)
	return inv
}

func (r *invRecords) get(id string) (Invalidation, bool) {
	ref, ok := r.byID[idOf(id)]
	if !ok {
		return Invalidation{}, false
	}
	return r.decode(ref), true
}
