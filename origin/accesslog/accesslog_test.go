package accesslog

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)
	tests := []struct {
		name string
		rec  Record
		line string
	}{
		{
			name: "https request",
			rec: Record{Type: TypeHTTPS, Time: at, Listener: "HTTPS:443", Client: "127.0.0.1:50000", Target: "127.0.0.2:8080",
				RequestProcessing: 1500 * time.Microsecond, TargetProcessing: 2 * time.Millisecond, ResponseProcessing: 0,
				ELBStatus: 200, TargetStatus: 200, ReceivedBytes: 120, SentBytes: 345,
				Request: "GET https://alb.example.com:443/a?b=c HTTP/1.1", UserAgent: "curl/8.0",
				SSLCipher: "TLS_AES_128_GCM_SHA256", SSLProtocol: "TLSv1.3", TargetGroup: "app",
				DomainName: "alb.example.com", Actions: "forward", ClientCertSubject: "CN=edge,O=edgegate"},
			line: `https 2026-03-04T05:06:07.123456Z HTTPS:443 127.0.0.1:50000 127.0.0.2:8080 0.001500 0.002000 0.000000 200 200 120 345 ` +
				`"GET https://alb.example.com:443/a?b=c HTTP/1.1" "curl/8.0" TLS_AES_128_GCM_SHA256 TLSv1.3 app "alb.example.com" "forward" "-" "-" "CN=edge,O=edgegate"`,
		},
		{
			name: "tcp connection that reached no target",
			rec: Record{Type: TypeTCP, Time: at, Listener: "TCP:9443", Client: "127.0.0.1:1",
				RequestProcessing: 10 * time.Second, TargetProcessing: NotReached, ResponseProcessing: NotReached,
				TargetGroup: "tls-apps", ErrorReason: ReasonTargetConnectionError},
			line: `tcp 2026-03-04T05:06:07.123456Z TCP:9443 127.0.0.1:1 - 10.000000 -1 -1 - - 0 0 "-" "-" - - tls-apps "-" "-" "-" "TargetConnectionError" "-"`,
		},
		{
			name: "escapes in quoted and unquoted fields",
			rec: Record{Type: TypeHTTP, Time: at, Listener: "HTTP:80", Client: "[::1]:2", TargetGroup: "a b",
				RequestProcessing: NotReached, TargetProcessing: NotReached, ResponseProcessing: NotReached,
				UserAgent: "say \"hi\" \\ \x01\n é", Request: "GET http://x:80/ HTTP/1.1", ELBStatus: 301,
				Actions: "redirect", RedirectURL: "https://x/"},
			line: `http 2026-03-04T05:06:07.123456Z HTTP:80 [::1]:2 - -1 -1 -1 301 - 0 0 "GET http://x:80/ HTTP/1.1" ` +
				`"say \"hi\" \\ \x01\x0a \xc3\xa9" - - a\x20b "-" "redirect" "https://x/" "-" "-"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.rec.String(); got != tt.line {
				t.Fatalf("line:\n got %s\nwant %s", got, tt.line)
			}
			back, err := ParseLine(tt.line + "\n")
			if err != nil {
				t.Fatal(err)
			}
			if back != tt.rec {
				t.Fatalf("parsed back:\n got %+v\nwant %+v", back, tt.rec)
			}
		})
	}
}

func TestParseLineErrors(t *testing.T) {
	good := (&Record{Type: TypeTCP, Time: time.Now(), RequestProcessing: NotReached}).String()
	tests := []struct {
		name, line, want string
	}{
		{"empty", "", "1 fields"},
		{"too few", "http 2026-03-04T05:06:07.123456Z", "2 fields"},
		{"unterminated quote", good[:len(good)-1], "unterminated"},
		{"bad escape", strings.Replace(good, `"-" "-" - -`, `"\q" "-" - -`, 1), "bad escape"},
		{"bad time", strings.Replace(good, good[4:31], "yesterday", 1), "bad time"},
		{"bad status", strings.Replace(good, " - - 0 0 ", " x - 0 0 ", 1), "elb_status_code"},
		{"bad bytes", strings.Replace(good, " - - 0 0 ", " - - -5 0 ", 1), "received_bytes"},
		{"text after quote", strings.Replace(good, `"-" "-" - -`, `"-"x "-" - -`, 1), "text after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseLine(tt.line)
			if err == nil || !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseLine(%q) = %v, want an ErrSyntax containing %q", tt.line, err, tt.want)
			}
		})
	}
	// Fields added later at the end are ignored.
	if _, err := ParseLine(good + ` "future" 42`); err != nil {
		t.Fatalf("extra fields: %v", err)
	}
}

func TestWriterAndScanner(t *testing.T) {
	dir := t.TempDir()
	w, err := NewWriter(WriterConfig{Dir: dir, Rotate: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	recs := []Record{
		{Type: TypeHTTP, Time: time.Now().UTC().Truncate(time.Microsecond), Client: "127.0.0.1:1", ELBStatus: 200, UserAgent: "a b"},
		{Type: TypeTLS, Time: time.Now().UTC().Truncate(time.Microsecond), Client: "127.0.0.1:2", ErrorReason: ReasonClientCertificateRevoked},
	}
	for i := range recs {
		if err := w.Write(&recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	name := w.FileName(time.Now())
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(&recs[0]); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close = %v", err)
	}
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(name, "edgegate-origin_") || !strings.HasSuffix(name, "Z.log") {
		t.Errorf("file name %s", name)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(append([]byte("# comment\n\n"), data...))
	zw.Close()
	for _, src := range []struct {
		name string
		data []byte
	}{{"plain", data}, {"gzip", gz.Bytes()}} {
		t.Run(src.name, func(t *testing.T) {
			sc := NewScanner(bytes.NewReader(src.data))
			var got []Record
			for sc.Scan() {
				got = append(got, sc.Record())
			}
			if err := sc.Err(); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(recs) {
				t.Fatalf("%d records, want %d", len(got), len(recs))
			}
			for i := range recs {
				if got[i] != recs[i] {
					t.Errorf("record %d:\n got %+v\nwant %+v", i, got[i], recs[i])
				}
			}
		})
	}
	sc := NewScanner(strings.NewReader(string(data) + "garbage\n"))
	for sc.Scan() {
	}
	if err := sc.Err(); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("Err = %v, want a line 3 error", err)
	}
}

func TestCheckRotate(t *testing.T) {
	tests := []struct {
		d  time.Duration
		ok bool
	}{{0, true}, {5 * time.Minute, true}, {time.Hour, true}, {48 * time.Hour, true},
		{-time.Minute, false}, {30 * time.Second, false}, {7 * time.Minute, false}, {90 * time.Second, false}}
	for _, tt := range tests {
		if err := CheckRotate(tt.d); (err == nil) != tt.ok {
			t.Errorf("CheckRotate(%v) = %v", tt.d, err)
		}
	}
}
