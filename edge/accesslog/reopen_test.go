package accesslog

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Reopen (SIGUSR1, after logrotate moved the files away) finishes the
// current file with every line in it, and the next line starts a new file
// with its own header.
func TestWriterReopen(t *testing.T) {
	dir := t.TempDir()
	w, err := NewWriter(WriterConfig{Dir: dir, Prefix: "E2", Rotate: time.Hour, FlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	recs := sampleRecords(time.Now().UTC())
	if err := w.Write(&recs[0]); err != nil {
		t.Fatal(err)
	}
	if err := w.Reopen(); err != nil {
		t.Fatal(err)
	}
	first := logFiles(t, dir)
	if len(first) != 1 || len(readFile(t, first[0])) != 1 {
		t.Fatalf("after Reopen: files %q", first)
	}
	moved := filepath.Join(t.TempDir(), "rotated.log")
	if err := os.Rename(first[0], moved); err != nil { // what logrotate does
		t.Fatal(err)
	}
	if err := w.Write(&recs[1]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	second := logFiles(t, dir)
	if len(second) != 1 || len(readFile(t, second[0])) != 1 {
		t.Fatalf("after the next line: files %q", second)
	}
	if len(readFile(t, moved)) != 1 {
		t.Error("the moved file lost its line")
	}
	if err := w.Reopen(); err != ErrClosed {
		t.Errorf("Reopen after Close: %v", err)
	}
}
