package logs

import (
	"math"
	"math/bits"
	"time"
)

// Latency histograms are log-linear (HDR style) over whole milliseconds,
// the precision of time-taken and time-to-first-byte in the files: values
// below 2·2^subBits ms get a bucket each (exact); above, every power of two
// is split into 2^subBits buckets of equal width. A percentile is reported
// as the middle of its bucket, so its error is at most half a bucket width
// (plus half a millisecond of rounding), 1/2^(subBits+1) of the value. Memory is fixed whatever the number of
// values, and two histograms merge by adding counts, which lets every
// worker keep its own.
const (
	// fineBits gives the summary's percentiles: exact below 128 ms, within
	// ±0.78% (1/128) above.
	fineBits = 6
	// coarseBits gives the per-time-bucket percentiles of the report's
	// latency chart: exact below 16 ms, within ±6.25% above; 8 times smaller.
	coarseBits = 3
	// maxMillis caps recorded values (about 49 days): larger ones, which no
	// real request takes, count in the last bucket and as the max.
	maxMillis = 1<<32 - 1
)

// hist is a log-linear histogram of millisecond values. The zero value
// is not usable; use newHist.
type hist struct {
	sub    uint8    // sub-bucket bits
	counts []uint64 // allocated on the first value, so unused histograms cost little
	n      uint64
	min    uint64 // exact smallest value
	max    uint64 // exact largest value
	sum    uint64 // for the mean
}

func newHist(subBits uint8) hist { return hist{sub: subBits} }

// numBuckets is the bucket count for values up to maxMillis.
func numBuckets(sub uint8) int { return bucketOf(maxMillis, sub) + 1 }

// bucketOf maps a value to its bucket.
func bucketOf(v uint64, sub uint8) int {
	lin := uint64(2) << sub // values below lin are exact
	if v < lin {
		return int(v)
	}
	e := bits.Len64(v) - 1 - int(sub) // shift that leaves sub+1 significant bits
	return int(lin) + (e-1)<<sub + int(v>>uint(e)) - 1<<sub
}

// bucketRange returns the smallest and largest value of bucket i.
func bucketRange(i int, sub uint8) (lo, hi uint64) {
	lin := 2 << sub
	if i < lin {
		return uint64(i), uint64(i)
	}
	k := i - lin
	e := k>>sub + 1
	m := uint64(k&(1<<sub-1)) + 1<<sub
	lo = m << uint(e)
	return lo, lo + 1<<uint(e) - 1
}

// addMillis records one value in milliseconds.
func (h *hist) addMillis(v uint64) {
	if v > maxMillis {
		v = maxMillis
	}
	if h.counts == nil {
		h.counts = make([]uint64, numBuckets(h.sub))
	}
	h.counts[bucketOf(v, h.sub)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	h.n++
	h.sum += v
	if v > h.max {
		h.max = v
	}
}

// add records a duration, rounded to the millisecond.
func (h *hist) add(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.addMillis(uint64((d + time.Millisecond/2) / time.Millisecond))
}

// merge adds o's counts to h; both must have the same sub-bucket bits.
func (h *hist) merge(o *hist) {
	if o.n == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make([]uint64, len(o.counts))
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// quantile returns the value at quantile q (0..1) in milliseconds by the
// nearest-rank rule: the smallest value with at least ceil(q·n) values at
// or below it. It returns the middle of that value's bucket rounded to a
// millisecond, kept within the exact minimum and maximum (which only brings
// it closer to the true value, and makes small sets exact).
func (h *hist) quantile(q float64) float64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	if rank >= h.n {
		return float64(h.max)
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := bucketRange(i, h.sub)
			mid := math.Round(float64(lo) + float64(hi-lo)/2)
			return math.Min(math.Max(mid, float64(h.min)), float64(h.max))
		}
	}
	return float64(h.max)
}

// mean returns the mean in milliseconds.
func (h *hist) mean() float64 {
	if h.n == 0 {
		return 0
	}
	return float64(h.sum) / float64(h.n)
}
