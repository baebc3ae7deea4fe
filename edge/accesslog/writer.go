package accesslog

import (
	"bufio"
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ErrClosed is returned by Write, Flush and Close after Close.
var ErrClosed = errors.New("access log writer is closed")

// WriterConfig configures a Writer.
type WriterConfig struct {
	// Dir receives the files; it is created if missing.
	Dir string
	// Prefix starts every file name, e.g. the distribution or the edge
	// location, as CloudFront starts them with the distribution ID.
	Prefix string
	// Rotate is the period of one file: 0 never rotates, otherwise a whole
	// number of minutes that divides a day (or a multiple of a day), so that
	// files start on round UTC times like CloudFront's hourly files.
	Rotate time.Duration
	// Gzip compresses each finished file, as CloudFront delivers them.
	Gzip bool
	// Now gives the time that decides rotation; nil means time.Now. Tests
	// set it to move through periods without sleeping.
	Now func() time.Time
	// FlushInterval is how often buffered lines are written to the file and
	// an idle file whose period has ended is finished: 0 means one second, a
	// negative value disables the background goroutine (Flush, rotation and
	// Close still write everything).
	FlushInterval time.Duration
	// BufferSize is the write buffer of the current file; 0 means 64 KiB.
	BufferSize int
	// OnError receives errors of background work (the flush ticker, gzip
	// compression) that has no caller to return them to. It must not call
	// the Writer. When nil, they are kept and returned by Close.
	OnError func(error)
}

// Writer writes records to rotating log files. It is safe for concurrent use.
//
// Each file is named <Prefix>.YYYY-MM-DD-HH.<unique>.log after the UTC start
// of its period (with -MM minutes when Rotate is under an hour) and starts
// with the two header lines; it is created on the first record of its period,
// so an idle edge writes no empty files, as CloudFront does. The current file
// is plain text behind a buffer, flushed every FlushInterval and fsynced when
// it is finished. With Gzip, a finished file is compressed to a temporary
// name, renamed to <...>.gz and only then is the plain file removed, so a
// crash leaves either a complete .gz or a plain file (readable by Open and
// Reader), never a half-written .gz.
type Writer struct {
	cfg    WriterConfig
	now    func() time.Time
	bufs   sync.Pool // *[]byte line buffers, so Write encodes outside the lock
	stop   chan struct{}
	ticker chan struct{} // closed when the flush goroutine has returned; nil without one
	bg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	cur    *logFile // nil until the first record of a period

	errMu sync.Mutex
	errs  []error // background errors kept for Close when OnError is nil
}

// logFile is the file being written.
type logFile struct {
	path   string
	f      *os.File
	bw     *bufio.Writer
	period time.Time
}

// NewWriter checks cfg, creates cfg.Dir and starts the flush goroutine.
// No file is created before the first Write.
func NewWriter(cfg WriterConfig) (*Writer, error) {
	if cfg.Dir == "" {
		return nil, errors.New("access log writer: no directory")
	}
	if strings.ContainsAny(cfg.Prefix, `/\`) || strings.ContainsFunc(cfg.Prefix, func(c rune) bool { return c < ' ' }) {
		return nil, fmt.Errorf("access log writer: prefix %q: must be a plain file name part", cfg.Prefix)
	}
	const day = 24 * time.Hour
	switch r := cfg.Rotate; {
	case r < 0:
		return nil, fmt.Errorf("access log writer: rotate %v: must not be negative", r)
	case r > 0 && (r < time.Minute || r%time.Minute != 0):
		return nil, fmt.Errorf("access log writer: rotate %v: must be a whole number of minutes", r)
	case r > 0 && day%r != 0 && r%day != 0:
		return nil, fmt.Errorf("access log writer: rotate %v: must divide a day evenly (e.g. 5m, 15m, 1h, 24h)", r)
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("access log %s: %w", cfg.Dir, err)
	}
	if cfg.BufferSize <= 0 {
		cfg.BufferSize = 64 << 10
	}
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = time.Second
	}
	w := &Writer{cfg: cfg, now: cfg.Now, stop: make(chan struct{})}
	if w.now == nil {
		w.now = time.Now
	}
	w.bufs.New = func() any { b := make([]byte, 0, 1024); return &b }
	if cfg.FlushInterval > 0 {
		w.ticker = make(chan struct{})
		go w.flushLoop(cfg.FlushInterval)
	}
	return w, nil
}

// Write appends one record to the current file, first rotating it if the
// current time (cfg.Now) has left the file's period. The line reaches the
// file within FlushInterval, or at Flush or Close.
func (w *Writer) Write(r *Record) error {
	bp := w.bufs.Get().(*[]byte)
	line := AppendRecord((*bp)[:0], r)
	w.mu.Lock()
	err := w.writeLocked(line)
	w.mu.Unlock()
	if cap(line) <= 64<<10 { // don't let one huge line pin memory in the pool
		*bp = line
		w.bufs.Put(bp)
	}
	return err
}

func (w *Writer) writeLocked(line []byte) error {
	if w.closed {
		return ErrClosed
	}
	now := w.now()
	if w.cur != nil && w.cfg.Rotate > 0 && !w.periodOf(now).Equal(w.cur.period) {
		if err := w.finishLocked(); err != nil {
			w.report(err) // the old file's trouble must not stop new lines
		}
	}
	if w.cur == nil {
		if err := w.openLocked(now); err != nil {
			return err
		}
	}
	if _, err := w.cur.bw.Write(line); err != nil {
		// bufio errors are sticky: finish this file so the next Write
		// starts a fresh one instead of failing forever.
		path := w.cur.path
		if ferr := w.finishLocked(); ferr != nil {
			w.report(ferr)
		}
		return fmt.Errorf("access log %s: %w", path, err)
	}
	return nil
}

// Flush writes buffered lines to the current file (without fsync).
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	if w.cur == nil {
		return nil
	}
	if err := w.cur.bw.Flush(); err != nil {
		return fmt.Errorf("access log %s: %w", w.cur.path, err)
	}
	return nil
}

// Close writes every buffered line, fsyncs and closes the current file,
// compresses it when Gzip is set, waits for compressions still running and
// stops the flush goroutine. It returns every error met, including
// background ones not given to OnError. Later calls return ErrClosed.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	w.closed = true
	close(w.stop)
	var err error
	if w.cur != nil {
		err = w.finishLocked()
	}
	w.mu.Unlock()
	if w.ticker != nil {
		<-w.ticker
	}
	w.bg.Wait()
	w.errMu.Lock()
	defer w.errMu.Unlock()
	return errors.Join(append([]error{err}, w.errs...)...)
}

// flushLoop flushes the current file every interval until Close.
func (w *Writer) flushLoop(interval time.Duration) {
	defer close(w.ticker)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			w.tick()
		}
	}
}

// tick flushes the current file, or finishes it if its period is over, so
// that a quiet hour's file is complete (and compressed) soon after the hour
// and not only at the next request.
func (w *Writer) tick() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.cur == nil {
		return
	}
	if w.cfg.Rotate > 0 && !w.periodOf(w.now()).Equal(w.cur.period) {
		if err := w.finishLocked(); err != nil {
			w.report(err)
		}
		return
	}
	if err := w.cur.bw.Flush(); err != nil {
		path := w.cur.path
		if ferr := w.finishLocked(); ferr != nil {
			w.report(ferr)
		}
		w.report(fmt.Errorf("access log %s: %w", path, err))
	}
}

// periodOf returns the UTC start of the rotation period holding t. Truncate
// counts from year 1, midnight UTC, so periods that divide a day start on
// round UTC times.
func (w *Writer) periodOf(t time.Time) time.Time {
	t = t.UTC()
	if w.cfg.Rotate <= 0 {
		return t.Truncate(time.Minute)
	}
	return t.Truncate(w.cfg.Rotate)
}

// openLocked creates the file for the period holding now and writes the
// header. A random suffix keeps names unique across restarts and edges, like
// CloudFront's.
func (w *Writer) openLocked(now time.Time) error {
	period := w.periodOf(now)
	layout := "2006-01-02-15"
	if w.cfg.Rotate > 0 && w.cfg.Rotate < time.Hour {
		layout = "2006-01-02-15-04"
	}
	var lastErr error
	for range 3 {
		var id [4]byte
		_, _ = rand.Read(id[:]) // crypto/rand.Read never fails
		name := period.Format(layout) + "." + hex.EncodeToString(id[:]) + ".log"
		if w.cfg.Prefix != "" {
			name = w.cfg.Prefix + "." + name
		}
		path := filepath.Join(w.cfg.Dir, name)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
		if errors.Is(err, os.ErrExist) {
			lastErr = err
			continue
		}
		if err != nil {
			return fmt.Errorf("access log %s: %w", path, err)
		}
		lf := &logFile{path: path, f: f, bw: bufio.NewWriterSize(f, w.cfg.BufferSize), period: period}
		if _, err := lf.bw.WriteString(header); err != nil {
			f.Close()
			return fmt.Errorf("access log %s: %w", path, err)
		}
		w.cur = lf
		return nil
	}
	return fmt.Errorf("access log %s: no unique file name: %w", w.cfg.Dir, lastErr)
}

// finishLocked flushes, fsyncs and closes the current file and, with Gzip,
// starts its compression. The file is given up even on error, so the next
// Write starts a fresh one.
func (w *Writer) finishLocked() error {
	lf := w.cur
	w.cur = nil
	err := errors.Join(lf.bw.Flush(), lf.f.Sync(), lf.f.Close())
	if err != nil {
		err = fmt.Errorf("access log %s: %w", lf.path, err)
	}
	if w.cfg.Gzip {
		w.bg.Add(1)
		go func() {
			defer w.bg.Done()
			if cerr := compress(lf.path); cerr != nil {
				w.report(cerr)
			}
		}()
	} else {
		syncDir(filepath.Dir(lf.path))
	}
	return err
}

// report hands a background error to OnError, or keeps it for Close.
func (w *Writer) report(err error) {
	if w.cfg.OnError != nil {
		w.cfg.OnError(err)
		return
	}
	w.errMu.Lock()
	w.errs = append(w.errs, err)
	w.errMu.Unlock()
}

// compress turns path (x.log) into x.gz: written to x.gz.tmp, fsynced,
// renamed, and only then is x.log removed.
func compress(path string) (err error) {
	gzPath := strings.TrimSuffix(path, ".log") + ".gz"
	tmp := gzPath + ".tmp"
	defer func() {
		if err != nil {
			os.Remove(tmp)
			err = fmt.Errorf("access log %s: compress: %w", path, err)
		}
	}()
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(out)
	zw.Name = filepath.Base(path)
	_, err = io.Copy(zw, in)
	err = errors.Join(err, zw.Close(), out.Sync(), out.Close())
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, gzPath); err != nil {
		return err
	}
	syncDir(filepath.Dir(path))
	return os.Remove(path)
}

// syncDir fsyncs a directory so that created and renamed names survive a
// crash; it is best effort (not every platform can sync a directory).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// Reopen finishes the current file (flushed, fsynced, closed and, with
// Gzip, compressed) so that the next Write starts a new one: what SIGUSR1
// asks for after logrotate has moved files away. Nothing buffered is lost.
func (w *Writer) Reopen() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	if w.cur == nil {
		return nil
	}
	return w.finishLocked()
}
