package cache

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func newMemory(t testing.TB, maxBytes int64) *Memory {
	t.Helper()
	m, err := NewMemory(MemoryOptions{MaxBytes: maxBytes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func bodyEntry(n int) *Entry {
	e := sampleEntry()
	e.Body = make([]byte, n)
	return e
}

// TestMemoryByteBound fills the tier with a working set ten times its bound
// and checks its own byte accounting stays within the bound.
func TestMemoryByteBound(t *testing.T) {
	const bound = 1 << 20
	m := newMemory(t, bound)
	ctx := context.Background()
	const objects = 10 * bound / (4 << 10) // 4 KiB bodies, 10x the bound
	var maxSeen uint64
	for i := range objects {
		if err := m.Set(ctx, fmt.Sprintf("k%d", i), bodyEntry(4<<10), time.Hour); err != nil {
			t.Fatal(err)
		}
		if i%256 == 0 {
			m.CleanUp()
			maxSeen = max(maxSeen, m.WeightedSize())
		}
	}
	m.CleanUp()
	if got := m.WeightedSize(); got > bound || maxSeen > bound {
		t.Fatalf("retained %d bytes (peak %d) over the %d bound", got, maxSeen, bound)
	}
	if m.WeightedSize() < bound/2 {
		t.Fatalf("retained only %d bytes: the tier is not being used", m.WeightedSize())
	}
	if err := m.Set(ctx, "huge", bodyEntry(bound), time.Hour); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("object over the per-object limit: %v", err)
	}
}

func TestMemoryGetSetDeleteExpiry(t *testing.T) {
	m := newMemory(t, 1<<20)
	ctx := context.Background()
	if _, err := m.Get(ctx, "a"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	e := sampleEntry()
	if err := m.Set(ctx, "a", e, time.Hour); err != nil {
		t.Fatal(err)
	}
	got, err := m.Get(ctx, "a")
	if err != nil || string(got.Body) != string(e.Body) || got.Expires.IsZero() || !e.Expires.Equal(sampleEntry().Expires) {
		t.Fatalf("get: %v %+v", err, got)
	}
	if err := m.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(ctx, "a"); !errors.Is(err, ErrNotFound) {
		t.Fatal("deleted entry still there")
	}
	// A short TTL is kept for that long, then dropped. The entry is read
	// back before its TTL can have passed (a run slowed past it says so
	// rather than blaming the tier).
	const short = time.Second
	set := time.Now()
	if err := m.Set(ctx, "b", e, short); err != nil {
		t.Fatal(err)
	}
	_, err = m.Get(ctx, "b")
	if err != nil && time.Since(set) < short {
		t.Fatalf("entry with a %v TTL was not kept: %v", short, err)
	}
	waitFor(t, "entry with a short TTL expires", func() bool {
		_, err := m.Get(ctx, "b")
		return errors.Is(err, ErrNotFound)
	})
	if err := m.Set(ctx, "c", e, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(ctx, "c"); !errors.Is(err, ErrNotFound) {
		t.Fatal("ttl 0 stored")
	}
	for k, path := range map[string]string{"d1": "/img/a", "d2": "/css/a"} {
		if err := m.Set(ctx, k, &Entry{Status: 200, Path: path}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if n := m.DeleteFunc(func(_ string, e *Entry) bool { return e.Path == "/img/a" }); n != 1 {
		t.Fatalf("DeleteFunc removed %d", n)
	}
	if _, err := m.Get(ctx, "d2"); err != nil {
		t.Fatal("DeleteFunc removed too much")
	}
}
