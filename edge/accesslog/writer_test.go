package accesslog

import (
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestWriterRoundTrip writes the sample records through a gzip Writer across
// two hours and reads every file back, field by field.
func TestWriterRoundTrip(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 22, 9, 59, 0, 0, time.UTC)
	clock := newFakeClock(t0)
	w, err := NewWriter(WriterConfig{Dir: dir, Prefix: "E2EXAMPLE", Rotate: time.Hour, Gzip: true, Now: clock.Now, FlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	want := sampleRecords(time.Date(2026, 11, 22, 9, 59, 30, 0, time.UTC))
	for i := range want {
		if i == len(want)/2 {
			clock.Set(t0.Add(2 * time.Minute)) // 10:01: the second half goes to the 10h file
		}
		if err := w.Write(&want[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files := logFiles(t, dir)
	if len(files) != 2 || !strings.Contains(files[0], ".2026-11-22-09.") || !strings.Contains(files[1], ".2026-11-22-10.") {
		t.Fatalf("files %q, want one for 09h and one for 10h", files)
	}
	var got []Record
	for _, f := range files {
		got = append(got, readFile(t, f)...)
	}
	if len(got) != len(want) {
		t.Fatalf("%d records read back, want %d", len(got), len(want))
	}
	for i := range want {
		if d := diffRecords(got[i], want[i]); d != "" {
			t.Errorf("record %d:%s", i, d)
		}
	}
}

// TestWriterRotation: a file per period, named after the period, each with
// the header, nothing lost, gzip files valid, no plain or temporary files
// left behind.
func TestWriterRotation(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 22, 10, 0, 0, time.UTC)
	tests := []struct {
		name    string
		rotate  time.Duration
		gzip    bool
		steps   []time.Duration // clock offsets from t0; 10 records at each
		pattern string          // of every file name
		periods []string        // time part of the names, in order
	}{
		{"hourly gzip", time.Hour, true, []time.Duration{0, 30 * time.Minute, time.Hour, 3*time.Hour + 30*time.Minute},
			`^EDGE-NRT57\.\d{4}-\d\d-\d\d-\d\d\.[0-9a-f]{8}\.gz$`, []string{"2026-11-22-22", "2026-11-22-23", "2026-11-23-01"}},
		{"5 minutes plain", 5 * time.Minute, false, []time.Duration{0, 4 * time.Minute, 5 * time.Minute, 61 * time.Minute},
			`^EDGE-NRT57\.\d{4}-\d\d-\d\d-\d\d-\d\d\.[0-9a-f]{8}\.log$`, []string{"2026-11-22-22-10", "2026-11-22-22-15", "2026-11-22-23-10"}},
		{"daily gzip", 24 * time.Hour, true, []time.Duration{0, time.Hour, 3 * time.Hour},
			`^EDGE-NRT57\.\d{4}-\d\d-\d\d-\d\d\.[0-9a-f]{8}\.gz$`, []string{"2026-11-22-00", "2026-11-23-00"}},
		{"never", 0, true, []time.Duration{0, 5 * time.Hour, 50 * time.Hour},
			`^EDGE-NRT57\.\d{4}-\d\d-\d\d-\d\d\.[0-9a-f]{8}\.gz$`, []string{"2026-11-22-22"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			clock := newFakeClock(t0)
			w, err := NewWriter(WriterConfig{Dir: dir, Prefix: "EDGE-NRT57", Rotate: tt.rotate, Gzip: tt.gzip, Now: clock.Now, FlushInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, off := range tt.steps {
				clock.Set(t0.Add(off))
				for range 10 {
					r := typical(t0.Add(off))
					r.URIStem = "/r/" + strconv.Itoa(n)
					n++
					if err := w.Write(&r); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			files := logFiles(t, dir)
			if len(files) != len(tt.periods) {
				t.Fatalf("files %q, want %d", files, len(tt.periods))
			}
			seen := map[string]bool{}
			for i, f := range files {
				base := filepath.Base(f)
				if !regexp.MustCompile(tt.pattern).MatchString(base) || !strings.Contains(base, "."+tt.periods[i]+".") {
					t.Errorf("file %s: want pattern %s, period %s", base, tt.pattern, tt.periods[i])
				}
				if tt.gzip {
					checkGzip(t, f)
				}
				content := contentOf(t, f)
				if !strings.HasPrefix(content, Header()) {
					t.Errorf("%s does not start with the header: %.80q", base, content)
				}
				for _, rec := range readFile(t, f) {
					if seen[rec.URIStem] {
						t.Errorf("%s written twice", rec.URIStem)
					}
					seen[rec.URIStem] = true
				}
			}
			if len(seen) != n {
				t.Fatalf("%d distinct records read back, want %d", len(seen), n)
			}
		})
	}
}

// checkGzip reads a gzip file to its end, which verifies its CRC and length.
func checkGzip(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	zr.Multistream(false)
	if _, err := io.Copy(io.Discard, zr); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if rest, _ := io.ReadAll(f); len(rest) != 0 {
		t.Fatalf("%s: %d bytes after the gzip stream", path, len(rest))
	}
}

// TestWriterConcurrent: many goroutines write while the clock crosses
// periods; after Close every line is in some file, each file whole.
func TestWriterConcurrent(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 22, 22, 0, 0, 0, time.UTC)
	clock := newFakeClock(t0)
	w, err := NewWriter(WriterConfig{Dir: dir, Prefix: "conc", Rotate: time.Minute, Gzip: true, Now: clock.Now,
		FlushInterval: time.Millisecond, BufferSize: 512})
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 250
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				if g == 0 && i%50 == 0 {
					clock.Set(t0.Add(time.Duration(i/50) * time.Minute))
				}
				r := typical(t0)
				r.URIStem = "/g" + strconv.Itoa(g) + "/" + strconv.Itoa(i)
				if err := w.Write(&r); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range logFiles(t, dir) {
		if !strings.HasSuffix(f, ".gz") {
			t.Errorf("left behind: %s", f)
			continue
		}
		checkGzip(t, f)
		if !strings.HasPrefix(contentOf(t, f), Header()) {
			t.Errorf("%s: no header", f)
		}
		for _, rec := range readFile(t, f) {
			if seen[rec.URIStem] {
				t.Errorf("%s written twice", rec.URIStem)
			}
			seen[rec.URIStem] = true
		}
	}
	if len(seen) != writers*each {
		t.Fatalf("%d records after Close, want %d", len(seen), writers*each)
	}
}

func TestWriterFlushAndClose(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock(time.Date(2026, 11, 22, 22, 0, 0, 0, time.UTC))
	w, err := NewWriter(WriterConfig{Dir: filepath.Join(dir, "sub", "dir"), Rotate: time.Hour, Now: clock.Now, FlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if files := logFiles(t, filepath.Join(dir, "sub", "dir")); len(files) != 0 {
		t.Fatalf("files before the first Write: %q", files)
	}
	r := typical(clock.Now())
	if err := w.Write(&r); err != nil {
		t.Fatal(err)
	}
	files := logFiles(t, filepath.Join(dir, "sub", "dir"))
	if len(files) != 1 || !regexp.MustCompile(`/2026-11-22-22\.[0-9a-f]{8}\.log$`).MatchString(files[0]) {
		t.Fatalf("files %q, want one named without prefix", files)
	}
	if got := contentOf(t, files[0]); got != "" {
		t.Fatalf("buffered line reached the file before Flush: %q", got)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, want := contentOf(t, files[0]), Header()+string(AppendRecord(nil, &r)); got != want {
		t.Fatalf("after Flush: %q, want %q", got, want)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(&r); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close: %v, want ErrClosed", err)
	}
	if err := w.Flush(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Flush after Close: %v, want ErrClosed", err)
	}
	if err := w.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v, want ErrClosed", err)
	}
	if got := readFile(t, files[0]); len(got) != 1 {
		t.Fatalf("%d records after Close, want 1", len(got))
	}
}

// TestWriterTickFinishesIdleFile: the flush ticker finishes (and
// compresses) a file whose period ended while no request came.
func TestWriterTickFinishesIdleFile(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 22, 22, 59, 0, 0, time.UTC)
	clock := newFakeClock(t0)
	w, err := NewWriter(WriterConfig{Dir: dir, Prefix: "idle", Rotate: time.Hour, Gzip: true, Now: clock.Now, FlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r := typical(t0)
	if err := w.Write(&r); err != nil {
		t.Fatal(err)
	}
	w.tick() // same period: flush only
	w.bg.Wait()
	files := logFiles(t, dir)
	if len(files) != 1 || !strings.HasSuffix(files[0], ".log") || contentOf(t, files[0]) != Header()+string(AppendRecord(nil, &r)) {
		t.Fatalf("after a tick in the period: %q", files)
	}
	clock.Set(t0.Add(2 * time.Minute))
	w.tick() // period over: finish and compress
	w.bg.Wait()
	files = logFiles(t, dir)
	if len(files) != 1 || !strings.HasSuffix(files[0], ".gz") {
		t.Fatalf("after the period: %q, want one .gz", files)
	}
	checkGzip(t, files[0])
	if got := readFile(t, files[0]); len(got) != 1 {
		t.Fatalf("%d records, want 1", len(got))
	}
}

// TestWriterTickerStops: Close waits for the flush goroutine to return.
func TestWriterTickerStops(t *testing.T) {
	w, err := NewWriter(WriterConfig{Dir: t.TempDir(), FlushInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r := typical(time.Now())
	if err := w.Write(&r); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.ticker:
	default:
		t.Fatal("flush goroutine still running after Close")
	}
}

func TestNewWriterConfig(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		cfg     WriterConfig
		problem string // "" = valid
	}{
		{"no dir", WriterConfig{}, "no directory"},
		{"prefix with slash", WriterConfig{Dir: dir, Prefix: "a/b"}, `prefix "a/b"`},
		{"prefix with newline", WriterConfig{Dir: dir, Prefix: "a\nb"}, "prefix"},
		{"negative rotate", WriterConfig{Dir: dir, Rotate: -time.Hour}, "must not be negative"},
		{"sub-minute rotate", WriterConfig{Dir: dir, Rotate: 30 * time.Second}, "whole number of minutes"},
		{"odd seconds", WriterConfig{Dir: dir, Rotate: 90 * time.Second}, "whole number of minutes"},
		{"uneven rotate", WriterConfig{Dir: dir, Rotate: 7 * time.Minute}, "divide a day"},
		{"dir is a file", WriterConfig{Dir: filepath.Join("testdata", "README.md", "x")}, "access log testdata"},
		{"never", WriterConfig{Dir: dir}, ""},
		{"5m", WriterConfig{Dir: dir, Rotate: 5 * time.Minute}, ""},
		{"1h", WriterConfig{Dir: dir, Rotate: time.Hour}, ""},
		{"2 days", WriterConfig{Dir: dir, Rotate: 48 * time.Hour}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := NewWriter(tt.cfg)
			if tt.problem == "" {
				if err != nil {
					t.Fatal(err)
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				w.Close()
				t.Fatalf("accepted, want error with %q", tt.problem)
			}
			if !strings.Contains(err.Error(), tt.problem) {
				t.Fatalf("error %q, want %q", err, tt.problem)
			}
		})
	}
}

// TestWriterReportsBackgroundErrors: a compression that fails (the plain
// file vanished) reaches OnError, or Close when OnError is nil.
func TestWriterReportsBackgroundErrors(t *testing.T) {
	for _, withHook := range []bool{true, false} {
		dir := t.TempDir()
		var mu sync.Mutex
		var hooked []error
		cfg := WriterConfig{Dir: dir, Gzip: true, FlushInterval: -1}
		if withHook {
			cfg.OnError = func(err error) { mu.Lock(); hooked = append(hooked, err); mu.Unlock() }
		}
		w, err := NewWriter(cfg)
		if err != nil {
			t.Fatal(err)
		}
		r := typical(time.Now())
		if err := w.Write(&r); err != nil {
			t.Fatal(err)
		}
		w.mu.Lock()
		path := w.cur.path
		w.mu.Unlock()
		// Replace the file with a directory: flush still works on the open
		// descriptor, but compression cannot read a directory as a file.
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(path, 0o700); err != nil {
			t.Fatal(err)
		}
		closeErr := w.Close()
		mu.Lock()
		if withHook {
			if closeErr != nil || len(hooked) != 1 || !strings.Contains(hooked[0].Error(), "access log "+path+": compress") {
				t.Errorf("with OnError: Close %v, hooked %v", closeErr, hooked)
			}
		} else if closeErr == nil || !strings.Contains(closeErr.Error(), "access log "+path+": compress") {
			t.Errorf("without OnError: Close %v, want the compression error", closeErr)
		}
		mu.Unlock()
		if _, err := os.Stat(strings.TrimSuffix(path, ".log") + ".gz.tmp"); !os.IsNotExist(err) {
			t.Errorf("temporary file left: %v", err)
		}
	}
}
