package main

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// Real wrk 4.1.0 output, with the error lines wrk adds when there are errors.
const wrkOut = `Running 10s test @ https://localhost:8443/static/1k.bin
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.61ms  601.94us   7.44ms   74.17%
    Req/Sec     1.20k   105.98     1.40k    72.73%
  Latency Distribution
     50%  812.00us
     75%    1.91ms
     90%    2.26ms
     99%    3.30ms
  466012 requests in 10.10s, 4.01MB read
  Socket errors: connect 0, read 12, write 1, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:  46139.80
Transfer/sec:      3.65MB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkOut)
	if err != nil {
		t.Fatal(err)
	}
	want := loadResult{Requests: 466012, Duration: 10100 * time.Millisecond, ReqPerSec: 46139.80,
		P50: 812 * time.Microsecond, P99: 3300 * time.Microsecond, Errors: 12 + 1 + 3 + 7}
	if r != want {
		t.Errorf("got %+v\nwant %+v", r, want)
	}
}

func TestParseWrkRejectsIncompleteOutput(t *testing.T) {
	// Without --latency there are no percentiles: a table with zeros would lie.
	noLatency := strings.Replace(wrkOut, "     50%  812.00us\n", "", 1)
	for name, out := range map[string]string{"no p50": noLatency, "empty": "", "error": "unable to connect to localhost:8443 Connection refused\n"} {
		if _, err := parseWrk(out); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestParseWrkDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"812.00us": 812 * time.Microsecond, "1.07ms": 1070 * time.Microsecond, "2.00s": 2 * time.Second,
		"1.50m": 90 * time.Second, "26.73ms": 26730 * time.Microsecond,
	} {
		got, err := parseWrkDuration(in)
		if err != nil || got != want {
			t.Errorf("%q: got %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "12", "xms", "-1ms", "3 days"} {
		if _, err := parseWrkDuration(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// Real h2load 1.52 output (progress lines trimmed), with some failures.
const h2loadOut = `starting benchmark...
spawning thread #0: 50 total client(s). Timing-based test with 0s of warm-up time and 10s of main duration for measurements.
Application protocol: h2

finished in 10.00s, 69800.00 req/s, 75.23MB/s
requests: 698010 total, 698010 started, 698000 done, 697990 succeeded, 10 failed, 10 errored, 0 timeout
status codes: 697990 2xx, 0 3xx, 4 4xx, 6 5xx
traffic: 752.30MB (788841000) total, 20.00MB (20971520) headers (space savings 90.00%), 681.64MB (714752000) data
                     min         max         mean         sd        +/- sd
time for request:      555us      6.12ms      2.47ms      1.73ms    75.00%
`

func TestParseH2load(t *testing.T) {
	r, err := parseH2load(h2loadOut)
	if err != nil {
		t.Fatal(err)
	}
	// 10 failed plus 10 with a 4xx/5xx status: failed ones got no status,
	// so both count.
	want := loadResult{Requests: 698000, Duration: 10 * time.Second, ReqPerSec: 69800, Errors: 20}
	if r != want {
		t.Errorf("got %+v\nwant %+v", r, want)
	}
	if _, err := parseH2load("starting benchmark...\nNo protocol negotiated. Aborted.\n"); err == nil {
		t.Error("an aborted run parsed without error")
	}
}

func TestParseH2loadLog(t *testing.T) {
	var b strings.Builder
	// 100 requests taking 1..100 µs, in shuffled order.
	for i := range 100 {
		d := (i*37)%100 + 1
		b.WriteString("1764000000000000\t200\t" + strconv.Itoa(d) + "\n")
	}
	p50, p99, err := parseH2loadLog(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if p50 != 50*time.Microsecond || p99 != 99*time.Microsecond {
		t.Errorf("p50 %v, p99 %v; want 50µs, 99µs", p50, p99)
	}
	for name, in := range map[string]string{"empty": "", "two fields": "1\t200\n", "not a number": "1\t200\tfast\n"} {
		if _, _, err := parseH2loadLog(strings.NewReader(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestParseStubStatus(t *testing.T) {
	a, r, err := parseStubStatus("Active connections: 3 \nserver accepts handled requests\n 117 117 52003 \nReading: 0 Writing: 1 Waiting: 2 \n")
	if err != nil || a != 117 || r != 52003 {
		t.Errorf("got %d, %d, %v; want 117, 52003", a, r, err)
	}
	if _, _, err := parseStubStatus("<html>404 Not Found</html>"); err == nil {
		t.Error("a 404 page parsed as status")
	}
}

func TestParseStat(t *testing.T) {
	// A command name with spaces and parentheses must not shift the fields.
	line := "4242 (nginx: worker (x)) S 4241 4241 4241 0 -1 4194624 90 0 0 0 150 25 7 3 20 0 1 0 12345 11111111 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"
	st, err := parseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if st.ppid != 4241 || st.cpuTicks != 175 || st.childTicks != 10 || st.rssPages != 2560 {
		t.Errorf("got %+v", st)
	}
	if _, err := parseStat("4242 (short) S 1"); err == nil {
		t.Error("truncated stat parsed")
	}
}

func TestSelectTests(t *testing.T) {
	got, err := selectTests(tests(), "miss, hit-1k")
	if err != nil || len(got) != 2 || got[0].ID != "miss" || got[1].ID != "hit-1k" {
		t.Errorf("got %v, %v", got, err)
	}
	if _, err := selectTests(tests(), "hit-1k,hit-2k"); err == nil || !strings.Contains(err.Error(), `"hit-2k"`) {
		t.Errorf("unknown test: %v", err)
	}
}

func TestEveryIssueRowIsATest(t *testing.T) {
	// The rows issue 14 asks for; the origin handshakes are a column of the
	// proxying rows.
	for _, id := range []string{"hit-1k", "hit-100k", "hit-1m", "hit-1k-h2", "new-tls", "pass", "miss", "mixed"} {
		if _, err := selectTests(tests(), id); err != nil {
			t.Error(err)
		}
	}
}
