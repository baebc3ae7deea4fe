package accesslog

import (
	"strings"
	"testing"
	"time"
)

// TestEscapeSet checks the escape bitmaps against the reference's readable
// definition, for every byte.
func TestEscapeSet(t *testing.T) {
	for c := 0; c < 256; c++ {
		want := c <= 32 || c >= 127 || strings.IndexByte("<>\"#%{}|\\^~[]`'", byte(c)) >= 0
		if got := mustEscape(byte(c)); got != want {
			t.Errorf("mustEscape(%#02x %q) = %v, want %v", c, rune(c), got, want)
		}
	}
}

func TestHeaderAndFieldNames(t *testing.T) {
	names := FieldNames()
	if len(names) != NumFields || names[0] != "date" || names[10] != "cs(User-Agent)" ||
		names[28] != "x-edge-detailed-result-type" || names[32] != "sc-range-end" {
		t.Fatalf("FieldNames() = %q", names)
	}
	names[0] = "mutated"
	if FieldNames()[0] != "date" {
		t.Fatal("FieldNames returned shared state")
	}
	want := "#Version: 1.0\n#Fields: " + strings.Join(FieldNames(), " ") + "\n"
	if Header() != want {
		t.Fatalf("Header() = %q, want %q", Header(), want)
	}
	if got := string(AppendHeader([]byte("x"))); got != "x"+want {
		t.Fatalf("AppendHeader = %q", got)
	}
	for i, n := range FieldNames() {
		if fieldID(n) != i {
			t.Errorf("fieldID(%q) = %d, want %d", n, fieldID(n), i)
		}
	}
}

func TestResultTypes(t *testing.T) {
	all := ResultTypes()
	if len(all) != 36 { // CloudFront's 33 and edgegate's 3 stale-on-error refinements
		t.Fatalf("%d result types, want 36", len(all))
	}
	seen := map[ResultType]bool{}
	for _, rt := range all {
		if seen[rt] {
			t.Errorf("%s listed twice", rt)
		}
		seen[rt] = true
		if !rt.Known() {
			t.Errorf("%s not Known", rt)
		}
	}
	for _, rt := range []ResultType{"", "hit", "SomethingNew"} {
		if rt.Known() {
			t.Errorf("%q reported Known", rt)
		}
	}
}

// TestAppendRecordFields checks individual fields of the written line.
func TestAppendRecordFields(t *testing.T) {
	base := time.Date(2026, 11, 22, 23, 59, 58, 999_000_000, time.UTC)
	tokyo := time.FixedZone("JST", 9*3600)
	tests := []struct {
		name  string
		edit  func(r *Record)
		field string // field name
		want  string
	}{
		{"date UTC", func(r *Record) {}, "date", "2026-11-22"},
		{"time drops fraction", func(r *Record) {}, "time", "23:59:58"},
		{"other zone converted to UTC", func(r *Record) { r.Time = time.Date(2026, 11, 23, 8, 0, 1, 0, tokyo) }, "date", "2026-11-22"},
		{"other zone time", func(r *Record) { r.Time = time.Date(2026, 11, 23, 8, 0, 1, 0, tokyo) }, "time", "23:00:01"},
		{"status 0", func(r *Record) { r.Status = 0 }, "sc-status", "000"},
		{"status", func(r *Record) { r.Status = 404 }, "sc-status", "404"},
		{"empty text", func(r *Record) { r.Referer = "" }, "cs(Referer)", "-"},
		{"dash text", func(r *Record) { r.Referer = "-" }, "cs(Referer)", "%2D"},
		{"space tab newline", func(r *Record) { r.UserAgent = "a b\tc\nd" }, "cs(User-Agent)", "a%20b%09c%0Ad"},
		{"percent once", func(r *Record) { r.Query = "q=a%20b" }, "cs-uri-query", "q=a%2520b"},
		{"specials", func(r *Record) { r.Cookie = "<>\"#%{}|\\^~[]`'" }, "cs(Cookie)",
			"%3C%3E%22%23%25%7B%7D%7C%5C%5E%7E%5B%5D%60%27"},
		{"kept as is", func(r *Record) { r.Query = "a=1&b=2;c=(x),+*!$@:/?" }, "cs-uri-query", "a=1&b=2;c=(x),+*!$@:/?"},
		{"unicode", func(r *Record) { r.URIStem = "/é" }, "cs-uri-stem", "/%C3%A9"},
		{"DEL and control", func(r *Record) { r.URIStem = "/\x7f\x01" }, "cs-uri-stem", "/%7F%01"},
		{"content type", func(r *Record) { r.ContentType = "text/html; charset=utf-8" }, "sc-content-type", "text/html;%20charset=utf-8"},
		{"time taken ms", func(r *Record) { r.TimeTaken = time.Millisecond }, "time-taken", "0.001"},
		{"time taken zero", func(r *Record) { r.TimeTaken = 0 }, "time-taken", "0.000"},
		{"time taken rounds down", func(r *Record) { r.TimeTaken = 1499 * time.Microsecond }, "time-taken", "0.001"},
		{"time taken rounds up", func(r *Record) { r.TimeTaken = 1500 * time.Microsecond }, "time-taken", "0.002"},
		{"time taken long", func(r *Record) { r.TimeTaken = 62*time.Second + 50*time.Millisecond }, "time-taken", "62.050"},
		{"time taken negative", func(r *Record) { r.TimeTaken = -time.Second }, "time-taken", "0.000"},
		{"ttfb", func(r *Record) { r.TimeToFirstByte = 999_600 * time.Microsecond }, "time-to-first-byte", "1.000"},
		{"content length unknown", func(r *Record) { r.ContentLength = -1 }, "sc-content-len", "-"},
		{"content length zero", func(r *Record) { r.ContentLength = 0 }, "sc-content-len", "0"},
		{"range absent", func(r *Record) { r.RangeStart = -1 }, "sc-range-start", "-"},
		{"range end", func(r *Record) { r.RangeEnd = 1023 }, "sc-range-end", "1023"},
		{"negative bytes", func(r *Record) { r.BytesSent = -5 }, "sc-bytes", "-"},
		{"result type", func(r *Record) { r.DetailedResultType = ResultOriginDnsError }, "x-edge-detailed-result-type", "OriginDnsError"},
		{"empty result", func(r *Record) { r.ResultType = "" }, "x-edge-result-type", "-"},
		{"forwarded for", func(r *Record) { r.ForwardedFor = "192.0.2.1, 192.0.2.2" }, "x-forwarded-for", "192.0.2.1,%20192.0.2.2"},
		{"ipv6", func(r *Record) { r.ClientIP = "2001:db8::1" }, "c-ip", "2001:db8::1"},
	}
	col := map[string]int{}
	for i, n := range FieldNames() {
		col[n] = i
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := typical(base)
			tt.edit(&r)
			line := string(AppendRecord(nil, &r))
			if !strings.HasSuffix(line, "\n") || strings.Count(line, "\n") != 1 {
				t.Fatalf("line %q is not one line", line)
			}
			fields := strings.Split(strings.TrimSuffix(line, "\n"), "\t")
			if len(fields) != NumFields {
				t.Fatalf("%d fields in %q", len(fields), line)
			}
			i, ok := col[tt.field]
			if !ok {
				t.Fatalf("no field %s", tt.field)
			}
			if fields[i] != tt.want {
				t.Errorf("%s = %q, want %q", tt.field, fields[i], tt.want)
			}
		})
	}
}

// TestAppendRecordBlank checks that a reset record is a line of dashes and
// zeros, the shape of a request that never got anywhere.
func TestAppendRecordBlank(t *testing.T) {
	r := blank(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	got := string(AppendRecord([]byte("prefix:"), &r))
	want := "prefix:2026-01-02\t03:04:05\t-\t0\t-\t-\t-\t-\t000\t-\t-\t-\t-\t-\t-\t-\t-\t0\t0.000\t-\t-\t-\t-\t-\t-\t-\t0\t0.000\t-\t-\t-\t-\t-\n"
	if got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

// TestAppendRecordZeroAlloc holds AppendRecord to zero allocations for a
// typical record in a buffer with room, which the edge relies on.
func TestAppendRecordZeroAlloc(t *testing.T) {
	r := typical(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	r.Cookie = "a=b c" // exercise the escaping path too
	buf := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		buf = AppendRecord(buf[:0], &r)
	})
	if allocs != 0 {
		t.Fatalf("AppendRecord: %v allocations per record, want 0", allocs)
	}
}
