package accesslog

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRoundTripLines writes sample records with AppendRecord and reads them
// back with the Reader, field by field.
func TestRoundTripLines(t *testing.T) {
	want := sampleRecords(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	buf := AppendHeader(nil)
	for i := range want {
		buf = AppendRecord(buf, &want[i])
	}
	rd := NewReader(bytes.NewReader(buf), "mem.log")
	for i := range want {
		got, err := rd.Next()
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if d := diffRecords(*got, want[i]); d != "" {
			t.Errorf("record %d (line %d):%s", i, rd.Line(), d)
		}
	}
	if _, err := rd.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after last record: %v, want io.EOF", err)
	}
}

// TestUserAgentDoubleDecoding pins the documented rule: a second decoding
// only for records dated before 2020 whose once-decoded User-Agent is itself
// a clean encoding.
func TestUserAgentDoubleDecoding(t *testing.T) {
	tests := []struct {
		date, ua, want string
	}{
		{"2016-06-10", "Mozilla/5.0%2520(Windows%2520NT%25206.1)", "Mozilla/5.0 (Windows NT 6.1)"},
		{"2019-12-31", "a%2520b", "a b"},
		{"2016-06-10", "Mozilla/4.0%20(compatible;%20MSIE%207.0)", "Mozilla/4.0 (compatible; MSIE 7.0)"},
		// once-decoded "100%25 sure ..." has a space: a single encoding, kept.
		{"2016-06-10", "100%2525%20sure", "100%25 sure"},
		// a "%" that does not start an escape: not an encoding, kept.
		{"2016-06-10", "50%25%2Bmore", "50%+more"},
		// ours, written after 2019: decoded exactly once.
		{"2020-01-01", "Mozilla/5.0%2520(X)", "Mozilla/5.0%20(X)"},
		{"2026-11-22", "curl%252F8.0", "curl%2F8.0"},
	}
	for _, tt := range tests {
		t.Run(tt.date+" "+tt.ua, func(t *testing.T) {
			line := tt.date + "\t10:00:00\tLAX1\t1\t192.0.2.1\tGET\td.example\t/\t200\t-\t" + tt.ua + "\t-\t-\tHit\tid\th\thttp\t1\t0.001\n"
			in := "#Version: 1.0\n#Fields: " + strings.Join(FieldNames()[:19], " ") + "\n" + line
			rec, err := NewReader(strings.NewReader(in), "ua.log").Next()
			if err != nil {
				t.Fatal(err)
			}
			if rec.UserAgent != tt.want {
				t.Fatalf("UserAgent = %q, want %q", rec.UserAgent, tt.want)
			}
		})
	}
}

// step is what one Next call should return.
type step struct {
	line    int    // expected LineError line, 0 for a record
	problem string // substring of the LineError
	uri     string // for a record: its URIStem
}

func runSteps(t *testing.T, name, in string, steps []step) {
	t.Helper()
	rd := NewReader(strings.NewReader(in), name)
	for i, s := range steps {
		rec, err := rd.Next()
		if s.line == 0 {
			if err != nil {
				t.Fatalf("step %d: %v, want a record", i, err)
			}
			if rec.URIStem != s.uri {
				t.Fatalf("step %d: URIStem %q, want %q", i, rec.URIStem, s.uri)
			}
			continue
		}
		var le *LineError
		if !errors.As(err, &le) {
			t.Fatalf("step %d: got %v, %v; want a LineError on line %d", i, rec, err, s.line)
		}
		if le.File != name || le.Line != s.line || !strings.Contains(le.Error(), s.problem) {
			t.Fatalf("step %d: %q (File %q Line %d), want %s:%d: ...%s...", i, le.Error(), le.File, le.Line, name, s.line, s.problem)
		}
		if !strings.HasPrefix(le.Error(), name+":"+strconv.Itoa(s.line)+": ") {
			t.Fatalf("step %d: %q does not start with FILE:LINE: ", i, le.Error())
		}
	}
	if rec, err := rd.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the steps: %v, %v; want io.EOF", rec, err)
	}
}

// goodLine returns a valid 33-field line with the given URI stem, and
// variants with one field replaced.
func goodLine(uri string) string {
	r := typical(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	r.URIStem = uri
	return string(AppendRecord(nil, &r))
}

func withField(line string, i int, v string) string {
	f := strings.Split(strings.TrimSuffix(line, "\n"), "\t")
	f[i] = v
	return strings.Join(f, "\t") + "\n"
}

// TestMalformedLines: each bad line is a LineError with its line number,
// and reading goes on with the next line.
func TestMalformedLines(t *testing.T) {
	g := goodLine("/x")
	in := Header() + // lines 1-2
		goodLine("/1") + // 3
		strings.Replace(g, "\t", "", 1) + // 4: 32 fields
		withField(g, 0, "2026-13-01") + // 5: bad month
		goodLine("/2") + // 6
		withField(g, 3, "12a") + // 7: sc-bytes
		withField(g, 18, "0,001") + // 8: time-taken
		withField(g, 1, "24:00:00") + // 9: hour
		withField(g, 8, "2000") + // 10: status
		withField(g, 30, "-5") + // 11: content length
		withField(g, 0, "2026-02-29") + // 12: no such day
		withField(g, 26, "70000") + // 13: port
		strings.TrimSuffix(g, "\n") + "\textra\n" + // 14: 34 fields
		withField(g, 27, "1.") + // 15: ttfb
		goodLine("/3") + // 16
		strings.TrimSuffix(goodLine("/torn"), "\n")[:100] // 17: torn last line, no newline
	runSteps(t, "bad.log", in, []step{
		{uri: "/1"},
		{line: 4, problem: "32 fields, want 33 as listed by #Fields on line 2"},
		{line: 5, problem: `field 1 date: "2026-13-01" is not a date`},
		{uri: "/2"},
		{line: 7, problem: `field 4 sc-bytes: "12a" is not a byte count`},
		{line: 8, problem: `field 19 time-taken: "0,001"`},
		{line: 9, problem: `field 2 time: "24:00:00"`},
		{line: 10, problem: `field 9 sc-status: "2000"`},
		{line: 11, problem: `field 31 sc-content-len: "-5"`},
		{line: 12, problem: `"2026-02-29" is not a date`},
		{line: 13, problem: `field 27 c-port: "70000"`},
		{line: 14, problem: "34 fields, want 33"},
		{line: 15, problem: `field 28 time-to-first-byte: "1."`},
		{uri: "/3"},
		{line: 17, problem: "fields, want 33"},
	})
}

// TestReaderTolerance covers what real files contain and must be accepted.
func TestReaderTolerance(t *testing.T) {
	g := goodLine("/x")
	f24 := strings.Join(FieldNames()[:24], " ")
	line24 := strings.Join(strings.Split(strings.TrimSuffix(goodLine("/24"), "\n"), "\t")[:24], "\t") + "\n"
	tests := []struct {
		name  string
		in    string
		steps []step
	}{
		{"stray trailing tab", Header() + strings.TrimSuffix(goodLine("/t"), "\n") + "\t\n", []step{{uri: "/t"}}},
		{"CRLF and blank lines", strings.ReplaceAll(Header(), "\n", "\r\n") + "\r\n\n" + strings.TrimSuffix(goodLine("/crlf"), "\n") + "\r\n\n", []step{{uri: "/crlf"}}},
		{"comment lines", "#Version: 1.0\n#Remark: hello\n#Fields: " + strings.Join(FieldNames(), " ") + "\n#Date: x\n" + goodLine("/c"), []step{{uri: "/c"}}},
		{"no header: grep output of 33 and 24 fields", goodLine("/g33") + line24 + "a\tb\n" + goodLine("/g33b"),
			[]step{{uri: "/g33"}, {uri: "/24"}, {line: 3, problem: "2 fields and no #Fields line"}, {uri: "/g33b"}}},
		{"no header, trailing tab", strings.TrimSuffix(line24, "\n") + "\t\n", []step{{uri: "/24"}}},
		{"concatenated files of two eras", Header() + goodLine("/new") + "#Version: 1.0\n#Fields: " + f24 + "\n" + line24 + g,
			[]step{{uri: "/new"}, {uri: "/24"}, {line: 7, problem: "33 fields, want 24 as listed by #Fields on line 5"}}},
		{"empty #Fields", "#Fields:\n" + g, []step{{line: 1, problem: "lists no fields"}, {uri: "/x"}}},
		{"duplicate #Fields name", "#Fields: date time date\n" + g, []step{{line: 1, problem: "lists date twice"}, {uri: "/x"}}},
		{"empty input", "", nil},
		{"header only", Header(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runSteps(t, "in.log", tt.in, tt.steps) })
	}
}

// TestReaderLongLine: a runaway line costs one LineError, not the file.
func TestReaderLongLine(t *testing.T) {
	in := Header() + goodLine("/a") + strings.Repeat("x", maxLineLen+10) + "\n" + goodLine("/b") +
		strings.Repeat("y", maxLineLen+10) // and at EOF without newline
	runSteps(t, "long.log", in, []step{
		{uri: "/a"},
		{line: 4, problem: "line longer than"},
		{uri: "/b"},
		{line: 6, problem: "line longer than"},
	})
	// A long but legal line (a 100 KiB cookie) spans several buffer fills.
	r := typical(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	r.Cookie = strings.Repeat("k=v; ", 20<<10)
	in = Header() + string(AppendRecord(nil, &r))
	rec, err := NewReader(strings.NewReader(in), "cookie.log").Next()
	if err != nil || rec.Cookie != r.Cookie {
		t.Fatalf("long cookie: err %v, same %v", err, err == nil && rec.Cookie == r.Cookie)
	}
}

// TestReaderNewerFields: fields 34 and 35, v2 fields and unknown names are
// reachable through Field; Record keeps what it knows.
func TestReaderNewerFields(t *testing.T) {
	names := append(FieldNames(), "distribution-tenant-id", "connection-id", "c-country", "timestamp(ms)")
	g := strings.TrimSuffix(goodLine("/n"), "\n")
	in := "#Version: 1.0\n#Fields: " + strings.Join(names, " ") + "\n" +
		g + "\tdt_2abc\tcid%20x\tJP\t1763805600123\n" +
		g + "\t-\t-\t-\t-\n"
	rd := NewReader(strings.NewReader(in), "new.log")
	rec, err := rd.Next()
	if err != nil {
		t.Fatal(err)
	}
	if rec.URIStem != "/n" || rec.Status != 200 {
		t.Fatalf("record %+v", rec)
	}
	// timestamp(ms) after date/time: date and time win, they are the standard fields.
	if want := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC); !rec.Time.Equal(want) {
		t.Fatalf("Time %v, want %v", rec.Time, want)
	}
	for name, want := range map[string]string{"distribution-tenant-id": "dt_2abc", "Connection-ID": "cid x", "c-country": "JP", "cs-uri-stem": "/n", "cs(User-Agent)": rec.UserAgent} {
		if got, ok := rd.Field(name); !ok || got != want {
			t.Errorf("Field(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
	if _, ok := rd.Field("asn"); ok {
		t.Error("Field(asn) found in a file without it")
	}
	if got := rd.Fields(); len(got) != 37 || got[35] != "c-country" {
		t.Errorf("Fields() = %q", got)
	}
	if _, err := rd.Next(); err != nil {
		t.Fatal(err)
	}
	if got, ok := rd.Field("c-country"); !ok || got != "" {
		t.Errorf("Field(c-country) on a dash = %q, %v", got, ok)
	}

	// Header-less lines of 34 and 35 fields imply the newer names.
	rd = NewReader(strings.NewReader(g+"\ttenant\tconn\n"), "grep.log")
	if _, err := rd.Next(); err != nil {
		t.Fatal(err)
	}
	if got, _ := rd.Field("connection-id"); got != "conn" {
		t.Errorf("implied connection-id = %q", got)
	}

	// A v2 file with only timestamp(ms) still gets a time.
	rd = NewReader(strings.NewReader("#Fields: timestamp(ms) c-ip sc-status\n1763805600123\t192.0.2.1\t204\n"), "v2.log")
	rec, err = rd.Next()
	if err != nil {
		t.Fatal(err)
	}
	if want := time.UnixMilli(1763805600123).UTC(); !rec.Time.Equal(want) || rec.Status != 204 || rec.ContentLength != -1 {
		t.Fatalf("v2 record: time %v (want %v), status %d, content length %d", rec.Time, want, rec.Status, rec.ContentLength)
	}
}

// TestReaderReusesRecord documents that Next overwrites the previous record
// and that absent fields are reset, not carried over.
func TestReaderReusesRecord(t *testing.T) {
	full := goodLine("/full")
	short := strings.Join(strings.Split(strings.TrimSuffix(goodLine("/short"), "\n"), "\t")[:23], "\t") + "\n"
	rd := NewReader(strings.NewReader(full+short), "reuse.log")
	first, err := rd.Next()
	if err != nil {
		t.Fatal(err)
	}
	if first.ContentLength != 18210 || first.ClientPort != 53211 {
		t.Fatalf("first record %+v", first)
	}
	second, err := rd.Next()
	if err != nil {
		t.Fatal(err)
	}
	if first != second || second.URIStem != "/short" {
		t.Fatalf("Next did not reuse its record (%p, %p) or did not overwrite it (%q)", first, second, second.URIStem)
	}
	if second.ContentLength != -1 || second.ClientPort != 0 || second.ProtocolVersion != "" || second.DetailedResultType != "" {
		t.Fatalf("fields absent from a 23-field line kept old values: %+v", second)
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	content := Header() + goodLine("/open")
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	gz := func(parts ...string) []byte {
		var b bytes.Buffer
		for _, p := range parts { // one gzip member per part
			zw := gzip.NewWriter(&b)
			zw.Write([]byte(p))
			zw.Close()
		}
		return b.Bytes()
	}
	tests := []struct {
		name, file string
		data       []byte
		want       string
	}{
		{"plain", "a.log", []byte(content), content},
		{"gzip by magic, not name", "b.log", gz(content), content},
		{"gzip named .gz", "c.gz", gz(content), content},
		{"concatenated gzip members", "d.gz", gz(content, goodLine("/two")), content + goodLine("/two")},
		{"empty", "e.log", nil, ""},
		{"one byte", "f.log", []byte("#"), "#"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := contentOf(t, write(tt.file, tt.data)); got != tt.want {
				t.Fatalf("content %q, want %q", got, tt.want)
			}
		})
	}

	missing := filepath.Join(dir, "missing.log")
	if _, err := Open(missing); err == nil || !strings.Contains(err.Error(), "access log "+missing) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open(missing) = %v", err)
	}

	// A truncated gzip file: the complete lines come out, then an I/O
	// error naming the file (not a LineError), and it stays.
	rng := rand.New(rand.NewPCG(1, 2))
	var lines strings.Builder
	for range 200 { // random cookies, so that half the stream is about half the lines
		r := typical(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
		r.Cookie = strconv.FormatUint(rng.Uint64(), 36) + strconv.FormatUint(rng.Uint64(), 36)
		lines.Write(AppendRecord(nil, &r))
	}
	full := gz(Header() + lines.String())
	p := write("trunc.gz", full[:len(full)/2])
	rc, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	rd := NewReader(rc, p)
	n := 0
	for {
		_, err = rd.Next()
		if err != nil {
			break
		}
		n++
	}
	var le *LineError
	if errors.As(err, &le) || errors.Is(err, io.EOF) || !strings.Contains(err.Error(), p) {
		t.Fatalf("truncated gzip: %v", err)
	}
	if _, err2 := rd.Next(); err2 == nil || err2.Error() != err.Error() {
		t.Fatalf("error not sticky: %v then %v", err, err2)
	}
	if n == 0 || n >= 200 {
		t.Fatalf("%d records before the truncation", n)
	}
}
