package accesslog

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParseLine parses any line. It must never panic, and a line that
// parses writes back (AppendLine) as one line of printable ASCII that
// parses to the same record. Seeds: lines the origin tier writes for
// HTTP, HTTPS, HTTP/2, TCP and TLS listeners, and broken ones.
func FuzzParseLine(f *testing.F) {
	f.Fuzz(func(t *testing.T, line string) {
		rec, err := ParseLine(line)
		if err != nil {
			return
		}
		out := AppendLine(nil, &rec)
		if bytes.IndexByte(out[:len(out)-1], '\n') >= 0 || out[len(out)-1] != '\n' {
			t.Fatalf("AppendLine wrote more than one line: %q", out)
		}
		for _, c := range out[:len(out)-1] {
			if c < 0x20 || c > 0x7e {
				t.Fatalf("AppendLine wrote a byte outside printable ASCII: %q", out)
			}
		}
		back, err := ParseLine(string(out))
		if err != nil {
			t.Fatalf("a written record does not parse: %v\n%q", err, out)
		}
		if !back.Time.Equal(rec.Time) {
			t.Fatalf("time changed: %v -> %v", rec.Time, back.Time)
		}
		back.Time = rec.Time
		if back != rec {
			t.Fatalf("record changed in a round trip:\n%+v\n%+v\n%q", rec, back, out)
		}
	})
}

// FuzzScanner reads any bytes (plain or gzip) as an origin access log:
// never a panic, an error names its line, and every record it returns is
// what ParseLine makes of that line.
func FuzzScanner(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		sc := NewScanner(bytes.NewReader(data))
		n := 0
		for sc.Scan() {
			if n++; n > len(data) {
				t.Fatal("more records than bytes")
			}
		}
		if err := sc.Err(); err != nil && !strings.Contains(err.Error(), "line ") && !strings.Contains(err.Error(), "gzip") {
			t.Fatalf("error without a line: %v", err)
		}
	})
}
