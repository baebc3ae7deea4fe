package accesslog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Reopen (SIGUSR1) lets logrotate move the file away: the next line opens
// the file of its period again by name, and the moved file keeps its lines.
func TestWriterReopen(t *testing.T) {
	dir := t.TempDir()
	w, err := NewWriter(WriterConfig{Dir: dir, Rotate: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	rec := Record{Type: TypeHTTP, Time: time.Now().UTC(), Client: "127.0.0.1:1", ELBStatus: 200}
	if err := w.Write(&rec); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, w.FileName(time.Now()))
	moved := name + ".1"
	if err := os.Rename(name, moved); err != nil {
		t.Fatal(err)
	}
	if err := w.Reopen(); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(&rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{moved, name} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(data), "\n"); n != 1 {
			t.Errorf("%s: %d lines, want 1", f, n)
		}
	}
}
