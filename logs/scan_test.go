package logs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/edge/accesslog"
)

// TestRealCloudFrontFiles summarises excerpts of real CloudFront logs of
// every era and checks what a person would read off them by hand.
func TestRealCloudFrontFiles(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := time.Parse(time.DateTime, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	for _, tc := range []struct {
		file                string
		records, malformed  int64
		first, last         time.Time
		results             map[string]int64
		hits, misses        int64
		host                string
		agent               string
		errors              map[string]int64
		ttfbCount, maxTaken float64
	}{
		{file: "cloudfront-2014-26fields.log", records: 2, first: at("2014-05-23 01:13:11"), last: at("2014-05-23 01:13:12"),
			results: map[string]int64{"Hit": 1, "RefreshHit": 1}, hits: 2, host: "d111111abcdef8.cloudfront.net",
			agent: "Mozilla/4.0 (compatible; MSIE 5.0b1; Mac_PowerPC)", maxTaken: 0.002},
		{file: "cloudfront-2016-23fields.log", records: 2, first: at("2016-06-10 18:41:39"), last: at("2016-06-10 18:41:40"),
			results: map[string]int64{"Miss": 2}, misses: 2, host: "host.example.com",
			// Encoded twice in the file (%2520): decoded to plain spaces.
			agent:    "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/51.0.2704.79 Safari/537.36",
			maxTaken: 0.036},
		{file: "cloudfront-2017-24fields.log", records: 4, first: at("2016-09-21 21:26:31"), last: at("2017-07-12 22:25:54"),
			results: map[string]int64{"Miss": 2, "Redirect": 2}, misses: 2, host: "blog.aarongorka.com",
			agent: "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)", maxTaken: 1.187},
		// The last line is cut short (31 fields): reported, not dropped.
		// The POST with status 000 is a Miss but not cacheable.
		{file: "cloudfront-2019-33fields.log", records: 7, malformed: 1, first: at("2019-12-04 21:02:31"),
			last: at("2022-11-15 08:43:04"), results: map[string]int64{"Miss": 3, "Error": 2, "Hit": 2}, hits: 2, misses: 2,
			host:   "test.com",
			agent:  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/78.0.3904.108 Safari/537.36",
			errors: map[string]int64{"OriginDnsError": 2}, ttfbCount: 7, maxTaken: 0.238},
		{file: "cloudfront-2020-33fields.log", records: 2, first: at("2020-06-16 11:00:04"), last: at("2020-06-16 11:00:05"),
			results: map[string]int64{"Miss": 2}, misses: 2, host: "dej1k5scircsp.cloudfront.net",
			agent:     "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/77.0.3865.75 Safari/537.36",
			ttfbCount: 2, maxTaken: 0.94},
	} {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("testdata", tc.file)
			_, s := analyze(t, Options{}, path)
			if s.Input.Records != tc.records || s.Input.Malformed != tc.malformed || s.Requests != tc.records {
				t.Errorf("records %d, malformed %d, requests %d; want %d, %d", s.Input.Records, s.Input.Malformed,
					s.Requests, tc.records, tc.malformed)
			}
			if tc.malformed > 0 {
				want := Problem{File: path, Line: 10, Message: "31 fields, want 33 as listed by #Fields on line 2"}
				if len(s.Input.Examples) != 1 || s.Input.Examples[0] != want {
					t.Errorf("malformed examples %+v, want %+v", s.Input.Examples, want)
				}
			}
			if !s.TimeRange.First.Equal(tc.first) || !s.TimeRange.Last.Equal(tc.last) {
				t.Errorf("time range %v to %v", s.TimeRange.First, s.TimeRange.Last)
			}
			got := map[string]int64{}
			for _, c := range s.ResultTypes {
				got[c.Key] = c.Count
			}
			if !reflect.DeepEqual(got, tc.results) {
				t.Errorf("result types %v, want %v", got, tc.results)
			}
			if s.HitRatio.Hits != tc.hits || s.HitRatio.Misses != tc.misses {
				t.Errorf("hits %d, misses %d; want %d, %d", s.HitRatio.Hits, s.HitRatio.Misses, tc.hits, tc.misses)
			}
			if s.Top.Hosts.Items[0].Key != tc.host || s.Top.UserAgents.Items[0].Key != tc.agent {
				t.Errorf("top host %q, top agent %q", s.Top.Hosts.Items[0].Key, s.Top.UserAgents.Items[0].Key)
			}
			gotErr := map[string]int64{}
			for _, e := range s.Errors {
				gotErr[e.Type] = e.Count
			}
			if len(gotErr) > 0 || len(tc.errors) > 0 {
				if !reflect.DeepEqual(gotErr, tc.errors) {
					t.Errorf("errors %v, want %v", gotErr, tc.errors)
				}
			}
			// Files before 2019 have no time-to-first-byte: no zeros counted.
			if float64(s.Latency.Overall.TimeToFirstByte.Count) != tc.ttfbCount || s.Latency.Overall.TimeTaken.Max != tc.maxTaken {
				t.Errorf("ttfb count %d, max time taken %v", s.Latency.Overall.TimeToFirstByte.Count, s.Latency.Overall.TimeTaken.Max)
			}
		})
	}
	t.Run("all eras in one directory, some gzipped", func(t *testing.T) {
		dir := t.TempDir()
		names, _ := filepath.Glob("testdata/*.log")
		for i, n := range names {
			data := readTestdata(t, filepath.Base(n))
			if i%2 == 0 {
				data = gzipped(t, data)
			}
			writeFile(t, filepath.Join(dir, "sub", filepath.Base(n)), data)
		}
		_, s := analyze(t, Options{}, dir)
		if s.Input.Records != 17 || s.Input.Malformed != 1 || len(s.Input.Sources) != 5 {
			t.Fatalf("records %d, malformed %d, sources %v", s.Input.Records, s.Input.Malformed, s.Input.Sources)
		}
		if e := s.Input.Examples[0]; !strings.HasSuffix(e.File, "cloudfront-2019-33fields.log") || e.Line != 10 {
			t.Errorf("malformed line reported at %s:%d", e.File, e.Line)
		}
	})
}

// messyLog is a log with everything that can trip up block splitting: a
// change of #Fields mid-file (a concatenation of eras), malformed lines,
// blank lines, CRLF endings, a line that is only a tab, and a last line
// without a newline. It returns the log and how many of its records have a
// time-to-first-byte field.
func messyLog(t *testing.T) ([]byte, int64) {
	var b bytes.Buffer
	b.Write(synthLog(t, 1500, time.Hour, false))
	ttfb := int64(1500)
	lines := strings.SplitAfter(b.String(), "\n")
	b.Reset()
	for i, l := range lines {
		switch {
		case i == 2: // the first record line
			b.WriteString("2026-11-22\t00:00:00\tbroken\n")
		case i%97 == 5:
			b.WriteString("\n")
		case i%331 == 7:
			b.WriteString(strings.Replace(l, "2026-11-22", "2026-02-30", 1)) // no such day
			ttfb--
			continue
		case i%151 == 9:
			b.WriteString(strings.TrimSuffix(l, "\n") + "\r\n")
			continue
		}
		b.WriteString(l)
	}
	b.WriteString("\t\n")
	era := readTestdata(t, "cloudfront-2017-24fields.log") // #Version, #Fields (24), 4 records
	for i := range 50 {
		b.Write(era)
		if i == 30 {
			b.WriteString("only\ttwo\n") // "want 24 as listed by #Fields on line N", N far into the file
		}
	}
	b.WriteString("#Fields: " + strings.Join(accesslog.FieldNames(), " ") + "\n")
	rest := synthLog(t, 400, time.Hour, false)
	rest = rest[bytes.IndexByte(rest[bytes.IndexByte(rest, '\n')+1:], '\n')+bytes.IndexByte(rest, '\n')+2:] // without the header
	half := bytes.IndexByte(rest[len(rest)/2:], '\n') + len(rest)/2 + 1
	b.Write(rest[:half])
	b.WriteString("2026-11-22\t25:00:00\n")
	b.Write(bytes.TrimSuffix(rest[half:], []byte("\n")))
	return b.Bytes(), ttfb + 400
}

// TestBlocksMatchSequentialReading: however the input is cut into blocks
// and however many workers parse them, the summary is the same, and the
// malformed lines are reported at the lines where one sequential Reader
// finds them.
func TestBlocksMatchSequentialReading(t *testing.T) {
	data, ttfb := messyLog(t)
	path := writeFile(t, filepath.Join(t.TempDir(), "messy.log"), data)
	records, problems := sequentialProblems(t, path, data)
	if len(problems) != maxProblems-1 {
		t.Fatalf("the messy log has %d malformed lines, want %d so that all of them are compared", len(problems), maxProblems-1)
	}
	if last := problems[len(problems)-1].Message; !strings.Contains(last, "as listed by #Fields on line") ||
		strings.HasSuffix(last, " line 2") {
		t.Fatalf("the last malformed line should refer to a #Fields line far into the file: %s", last)
	}
	var want []byte
	for _, opt := range []Options{{}, {BlockSize: 100, Workers: 3}, {BlockSize: 4096, Workers: 2}, {BlockSize: 777, Workers: 1},
		{BlockSize: 65536, Workers: 4}} {
		an, s := analyze(t, opt, path)
		if s.Input.Records != int64(records) || s.Input.Malformed != int64(len(problems)) {
			t.Errorf("block size %d: %d records, %d malformed; sequential reading finds %d and %d",
				opt.BlockSize, s.Input.Records, s.Input.Malformed, records, len(problems))
		}
		got := an.Problems()
		for i := range got {
			got[i].src = 0
		}
		if !reflect.DeepEqual(got, problems) {
			t.Errorf("block size %d: problems\n%+v\nwant\n%+v", opt.BlockSize, got, problems)
		}
		if s.Latency.Overall.TimeToFirstByte.Count != ttfb {
			t.Errorf("block size %d: %d records with time-to-first-byte, want %d (the 24-field era has none)",
				opt.BlockSize, s.Latency.Overall.TimeToFirstByte.Count, ttfb)
		}
		js, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if want == nil {
			want = js
		} else if !bytes.Equal(js, want) {
			t.Errorf("block size %d, %d workers: the summary differs from the one of whole-file blocks", opt.BlockSize, opt.Workers)
		}
	}
}

func TestExpand(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"b/2.log", "a.log", "b/1.gz", "b/.hidden.log", ".git/x.log", "c/old.gz.tmp", "b/10.log",
		"README.md", "b/access.log.1"} {
		writeFile(t, filepath.Join(dir, name), []byte("#Version: 1.0\n"))
	}
	readme := writeFile(t, filepath.Join(t.TempDir(), "README.md"), []byte("# not a log\n"))
	got, skipped, err := Expand([]string{dir, "-", readme})
	if err != nil {
		t.Fatal(err)
	}
	if len(skipped) != 1 || filepath.Base(skipped[0]) != "README.md" {
		t.Errorf("skipped %v, want the README of the directory", skipped)
	}
	var names []string
	for _, s := range got {
		rel, _ := filepath.Rel(dir, s.Name)
		switch {
		case s.Stdin:
			rel = "-"
		case strings.HasPrefix(rel, ".."):
			rel = filepath.Base(s.Name)
		}
		names = append(names, rel)
	}
	want := []string{"a.log", "b/1.gz", "b/10.log", "b/2.log", "b/access.log.1", "-", "README.md"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("Expand = %v, want %v (name order; hidden, .tmp and non-log files of directories skipped; "+
			"a file named explicitly read)", names, want)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{filepath.Join(dir, "missing.log")}, "missing.log"},
		{[]string{"-", "-"}, "twice"},
		{[]string{filepath.Join(dir, "c")}, "no log files"},
		{nil, "no log files"},
	} {
		if _, _, err := Expand(tc.args); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Expand(%v): %v, want an error mentioning %q", tc.args, err, tc.want)
		}
	}
}

func TestStdinAndGzipByContent(t *testing.T) {
	data := readTestdata(t, "cloudfront-2020-33fields.log")
	dir := t.TempDir()
	plainNamedGz := writeFile(t, filepath.Join(dir, "x.gz"), data)
	gzNamedLog := writeFile(t, filepath.Join(dir, "y.log"), gzipped(t, data))
	for name, opt := range map[string]Options{
		"plain stdin":   {Stdin: bytes.NewReader(data)},
		"gzipped stdin": {Stdin: bytes.NewReader(gzipped(t, data))},
	} {
		_, s := analyze(t, opt, "-")
		if s.Requests != 2 || s.Input.Sources[0] != "-" {
			t.Errorf("%s: %d requests from %v", name, s.Requests, s.Input.Sources)
		}
	}
	_, s := analyze(t, Options{}, plainNamedGz, gzNamedLog)
	if s.Requests != 4 || len(s.Input.UnreadSources) != 0 {
		t.Errorf("files recognised by content: %d requests, errors %v", s.Requests, s.Input.UnreadSources)
	}
}

func TestUnreadableInput(t *testing.T) {
	data := synthLog(t, 3000, time.Hour, false)
	z := gzipped(t, data)
	path := writeFile(t, filepath.Join(t.TempDir(), "cut.gz"), z[:len(z)*2/3])
	an, s := analyze(t, Options{BlockSize: 4096}, path)
	if len(an.InputErrors) != 1 || !strings.Contains(an.InputErrors[0].Error(), "cut.gz") {
		t.Fatalf("input errors %v, want one naming cut.gz", an.InputErrors)
	}
	if s.Requests < 1000 || s.Requests >= 3000 || s.Input.Malformed > 1 {
		t.Errorf("%d requests and %d malformed read before the cut, want the complete lines before it", s.Requests, s.Input.Malformed)
	}
	if len(s.Input.UnreadSources) != 1 {
		t.Errorf("summary input errors %v", s.Input.UnreadSources)
	}
}

// TestLineTooLongToHold: a line longer than any block is reported at its
// line and skipped, and the lines around it are read.
func TestLineTooLongToHold(t *testing.T) {
	data := synthLog(t, 20, time.Hour, false)
	lines := strings.SplitAfter(string(data), "\n")
	huge := strings.Repeat("x", maxHold+10) + "\n"
	in := strings.Join(lines[:5], "") + huge + strings.Join(lines[5:], "")
	path := writeFile(t, filepath.Join(t.TempDir(), "huge.log"), []byte(in))
	an, s := analyze(t, Options{BlockSize: 1024}, path)
	if s.Requests != 20 || s.Input.Malformed != 1 {
		t.Fatalf("%d requests, %d malformed; want 20 and 1", s.Requests, s.Input.Malformed)
	}
	if p := an.Problems()[0]; p.Line != 6 || !strings.Contains(p.Message, "longer than") {
		t.Errorf("problem %+v, want line 6 too long", p)
	}
}

// TestHeaderlessLines: grep output has no #Fields line; lines are read by
// their field count.
func TestHeaderlessLines(t *testing.T) {
	var b strings.Builder
	for _, name := range []string{"cloudfront-2019-33fields.log", "cloudfront-2017-24fields.log"} {
		for _, l := range strings.SplitAfter(string(readTestdata(t, name)), "\n") {
			if !strings.HasPrefix(l, "#") {
				b.WriteString(l)
			}
		}
	}
	path := writeFile(t, filepath.Join(t.TempDir(), "grep.out"), []byte(b.String()))
	_, s := analyze(t, Options{BlockSize: 300}, path)
	if s.Requests != 11 || s.Input.Malformed != 1 || s.Latency.Overall.TimeToFirstByte.Count != 7 {
		t.Errorf("%d requests, %d malformed, %d with first byte; want 11, 1, 7", s.Requests, s.Input.Malformed,
			s.Latency.Overall.TimeToFirstByte.Count)
	}
}

func TestFilteredAnalysis(t *testing.T) {
	data := synthLog(t, 5000, 2*time.Hour, true)
	path := writeFile(t, filepath.Join(t.TempDir(), "f.log"), data)
	f, err := NewFilter(FilterSpec{Host: "api.example.com", Status: "5xx"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, all := analyze(t, Options{}, path)
	_, s := analyze(t, Options{Filter: f}, path)
	var want int64
	for _, e := range all.Errors {
		for _, h := range e.Hosts {
			if h.Key == "api.example.com" && e.Type == "OriginConnectError" {
				want += h.Count
			}
		}
	}
	if s.Requests != want || want == 0 || s.Input.Filtered != all.Requests-want || s.Filter == "" {
		t.Errorf("filtered %d requests (%d excluded), want the %d OriginConnectErrors of api.example.com",
			s.Requests, s.Input.Filtered, want)
	}
	for _, c := range s.StatusCodes {
		if c.Key != "502" {
			t.Errorf("status %s passed the 5xx filter", c.Key)
		}
	}
}

// TestAnalyzeCancelled: a cancelled analysis returns promptly, even with a
// producer blocked on standard input that never ends.
func TestAnalyzeCancelled(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	data := readTestdata(t, "cloudfront-2020-33fields.log")
	go func() { _, _ = pw.Write(data) }() // then nothing, never EOF
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Analyze(ctx, []Source{{Name: "-", Stdin: true}}, Options{Stdin: pr})
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Analyze did not return after its context was cancelled")
	}
}
