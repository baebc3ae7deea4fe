package accesslog

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
)

// MaxLineBytes bounds one line; longer lines are an error rather than an
// unbounded allocation.
const MaxLineBytes = 1 << 20

// Scanner reads records from a log file, plain or gzip-compressed (detected
// by its magic bytes). Empty lines and lines starting with '#' are skipped.
type Scanner struct {
	src  *bufio.Reader
	sc   *bufio.Scanner
	line int
	rec  Record
	err  error
	init bool
}

// NewScanner reads records from r.
func NewScanner(r io.Reader) *Scanner {
	return &Scanner{src: bufio.NewReader(r)}
}

// Scan advances to the next record; false at the end or on an error.
func (s *Scanner) Scan() bool {
	if s.err != nil {
		return false
	}
	if !s.init {
		s.init = true
		var r io.Reader = s.src
		if magic, _ := s.src.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
			gz, err := gzip.NewReader(s.src)
			if err != nil {
				s.err = fmt.Errorf("origin access log: gzip: %w", err)
				return false
			}
			r = gz
		}
		s.sc = bufio.NewScanner(r)
		s.sc.Buffer(make([]byte, 0, 64<<10), MaxLineBytes)
	}
	for s.sc.Scan() {
		s.line++
		b := s.sc.Bytes()
		if len(b) == 0 || b[0] == '#' {
			continue
		}
		rec, err := ParseLine(string(b))
		if err != nil {
			s.err = fmt.Errorf("line %d: %w", s.line, err)
			return false
		}
		s.rec = rec
		return true
	}
	if err := s.sc.Err(); err != nil {
		s.err = fmt.Errorf("line %d: %w", s.line+1, err)
	}
	return false
}

// Record returns the record read by the last successful Scan.
func (s *Scanner) Record() Record { return s.rec }

// Err returns the error that stopped Scan, nil at a clean end.
func (s *Scanner) Err() error { return s.err }
