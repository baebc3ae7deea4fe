// Package syncbuf is a bytes.Buffer safe for concurrent use: tests hand it
// to a logger written from many goroutines and read it back.
package syncbuf

import (
	"bytes"
	"sync"
)

// Buffer collects writes from several goroutines.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
