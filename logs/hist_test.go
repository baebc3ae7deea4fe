package logs

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestBucketLayout checks that the buckets tile the value range without
// gaps or overlaps and that bucketOf and bucketRange agree.
func TestBucketLayout(t *testing.T) {
	for _, sub := range []uint8{coarseBits, fineBits} {
		next := uint64(0)
		for i := range numBuckets(sub) {
			lo, hi := bucketRange(i, sub)
			if lo != next || hi < lo {
				t.Fatalf("sub %d bucket %d: [%d, %d], want it to start at %d", sub, i, lo, hi, next)
			}
			for _, v := range []uint64{lo, hi, lo + (hi-lo)/2} {
				if got := bucketOf(v, sub); got != i {
					t.Fatalf("sub %d: bucketOf(%d) = %d, want %d", sub, v, got, i)
				}
			}
			// Relative width bounds the error: half a bucket over its
			// lower end is at most 1/2^(sub+1).
			if lo >= 2<<sub && float64(hi-lo+1)/2/float64(lo) > 1/math.Pow(2, float64(sub+1)) {
				t.Fatalf("sub %d bucket %d [%d, %d] is too wide", sub, i, lo, hi)
			}
			next = hi + 1
		}
		if next != maxMillis+1 {
			t.Fatalf("sub %d: buckets end at %d, want %d", sub, next, uint64(maxMillis)+1)
		}
	}
}

// TestQuantileErrorBound compares percentiles with exact ones on several
// distributions; the documented bound is 1/128 of the value (fine) or 1/16
// (coarse), plus half a millisecond of rounding.
func TestQuantileErrorBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dists := []struct {
		name string
		gen  func() uint64
	}{
		{"uniform small", func() uint64 { return rng.Uint64N(100) }},
		{"uniform wide", func() uint64 { return rng.Uint64N(60_000) }},
		{"lognormal", func() uint64 { return uint64(math.Exp(rng.NormFloat64()*1.5 + 4)) }},
		{"bimodal", func() uint64 {
			if rng.IntN(10) == 0 {
				return 2000 + rng.Uint64N(5000)
			}
			return 1 + rng.Uint64N(5)
		}},
		{"constant", func() uint64 { return 940 }},
		{"huge", func() uint64 { return 1<<31 + rng.Uint64N(1<<30) }},
	}
	for _, d := range dists {
		for _, sub := range []uint8{fineBits, coarseBits} {
			h := newHist(sub)
			vals := make([]uint64, 5000)
			for i := range vals {
				vals[i] = d.gen()
				h.addMillis(vals[i])
			}
			slices.Sort(vals)
			bound := 1 / math.Pow(2, float64(sub+1))
			for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 1} {
				rank := int(math.Ceil(q * float64(len(vals))))
				exact := float64(vals[rank-1])
				got := h.quantile(q)
				if math.Abs(got-exact) > exact*bound+0.5 {
					t.Errorf("%s sub %d q%.2f: got %v, exact %v (bound %.2f%%)", d.name, sub, q, got, exact, bound*100)
				}
			}
			if h.quantile(1) != float64(vals[len(vals)-1]) || h.max != vals[len(vals)-1] {
				t.Errorf("%s: max %v, want exact %d", d.name, h.quantile(1), vals[len(vals)-1])
			}
		}
	}
}

func TestHistMergeAndRounding(t *testing.T) {
	a, b, all := newHist(fineBits), newHist(fineBits), newHist(fineBits)
	for i := range 1000 {
		d := time.Duration(i)*time.Millisecond + 400*time.Microsecond // rounds down
		if i%2 == 0 {
			a.add(d)
		} else {
			b.add(d)
		}
		all.add(d)
	}
	a.merge(&b)
	empty := newHist(fineBits)
	a.merge(&empty)
	for _, q := range []float64{0.1, 0.5, 0.99} {
		if a.quantile(q) != all.quantile(q) {
			t.Errorf("q%v: merged %v, direct %v", q, a.quantile(q), all.quantile(q))
		}
	}
	if a.n != 1000 || a.max != 999 || a.min != 0 || a.mean() != all.mean() {
		t.Errorf("merged n=%d max=%d min=%d mean=%v", a.n, a.max, a.min, a.mean())
	}
	var neg hist = newHist(fineBits)
	neg.add(-time.Second)
	neg.add(1500 * time.Microsecond) // 1.5 ms rounds to 2
	if neg.min != 0 || neg.max != 2 {
		t.Errorf("negative and rounding: min %d max %d", neg.min, neg.max)
	}
	if e := newHist(fineBits); e.quantile(0.5) != 0 || e.mean() != 0 {
		t.Error("empty histogram must report 0")
	}
}
