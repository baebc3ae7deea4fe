package logs

import (
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/edgegate/edgegate/edge/accesslog"
	"github.com/edgegate/edgegate/logs/internal/synth"
)

// edgeRecords returns n synthetic requests and those of the incidents, plus some
// awkward ones: values that need escaping, a status 000, a huge response.
func edgeRecords(n int64) []accesslog.Record {
	g := synth.New(synth.Config{Seed: 11, Start: testStart(), Duration: 3 * time.Hour, URIs: 300, Clients: 200,
		Incidents: true}, n)
	var out []accesslog.Record
	for g.More() {
		out = append(out, *g.Next())
	}
	odd := out[len(out)-1]
	odd.UserAgent = "Mozilla/5.0 \"quoted\" <tag> 100% done\ttab\nnewline é"
	odd.URIStem = "/a b/%41/ü"
	odd.Referer = "-"
	odd.Time = odd.Time.Add(time.Second)
	out = append(out, odd)
	hung := odd
	hung.Status, hung.ResultType, hung.DetailedResultType, hung.BytesSent = 0, accesslog.ResultError, accesslog.ResultClientHungUpRequest, 0
	hung.Time = hung.Time.Add(time.Second)
	out = append(out, hung)
	big := odd
	big.BytesSent, big.TimeTaken = 1<<40, 3*time.Hour+time.Millisecond
	big.Time = big.Time.Add(2 * time.Second)
	return append(out, big)
}

// writeWithEdgeWriter writes records through the edge's rotating, gzipping
// Writer, with its clock following the records, and returns the directory.
func writeWithEdgeWriter(t *testing.T, recs []accesslog.Record) string {
	t.Helper()
	dir := t.TempDir()
	var mu sync.Mutex
	now := testStart()
	w, err := accesslog.NewWriter(accesslog.WriterConfig{Dir: dir, Prefix: "E2EXAMPLE", Rotate: time.Hour, Gzip: true,
		FlushInterval: -1, Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		mu.Lock()
		now = recs[i].Time
		mu.Unlock()
		if err := w.Write(&recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestRoundTripWithEdgeWriter writes requests with the edge's Writer and
// checks that the summary of the files holds the same values as the
// requests themselves, counted here directly.
func TestRoundTripWithEdgeWriter(t *testing.T) {
	recs := edgeRecords(4000)
	dir := writeWithEdgeWriter(t, recs)
	files, _ := filepath.Glob(filepath.Join(dir, "*.gz"))
	if len(files) < 3 {
		t.Fatalf("%d gzipped files; the Writer should have rotated hourly", len(files))
	}
	an, s := analyze(t, Options{BlockSize: 8192}, dir)

	var bytesSent, bytesRecv int64
	status := map[string]int64{}
	results := map[string]int64{}
	detailed := map[string]int64{}
	uris := map[string]int64{}
	var hits, misses int64
	var maxTaken time.Duration
	first, last := recs[0].Time, recs[0].Time
	errFirst := map[string]time.Time{}
	for _, r := range recs {
		bytesSent += r.BytesSent
		bytesRecv += r.BytesReceived
		code := strconv.Itoa(r.Status)
		if r.Status == 0 {
			code = "000"
		}
		status[code]++
		results[string(r.ResultType)]++
		detailed[string(r.DetailedResultType)]++
		uris[r.URIStem]++
		if r.Method == "GET" {
			switch r.ResponseResultType {
			case accesslog.ResultHit, accesslog.ResultRefreshHit:
				hits++
			case accesslog.ResultMiss:
				misses++
			}
		}
		maxTaken = max(maxTaken, r.TimeTaken)
		if r.Time.Before(first) {
			first = r.Time
		}
		if r.Time.After(last) {
			last = r.Time
		}
		if r.ResultType == accesslog.ResultError {
			if t0, ok := errFirst[string(r.DetailedResultType)]; !ok || r.Time.Before(t0) {
				errFirst[string(r.DetailedResultType)] = r.Time
			}
		}
	}
	if s.Requests != int64(len(recs)) || s.Input.Malformed != 0 || s.BytesSent != bytesSent || s.BytesReceived != bytesRecv {
		t.Errorf("requests %d, malformed %d, bytes %d/%d; want %d, 0, %d/%d", s.Requests, s.Input.Malformed,
			s.BytesSent, s.BytesReceived, len(recs), bytesSent, bytesRecv)
	}
	if !s.TimeRange.First.Equal(first) || !s.TimeRange.Last.Equal(last) {
		t.Errorf("time range %v to %v, want %v to %v", s.TimeRange.First, s.TimeRange.Last, first, last)
	}
	check := func(name string, got []Count, want map[string]int64) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%s: %d values, want %d", name, len(got), len(want))
		}
		for _, c := range got {
			if want[c.Key] != c.Count {
				t.Errorf("%s %q: %d, want %d", name, c.Key, c.Count, want[c.Key])
			}
		}
	}
	check("status", s.StatusCodes, status)
	check("result type", s.ResultTypes, results)
	check("detailed result type", s.DetailedResultTypes, detailed)
	if !s.Top.URIs.Exact {
		t.Fatal("300 URIs must be counted exactly")
	}
	for _, c := range s.Top.URIs.Items {
		if uris[c.Key] != c.Count {
			t.Errorf("URI %q: %d, want %d", c.Key, c.Count, uris[c.Key])
		}
	}
	if _, ok := uris["/a b/%41/ü"]; !ok {
		t.Error("test setup: the odd URI is missing")
	}
	if s.HitRatio.Hits != hits || s.HitRatio.Misses != misses {
		t.Errorf("hits %d, misses %d; want %d, %d", s.HitRatio.Hits, s.HitRatio.Misses, hits, misses)
	}
	if s.Latency.Overall.TimeTaken.Max != maxTaken.Seconds() {
		t.Errorf("max time taken %v, want %v", s.Latency.Overall.TimeTaken.Max, maxTaken.Seconds())
	}
	// Every error type the records hold is reported, first seen when it
	// was (a loop over an empty report would check nothing).
	if len(errFirst) == 0 {
		t.Fatal("test setup: the records hold no errors")
	}
	reported := map[string]bool{}
	for _, e := range s.Errors {
		reported[e.Type] = true
		if want, ok := errFirst[e.Type]; ok && !e.First.Equal(want) {
			t.Errorf("%s first at %v, want %v", e.Type, e.First, want)
		}
	}
	for typ := range errFirst {
		if !reported[typ] {
			t.Errorf("error type %s in the records but not in the report", typ)
		}
	}
	var agentFound bool
	for _, c := range Summarize(an, 1000).Top.UserAgents.Items {
		agentFound = agentFound || c.Key == recs[len(recs)-1].UserAgent
	}
	if !agentFound {
		t.Error("the user agent with a tab, a newline and quotes did not survive the round trip")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
}
