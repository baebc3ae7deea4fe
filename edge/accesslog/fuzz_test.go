package accesslog

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzReader reads any bytes as a standard log. It must never panic; every
// error is a *LineError naming the input and a line, after which reading
// goes on; and every record dated 2020 or later (before that, CloudFront's
// double-encoded User-Agent is decoded twice by design) reads back
// identically once written again with AppendRecord. Seeds: the CloudFront
// files of every era in testdata/ and lines of our own.
func FuzzReader(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		rd := NewReader(bytes.NewReader(data), "fuzz.log")
		for i := 0; ; i++ {
			if i > len(data)+1 {
				t.Fatalf("more records (%d) than input bytes", i)
			}
			rec, err := rd.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			var le *LineError
			if err != nil {
				if !errors.As(err, &le) || rd.Line() < 1 {
					t.Fatalf("error that is not a *LineError with a line: %T %v", err, err)
				}
				continue
			}
			if rec.Time.Year() < 2020 {
				continue
			}
			got := *rec
			line := AppendRecord(AppendHeader(nil), &got)
			back, err := NewReader(bytes.NewReader(line), "again.log").Next()
			if err != nil {
				t.Fatalf("a record read from line %d does not read back once written: %v\n%q", rd.Line(), err, line)
			}
			if d := diffRecords(*back, got); d != "" {
				t.Fatalf("a record read from line %d changed when written and read again:%s\n%q", rd.Line(), d, line)
			}
		}
	})
}

// FuzzRecordText writes a record whose text fields hold any bytes and
// reads it back: the same record (write then read is the identity for
// every value our own edge can log).
func FuzzRecordText(f *testing.F) {
	f.Fuzz(func(t *testing.T, uri, query, ua, referer, cookie, host, ff, ct string) {
		r := Record{
			Time: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC), Location: "FUZ1", BytesSent: 1, ClientIP: "192.0.2.1",
			Method: "GET", Host: "d.example", URIStem: uri, Status: 200, Referer: referer, UserAgent: ua, Query: query,
			Cookie: cookie, ResultType: ResultHit, RequestID: "id", HostHeader: host, Protocol: "https", BytesReceived: 1,
			TimeTaken: time.Millisecond, ForwardedFor: ff, SSLProtocol: "TLSv1.3", SSLCipher: "TLS_AES_128_GCM_SHA256",
			ResponseResultType: ResultHit, ProtocolVersion: "HTTP/2.0", ClientPort: 1, DetailedResultType: ResultHit,
			ContentType: ct, ContentLength: -1, RangeStart: -1, RangeEnd: -1,
		}
		line := AppendRecord(AppendHeader(nil), &r)
		if n := bytes.Count(line, []byte("\n")); n != 3 {
			t.Fatalf("a record wrote %d lines with its header, want 3: %q", n, line)
		}
		back, err := NewReader(bytes.NewReader(line), "fuzz.log").Next()
		if err != nil {
			t.Fatalf("written record does not read back: %v\n%q", err, line)
		}
		if d := diffRecords(*back, r); d != "" {
			t.Fatalf("record changed in a round trip:%s\n%q", d, line)
		}
	})
}

// FuzzOpenGzip cuts a log into two gzip members at any point, as rotated
// and concatenated .gz files are: Open must read the same bytes as the
// plain file, and a member cut short must be an error, never a silent end.
func FuzzOpenGzip(f *testing.F) {
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte, cut uint16, truncate uint8) {
		at := int(cut) % (len(data) + 1)
		var gz bytes.Buffer
		for _, part := range [][]byte{data[:at], data[at:]} {
			zw := gzip.NewWriter(&gz)
			zw.Write(part)
			zw.Close()
		}
		path := filepath.Join(dir, "fuzz.log.gz")
		full := gz.Bytes()
		if err := os.WriteFile(path, full, 0o600); err != nil {
			t.Fatal(err)
		}
		if got := readAllOpen(t, path); !bytes.Equal(got.data, data) || got.err != nil {
			t.Fatalf("two gzip members cut at %d: read %q (err %v), want %q", at, got.data, got.err, data)
		}
		// The same file cut short inside the second member's data.
		short := len(full) - 1 - int(truncate)%8
		if short <= 2 {
			return
		}
		if err := os.WriteFile(path, full[:short], 0o600); err != nil {
			t.Fatal(err)
		}
		if got := readAllOpen(t, path); got.err == nil {
			t.Fatalf("a gzip file cut at %d of %d bytes read without error", short, len(full))
		}
	})
}

type openResult struct {
	data []byte
	err  error
}

func readAllOpen(t *testing.T, path string) openResult {
	t.Helper()
	rc, err := Open(path)
	if err != nil {
		return openResult{err: err}
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	return openResult{data, err}
}
