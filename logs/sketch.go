package logs

import (
	"cmp"
	"slices"
)

// topK counts values of one dimension (URIs, clients, ...) in bounded
// memory with the Misra–Gries heavy-hitters summary: it counts exactly
// while there are at most 2k distinct values; beyond that it subtracts the
// (k+1)-th largest count from every counter and forgets those that reach
// zero. Every reported count is then at most dropped below the true one,
// and dropped never exceeds total/(k+1), so any value more frequent than
// that is guaranteed to be kept. Two summaries merge by adding counters and
// pruning again (Agarwal et al., "Mergeable summaries", 2012), which is
// what lets each worker keep its own.
//
// Each counter also keeps the first and last time it was seen (Unix
// seconds); after a prune has forgotten a value, its first time restarts.
type topK struct {
	k       int
	m       map[string]*counter
	dropped int64 // subtracted from every surviving counter: the largest possible undercount
	total   int64
}

// counter is one value's count and the span of time it was seen in.
type counter struct {
	count       int64
	first, last int64 // Unix seconds; 0 when the records had no time
}

func newTopK(k int) *topK {
	return &topK{k: k, m: make(map[string]*counter, min(k, 64))}
}

// add counts one occurrence of key at Unix time t (0 = unknown). The key
// is stored as is: callers pass strings they will not modify.
func (s *topK) add(key string, t int64) {
	s.total++
	if c, ok := s.m[key]; ok {
		c.count++
		c.seen(t)
		return
	}
	s.m[key] = &counter{count: 1, first: t, last: t}
	if len(s.m) > 2*s.k {
		s.prune()
	}
}

// addBytes is add for a key held in a scratch buffer: the lookup does not
// allocate, only a new key is copied.
func (s *topK) addBytes(key []byte, t int64) {
	s.total++
	if c, ok := s.m[string(key)]; ok {
		c.count++
		c.seen(t)
		return
	}
	s.m[string(key)] = &counter{count: 1, first: t, last: t}
	if len(s.m) > 2*s.k {
		s.prune()
	}
}

func (c *counter) seen(t int64) {
	if t == 0 {
		return
	}
	if c.first == 0 || t < c.first {
		c.first = t
	}
	if t > c.last {
		c.last = t
	}
}

// prune keeps at most k counters: it subtracts the (k+1)-th largest count
// from all of them and drops those left at zero.
func (s *topK) prune() {
	if len(s.m) <= s.k {
		return
	}
	counts := make([]int64, 0, len(s.m))
	for _, c := range s.m {
		counts = append(counts, c.count)
	}
	slices.SortFunc(counts, func(a, b int64) int { return cmp.Compare(b, a) })
	cut := counts[s.k]
	for key, c := range s.m {
		c.count -= cut
		if c.count <= 0 {
			delete(s.m, key)
		}
	}
	s.dropped += cut
}

// merge adds o into s; o is left unchanged.
func (s *topK) merge(o *topK) {
	s.total += o.total
	s.dropped += o.dropped
	for key, oc := range o.m {
		c, ok := s.m[key]
		if !ok {
			cp := *oc // a copy: o's counters may be merged elsewhere too
			s.m[key] = &cp
			continue
		}
		c.count += oc.count
		if oc.first != 0 {
			c.seen(oc.first)
			c.seen(oc.last)
		}
	}
	s.prune()
}

// exact reports whether every count is exact (nothing was ever pruned).
func (s *topK) exact() bool { return s.dropped == 0 }

// entry is a value with its counter, for sorted output.
type entry struct {
	key string
	counter
}

// top returns the n largest counters, largest first, ties by key so that
// output is stable; n <= 0 returns all.
func (s *topK) top(n int) []entry {
	out := make([]entry, 0, len(s.m))
	for k, c := range s.m {
		out = append(out, entry{k, *c})
	}
	slices.SortFunc(out, func(a, b entry) int {
		if c := cmp.Compare(b.count, a.count); c != 0 {
			return c
		}
		return cmp.Compare(a.key, b.key)
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}
