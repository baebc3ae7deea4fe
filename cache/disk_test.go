package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

func newDisk(t testing.TB, dir string, maxBytes int64) *Disk {
	t.Helper()
	d, err := NewDisk(DiskOptions{Path: dir, MaxBytes: maxBytes, InlineBody: 100 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	<-d.Loaded()
	return d
}

// patterned is a body whose bytes depend on their offset, so a shifted or
// damaged byte shows.
func patterned(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func readContent(t testing.TB, e *Entry) ([]byte, error) {
	t.Helper()
	if e.Content == nil {
		return e.Body, nil
	}
	r, err := e.Content.Open(0)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// TestDiskRoundTripRestart stores small (inline) and large (Content)
// bodies, reads them back, and reads them again from a new Disk on the same
// directory, as after a restart.
func TestDiskRoundTripRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	d := newDisk(t, dir, 64<<20)
	sizes := []int{0, 1, 65536, 65537, 100 << 10, 3<<20 + 17}
	for _, n := range sizes {
		e := sampleEntry()
		e.Body = patterned(n)
		if err := d.Set(ctx, fmt.Sprintf("k%d", n), e, time.Hour); err != nil {
			t.Fatalf("set %d: %v", n, err)
		}
	}
	check := func(d *Disk, when string) {
		for _, n := range sizes {
			e, err := d.Get(ctx, fmt.Sprintf("k%d", n))
			if err != nil {
				t.Fatalf("%s: get %d: %v", when, n, err)
			}
			if (e.Content != nil) != (n > 100<<10) {
				t.Errorf("%s: size %d: Content %v", when, n, e.Content != nil)
			}
			body, err := readContent(t, e)
			if err != nil || !bytes.Equal(body, patterned(n)) || e.Header.Get("Content-Type") != "text/html" || e.Expires.IsZero() {
				t.Fatalf("%s: size %d: body equal %v, err %v", when, n, bytes.Equal(body, patterned(n)), err)
			}
		}
	}
	check(d, "first run")
	d.Close()
	d2 := newDisk(t, dir, 64<<20)
	check(d2, "after restart")
	if b, n := d2.Usage(); n != len(sizes) || b < int64(3<<20) {
		t.Fatalf("index after restart: %d entries, %d bytes", n, b)
	}
	if _, err := d2.Get(ctx, "absent"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	_ = d2.Delete(ctx, "k1")
	if _, err := d2.Get(ctx, "k1"); !errors.Is(err, ErrNotFound) {
		t.Fatal("deleted entry still there")
	}
}

// TestDiskDamage: a torn file, a flipped byte in a small body, in a large
// body, and in the metadata are each dropped and reported as a miss, never
// returned; a large body damaged while this process trusts it fails the
// reader at the damaged block instead of returning its bytes.
func TestDiskDamage(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	d := newDisk(t, dir, 64<<20)
	put := func(key string, n int) string {
		e := sampleEntry()
		e.Body = patterned(n)
		if err := d.Set(ctx, key, e, time.Hour); err != nil {
			t.Fatal(err)
		}
		return d.path(diskKeyID(key))
	}
	flip := func(p string, off int64) {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		st, _ := f.Stat()
		if off < 0 {
			off += st.Size()
		}
		b := []byte{0}
		_, _ = f.ReadAt(b, off)
		b[0] ^= 0x40
		_, _ = f.WriteAt(b, off)
	}
	cases := map[string]func(){}
	p := put("torn", 5000)
	cases["torn"] = func() { _ = os.Truncate(p, 3000) }
	p2 := put("small", 5000)
	cases["small"] = func() { flip(p2, -2000) }
	p3 := put("meta", 5000)
	cases["meta"] = func() { flip(p3, 20) }
	for key, damage := range cases {
		damage()
		if _, err := d.Get(ctx, key); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v", key, err)
		}
		if _, err := os.Stat(d.path(diskKeyID(key))); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: damaged file kept", key)
		}
	}
	// Large, trusted by this process: the reader stops at the bad block.
	p4 := put("large", 1<<20)
	flip(p4, 4096+700_000)
	e, err := d.Get(ctx, "large")
	if err != nil {
		t.Fatal(err)
	}
	body, err := readContent(t, e)
	if !errors.Is(err, ErrCorrupt) || len(body) > 700_000 {
		t.Fatalf("damaged large body: %d bytes read, err %v", len(body), err)
	}
	if !bytes.Equal(body, patterned(1 << 20)[:len(body)]) {
		t.Fatal("bytes before the damaged block differ")
	}
	if _, err := d.Get(ctx, "large"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("damaged large entry kept: %v", err)
	}
	// Large, after a restart: checked whole before it is handed out.
	p5 := put("large2", 1<<20)
	d.Close()
	flip(p5, -100_000)
	d2 := newDisk(t, dir, 64<<20)
	if _, err := d2.Get(ctx, "large2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("damaged large entry after restart: %v", err)
	}
}

// TestDiskBound fills the tier with ten times its size: its files stay
// within the bound, and recently read entries survive.
func TestDiskBound(t *testing.T) {
	const bound = 4 << 20
	d := newDisk(t, t.TempDir(), bound)
	ctx := context.Background()
	e := sampleEntry()
	e.Body = patterned(40 << 10)
	refused := 0
	for i := range 1000 {
		err := d.Set(ctx, fmt.Sprintf("k%d", i), e, time.Hour)
		if errors.Is(err, ErrNotAdmitted) {
			refused++
			err = d.Set(ctx, fmt.Sprintf("k%d", i), e, time.Hour) // asked for again: admitted
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Get(ctx, "k0"); err != nil {
			t.Fatalf("hot entry evicted at %d: %v", i, err)
		}
	}
	var files int64
	_ = filepath.Walk(d.objs, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			files += fi.Size()
		}
		return nil
	})
	used, n := d.Usage()
	if files > bound || used != files || n < 50 {
		t.Fatalf("files %d bytes, accounted %d in %d entries, bound %d", files, used, n, bound)
	}
	if refused < 900 {
		t.Fatalf("a full tier admitted %d of 1000 one-time keys", 1000-refused)
	}
	if err := d.Set(ctx, "k0", e, time.Hour); err != nil {
		t.Fatalf("rewriting a held entry in a full tier: %v", err)
	}
	big := sampleEntry()
	big.Body = make([]byte, bound/4+1)
	if err := d.Set(ctx, "big", big, time.Hour); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("object over the limit: %v", err)
	}
}

// TestDiskExpiry: an expired entry is a miss and its file goes.
func TestDiskExpiry(t *testing.T) {
	clk := &clock{t: t0}
	d, err := NewDisk(DiskOptions{Path: t.TempDir(), MaxBytes: 1 << 20, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	_ = d.Set(ctx, "k", sampleEntry(), time.Minute)
	if _, err := d.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * time.Minute)
	if _, err := d.Get(ctx, "k"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if _, n := d.Usage(); n != 0 {
		t.Fatalf("%d entries left", n)
	}
}

// TestDiskIndexMemory measures the index's memory per object.
func TestDiskIndexMemory(t *testing.T) {
	d := newDisk(t, t.TempDir(), 1<<40)
	const n = 200_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	d.mu.Lock()
	for i := range n {
		d.insertLocked(&diskItem{id: diskKeyID(fmt.Sprintf("https://www.example.com/images/%d/%s.jpg", i, bytes.Repeat([]byte("x"), 200))), size: 1})
	}
	d.mu.Unlock()
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("disk index: %.0f bytes per object (keys of 240 bytes)", per)
	if per > 200 {
		t.Fatalf("index costs %.0f bytes per object", per)
	}
	runtime.KeepAlive(d)
}

// TestDiskConcurrent rewrites, reads and deletes a few keys from several
// goroutines: every read is a whole body of one of the versions, or a miss.
func TestDiskConcurrent(t *testing.T) {
	d := newDisk(t, t.TempDir(), 64<<20)
	ctx := context.Background()
	bodies := [][]byte{patterned(5000), patterned(300 << 10)} // inline and Content
	done := make(chan struct{})
	errs := make(chan error, 100)
	for w := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 150 {
				key := fmt.Sprintf("k%d", i%3)
				switch (i + w) % 4 {
				case 0, 1:
					e := sampleEntry()
					e.Body = bodies[(i+w)%2]
					if err := d.Set(ctx, key, e, time.Hour); err != nil {
						errs <- err
					}
				case 2:
					_ = d.Delete(ctx, key)
				default:
					e, err := d.Get(ctx, key)
					if errors.Is(err, ErrNotFound) {
						continue
					}
					if err != nil {
						errs <- err
						continue
					}
					b, err := readContent(t, e)
					if errors.Is(err, ErrNotFound) {
						continue // replaced between Get and reading: reported, not mixed
					}
					if err != nil || (!bytes.Equal(b, bodies[0]) && !bytes.Equal(b, bodies[1])) {
						errs <- fmt.Errorf("read of %d bytes: %v", len(b), err)
					}
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
