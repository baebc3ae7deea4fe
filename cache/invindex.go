package cache

import (
	"strings"
)

// invIndex answers "is there an invalidation newer than t covering this
// path" in time that depends on the path's length, not on the number of
// invalidations: exact paths in a map, prefixes ("/images/*") in a radix
// tree; each remembers only its newest invalidation's time, which is all
// the question needs.
type invIndex struct {
	exact  map[string]int64
	prefix radixNode
	newest int64 // newest time of any record: entries fetched after it skip the lookup
}

func newInvIndex() *invIndex { return &invIndex{exact: map[string]int64{}} }

// add records a pattern (decoded) invalidated at t (Unix nanoseconds). A
// pattern ending in '*' is a prefix; a '*' elsewhere (only in records made
// before the rule was enforced) makes a prefix of what comes before it,
// which invalidates more, never less.
func (x *invIndex) add(pattern string, t int64) {
	x.newest = max(x.newest, t)
	if i := strings.IndexByte(pattern, '*'); i >= 0 {
		x.prefix.insert(pattern[:i], t)
		return
	}
	if t > x.exact[pattern] {
		x.exact[pattern] = t
	}
}

// covered reports whether an invalidation newer than after covers path.
func (x *invIndex) covered(path string, after int64) bool {
	if x.newest <= after {
		return false
	}
	if x.exact[path] > after {
		return true
	}
	return x.prefix.anyPrefixAfter(path, after)
}

// radixNode is a node of a compressed prefix tree over bytes.
type radixNode struct {
	label    string
	t        int64 // newest invalidation of the prefix ending here; 0 none
	children []*radixNode
}

func (n *radixNode) insert(key string, t int64) {
	for {
		if key == "" {
			n.t = max(n.t, t)
			return
		}
		var child *radixNode
		for _, c := range n.children {
			if c.label[0] == key[0] {
				child = c
				break
			}
		}
		if child == nil {
			n.children = append(n.children, &radixNode{label: key, t: t})
			return
		}
		common := commonPrefix(child.label, key)
		if common < len(child.label) {
			// Split child at common.
			tail := &radixNode{label: child.label[common:], t: child.t, children: child.children}
			child.label, child.t, child.children = child.label[:common], 0, []*radixNode{tail}
		}
		n, key = child, key[common:]
	}
}

// anyPrefixAfter reports whether some prefix of path was invalidated after
// after.
func (n *radixNode) anyPrefixAfter(path string, after int64) bool {
	for {
		if n.t > after {
			return true
		}
		if path == "" {
			return false
		}
		var next *radixNode
		for _, c := range n.children {
			if c.label[0] == path[0] {
				next = c
				break
			}
		}
		if next == nil || !strings.HasPrefix(path, next.label) {
			return false
		}
		n, path = next, path[len(next.label):]
	}
}

func commonPrefix(a, b string) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}
