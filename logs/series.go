package logs

// Time series are kept per bucket of a fixed width, starting at one minute.
// When a series would hold more than maxBuckets buckets, every series of
// the aggregate moves to the next, coarser width of the ladder (each width
// divides the next, so buckets merge exactly), which bounds memory however
// long the logs run: a day fits at one minute, a month at one hour.
const maxBuckets = 1440

// widthAt returns the bucket width in seconds of ladder step i, or 0 past
// the end of the ladder.
func widthAt(i int) int64 {
	switch i {
	case 0:
		return 60
	case 1:
		return 5 * 60
	case 2:
		return 15 * 60
	case 3:
		return 3600
	case 4:
		return 6 * 3600
	case 5:
		return 86400
	case 6:
		return 7 * 86400
	case 7:
		return 28 * 86400
	}
	return 0
}

// floorDiv divides rounding toward minus infinity, so that times before
// 1970 land in the right bucket too.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// bucket is what the timeline keeps per time bucket.
type bucket struct {
	requests  int64
	bytes     int64
	hits      int64 // cache outcome Hit or RefreshHit
	misses    int64 // cache outcome Miss
	hitBytes  int64
	missBytes int64
	errors    int64 // requests counted in an error group
	s4xx      int64
	s5xx      int64
	byResult  [numPrimary]int64 // by x-edge-result-type
	latency   hist              // time-taken, coarse
}

// Primary result types drawn as the report's stacked areas; everything else
// is "other".
const (
	pHit = iota
	pRefreshHit
	pMiss
	pError
	pRedirect
	pOther
	numPrimary
)

// primaryName returns the label of a primary result type index.
func primaryName(i int) string {
	switch i {
	case pHit:
		return "Hit"
	case pRefreshHit:
		return "RefreshHit"
	case pMiss:
		return "Miss"
	case pError:
		return "Error"
	case pRedirect:
		return "Redirect"
	}
	return "Other"
}

// merge adds o to b.
func (b *bucket) merge(o *bucket) {
	b.requests += o.requests
	b.bytes += o.bytes
	b.hits += o.hits
	b.misses += o.misses
	b.hitBytes += o.hitBytes
	b.missBytes += o.missBytes
	b.errors += o.errors
	b.s4xx += o.s4xx
	b.s5xx += o.s5xx
	for i := range b.byResult {
		b.byResult[i] += o.byResult[i]
	}
	b.latency.merge(&o.latency)
}

// hostBucket is what a host's series keeps per time bucket, for findings
// about one host (a falling hit ratio, the origin latency before errors).
type hostBucket struct {
	requests    int64
	hits        int64
	misses      int64
	fetches     int64 // requests answered by the origin (Miss, RefreshHit), whose first byte measures it
	fetchMillis int64 // sum of their time-to-first-byte
	s4xx        int64
	s5xx        int64
}

func (b *hostBucket) merge(o *hostBucket) {
	b.requests += o.requests
	b.hits += o.hits
	b.misses += o.misses
	b.fetches += o.fetches
	b.fetchMillis += o.fetchMillis
	b.s4xx += o.s4xx
	b.s5xx += o.s5xx
}

// rekey moves the buckets of m (keyed by index at width from) to width to,
// merging those that fall together.
func rekey[V any](m map[int64]V, from, to int64, merge func(dst, src V) V) map[int64]V {
	out := make(map[int64]V, len(m)*int(from)/int(to)+1)
	for idx, v := range m {
		n := floorDiv(idx*from, to)
		if cur, ok := out[n]; ok {
			out[n] = merge(cur, v)
		} else {
			out[n] = v
		}
	}
	return out
}
