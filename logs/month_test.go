package logs

import (
	"testing"
	"time"

	"github.com/edgegate/edgegate/edge/accesslog"
	"github.com/edgegate/edgegate/logs/internal/synth"
)

// TestTimelineOverAMonth: a month of logs moves the aggregate's series up
// the ladder (a month fits at one hour) and the summary's timeline to
// 6-hour buckets, and coarsening loses nothing: each bucket holds exactly
// the requests and bytes of its period, counted here from the records.
func TestTimelineOverAMonth(t *testing.T) {
	g := synth.New(synth.Config{Seed: 30, Start: testStart(), Duration: 30 * 24 * time.Hour, URIs: 50, Clients: 50}, 6000)
	var recs []accesslog.Record
	for g.More() {
		recs = append(recs, *g.Next())
	}
	an, s := analyze(t, Options{}, writeWithEdgeWriter(t, recs))
	if an.agg.width != 3600 || len(an.agg.series) > maxBuckets {
		t.Fatalf("aggregate at %ds buckets (%d of them), want a month at one hour, at most %d", an.agg.width, len(an.agg.series), maxBuckets)
	}
	tl := s.Timeline
	if tl.BucketSeconds != 6*3600 || len(tl.Buckets) > maxTimelinePoints {
		t.Fatalf("timeline of %d buckets of %ds, want 6-hour buckets, at most %d", len(tl.Buckets), tl.BucketSeconds, maxTimelinePoints)
	}
	width := time.Duration(tl.BucketSeconds) * time.Second
	type want struct{ requests, bytes int64 }
	per := map[time.Time]want{}
	for _, r := range recs {
		start := r.Time.Truncate(width)
		w := per[start]
		w.requests++
		w.bytes += r.BytesSent
		per[start] = w
	}
	var total int64
	for _, b := range tl.Buckets {
		w := per[b.Start]
		if b.Requests != w.requests || b.Bytes != w.bytes {
			t.Errorf("bucket %v: %d requests, %d bytes; want %d, %d", b.Start, b.Requests, b.Bytes, w.requests, w.bytes)
		}
		total += b.Requests
		delete(per, b.Start)
	}
	if total != int64(len(recs)) || len(per) != 0 {
		t.Errorf("timeline holds %d of %d requests; periods missing: %d", total, len(recs), len(per))
	}
}
