package logs

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestTopKExactWhenSmall: up to 2k distinct values every count is exact.
func TestTopKExactWhenSmall(t *testing.T) {
	s := newTopK(4)
	want := map[string]int64{}
	for i := range 100 {
		key := fmt.Sprint("k", i%8)
		s.add(key, int64(1000+i))
		want[key]++
	}
	if !s.exact() {
		t.Fatal("8 distinct values with k=4 must stay exact")
	}
	top := s.top(0)
	if len(top) != 8 {
		t.Fatalf("%d entries, want 8", len(top))
	}
	for _, e := range top {
		if e.count != want[e.key] {
			t.Errorf("%s: %d, want %d", e.key, e.count, want[e.key])
		}
	}
	if top[0].key != "k0" || top[0].first != 1000 || top[0].last != 1096 {
		t.Errorf("first entry %+v, want k0 seen from 1000 to 1096", top[0])
	}
	if got := s.top(3); len(got) != 3 || got[0].count < got[1].count {
		t.Errorf("top(3) = %+v", got)
	}
}

// TestTopKBounds checks the Misra–Gries guarantees on a skewed stream, for
// one summary and for several merged: every kept count is at most dropped
// below the truth and never above it, dropped <= total/(k+1), and every
// value more frequent than total/(k+1) is kept.
func TestTopKBounds(t *testing.T) {
	const k, n = 64, 200_000
	rng := rand.New(rand.NewPCG(3, 4))
	zipf := rand.NewZipf(rng, 1.2, 2, 50_000)
	truth := map[string]int64{}
	parts := []*topK{newTopK(k), newTopK(k), newTopK(k)}
	single := newTopK(k)
	for i := range n {
		key := fmt.Sprint(zipf.Uint64())
		truth[key]++
		single.add(key, 0)
		parts[i%3].add(key, 0)
	}
	merged := newTopK(k)
	for _, p := range parts {
		merged.merge(p)
	}
	for name, s := range map[string]*topK{"single": single, "merged": merged} {
		if s.exact() {
			t.Fatalf("%s: 50,000 values with k=64 cannot be exact", name)
		}
		if s.total != n {
			t.Errorf("%s: total %d, want %d", name, s.total, n)
		}
		if s.dropped > n/(k+1) {
			t.Errorf("%s: dropped %d > n/(k+1) = %d", name, s.dropped, n/(k+1))
		}
		if len(s.m) > 2*k {
			t.Errorf("%s: %d counters, want <= 2k = %d", name, len(s.m), 2*k)
		}
		for key, c := range s.m {
			if c.count > truth[key] || truth[key]-c.count > s.dropped {
				t.Errorf("%s: %s counted %d, true %d, dropped %d", name, key, c.count, truth[key], s.dropped)
			}
		}
		for key, c := range truth {
			if c > n/(k+1) && s.m[key] == nil {
				t.Errorf("%s: %s (%d times) is frequent but was dropped", name, key, c)
			}
		}
		if top := s.top(1); top[0].key != "0" {
			t.Errorf("%s: most frequent %q, want \"0\"", name, top[0].key)
		}
	}
}

func TestTopKMergeKeepsSources(t *testing.T) {
	a, b := newTopK(8), newTopK(8)
	a.add("x", 10)
	b.add("x", 5)
	b.add("x", 20)
	b.addBytes([]byte("y"), 0)
	a.merge(b)
	a.merge(b) // b is unchanged by a merge, so merging twice counts twice
	if c := a.m["x"]; c.count != 5 || c.first != 5 || c.last != 20 {
		t.Errorf("x = %+v, want 5 from 5 to 20", *c)
	}
	if b.m["x"].count != 2 || a.m["y"].count != 2 || a.m["y"].first != 0 {
		t.Errorf("b.x = %d, a.y = %+v", b.m["x"].count, *a.m["y"])
	}
}
