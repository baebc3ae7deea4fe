package accesslog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("origin access log is closed")

// WriterConfig configures a Writer.
type WriterConfig struct {
	// Dir receives the files; it is created if missing.
	Dir string
	// Prefix starts every file name; "edgegate-origin" when empty.
	Prefix string
	// Rotate is the period of one file: 0 never rotates; otherwise a whole
	// number of minutes dividing a day (5m, 1h, 24h), so that files start
	// on round UTC times.
	Rotate time.Duration
}

// Writer appends records to files named PREFIX_YYYYMMDDTHHMMZ.log after the
// UTC start of their period (PREFIX.log without rotation). Each line is one
// write(2) on a file opened with O_APPEND, unbuffered: a line is on disk
// (in the page cache) when Write returns, so no line is lost when the
// process stops, and a restart within a period appends to the same file.
// It is safe for concurrent use.
type Writer struct {
	cfg WriterConfig

	mu     sync.Mutex
	f      *os.File
	period time.Time
	buf    []byte
	closed bool
}

// NewWriter checks cfg and creates cfg.Dir. No file is created before the
// first Write.
func NewWriter(cfg WriterConfig) (*Writer, error) {
	if cfg.Dir == "" {
		return nil, errors.New("origin access log: no directory")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "edgegate-origin"
	}
	if strings.ContainsAny(cfg.Prefix, `/\ `) {
		return nil, fmt.Errorf("origin access log: prefix %q must be a plain file name part", cfg.Prefix)
	}
	if err := CheckRotate(cfg.Rotate); err != nil {
		return nil, fmt.Errorf("origin access log: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("origin access log %s: %w", cfg.Dir, err)
	}
	return &Writer{cfg: cfg}, nil
}

// CheckRotate reports whether r is a usable rotation period.
func CheckRotate(r time.Duration) error {
	const day = 24 * time.Hour
	switch {
	case r < 0:
		return fmt.Errorf("rotate %v must not be negative", r)
	case r > 0 && (r < time.Minute || r%time.Minute != 0):
		return fmt.Errorf("rotate %v must be a whole number of minutes", r)
	case r > 0 && day%r != 0 && r%day != 0:
		return fmt.Errorf("rotate %v must divide a day evenly (5m, 15m, 1h, 24h)", r)
	}
	return nil
}

// FileName returns the name of the file that holds lines written at t.
func (w *Writer) FileName(t time.Time) string {
	if w.cfg.Rotate == 0 {
		return w.cfg.Prefix + ".log"
	}
	return w.cfg.Prefix + "_" + t.UTC().Truncate(w.cfg.Rotate).Format("20060102T1504Z") + ".log"
}

// Write appends r's line to the file of the current period.
func (w *Writer) Write(r *Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	now := time.Now().UTC()
	period := time.Time{}
	if w.cfg.Rotate > 0 {
		period = now.Truncate(w.cfg.Rotate)
	}
	if w.f == nil || !period.Equal(w.period) {
		if w.f != nil {
			old := w.f
			w.f = nil
			if err := old.Close(); err != nil {
				return fmt.Errorf("origin access log: close %s: %w", old.Name(), err)
			}
		}
		path := filepath.Join(w.cfg.Dir, w.FileName(now))
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return fmt.Errorf("origin access log: %w", err)
		}
		w.f, w.period = f, period
	}
	w.buf = AppendLine(w.buf[:0], r)
	if _, err := w.f.Write(w.buf); err != nil {
		return fmt.Errorf("origin access log %s: %w", w.f.Name(), err)
	}
	return nil
}

// Close closes the current file; later Writes fail with ErrClosed.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return fmt.Errorf("origin access log: %w", err)
	}
	return nil
}

// Reopen closes the current file so that the next Write opens the file of
// its period again by name: after logrotate moved it away (SIGUSR1).
func (w *Writer) Reopen() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return fmt.Errorf("origin access log: %w", err)
	}
	return nil
}
