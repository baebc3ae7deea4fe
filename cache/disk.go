package cache

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// DiskOptions configures the disk tier.
type DiskOptions struct {
	// Path is the directory that holds the tier (created if missing).
	Path string
	// MaxBytes bounds the bytes of the files the tier keeps.
	MaxBytes int64
	// MaxObjectSize is the largest body kept; default MaxBytes/4.
	MaxObjectSize int64
	// InlineBody is the largest body Get reads into memory (and checks whole)
	// instead of handing it out as Content; default 1 MiB.
	InlineBody int64
	// Logger receives damaged files found and dropped.
	Logger zerolog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Disk is the disk tier: one file per entry under Path, named by a hash of
// its key, and an in-memory index used only for the byte bound and eviction
// (Get opens the file by name, so the tier serves at once after a restart
// while the index is rebuilt in the background).
//
// A file is written to Path/tmp, fsynced and renamed into place, so an entry
// is visible only when whole, and a crash leaves the old version or none.
// The file holds the key and the entry's metadata (with a CRC-32C), the
// body, and a trailer of one CRC-32C per 64 KiB block of body plus the body
// length (with its own CRC). A file whose lengths disagree (torn), whose
// metadata or trailer fail their checksum, or whose body fails a block
// checksum is deleted and reported as a miss, so it is fetched again; a
// large body is checked block by block as it is read, and a block that
// fails is never returned (the reader gets ErrCorrupt instead). After a
// restart a large entry is checked whole on its first use.
//
// Eviction is least recently used by bytes, behind an admission filter: once
// the tier is 90% full a key is written only on its second request in a
// while, so a scan of one-hit wonders cannot flush the working set (as
// TinyLFU's doorkeeper; the memory tier in front uses W-TinyLFU itself). The index costs about 120 bytes per object
// (a 16-byte key hash, size, expiry and list links), whatever the key length.
type Disk struct {
	o    DiskOptions
	objs string
	tmp  string

	mu     sync.Mutex
	index  map[diskID]*diskItem
	head   diskItem // sentinel of the LRU list: head.next is the newest
	bytes  int64
	loaded chan struct{}
	closed chan struct{}
	// seen counts recent writes per key, for admission.
	seen freqSketch
}

type diskID [16]byte

type diskItem struct {
	id         diskID
	size       int64 // file bytes
	expires    int64 // unix nanoseconds
	verified   bool  // written or checked whole by this process
	prev, next *diskItem
}

const (
	diskMagic      = "EGD1"
	diskTailMagic  = "EGDE"
	diskBlock      = 64 << 10
	diskTailFixed  = 8 + 4 + 4 + 4 // body length, block size, tail CRC, magic
	diskMaxMetaLen = 1 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// NewDisk opens (or creates) the disk tier at o.Path. Entries left by a
// previous run are served at once; the index that bounds the tier's size is
// rebuilt in the background (Loaded reports when that is done). Close stops
// it.
func NewDisk(o DiskOptions) (*Disk, error) {
	if o.Path == "" {
		return nil, errors.New("disk cache: path is empty")
	}
	if o.MaxBytes <= 0 {
		return nil, fmt.Errorf("disk cache %s: size must be positive, got %d", o.Path, o.MaxBytes)
	}
	if o.MaxObjectSize <= 0 {
		o.MaxObjectSize = max(o.MaxBytes/4, 1)
	}
	if o.InlineBody <= 0 {
		o.InlineBody = 1 << 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	d := &Disk{o: o, objs: filepath.Join(o.Path, "objects"), tmp: filepath.Join(o.Path, "tmp"),
		index: map[diskID]*diskItem{}, loaded: make(chan struct{}), closed: make(chan struct{})}
	d.head.next, d.head.prev = &d.head, &d.head
	d.seen.init()
	for _, dir := range []string{d.objs, d.tmp} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("disk cache: %w", err)
		}
	}
	// Whatever is in tmp was being written when the last run stopped.
	if ents, err := os.ReadDir(d.tmp); err == nil {
		for _, e := range ents {
			_ = os.Remove(filepath.Join(d.tmp, e.Name()))
		}
	}
	go d.load()
	return d, nil
}

// Loaded is closed once the index of the files found at start is built.
func (d *Disk) Loaded() <-chan struct{} { return d.loaded }

// Close stops the background index load. Files stay for the next run.
func (d *Disk) Close() {
	select {
	case <-d.closed:
	default:
		close(d.closed)
	}
	<-d.loaded
}

func (d *Disk) load() {
	defer close(d.loaded)
	now := d.o.Now().UnixNano()
	_ = filepath.WalkDir(d.objs, func(p string, de fs.DirEntry, err error) error {
		select {
		case <-d.closed:
			return fs.SkipAll
		default:
		}
		if err != nil || de.IsDir() {
			return nil
		}
		id, ok := parseDiskID(de.Name())
		if !ok {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return nil
		}
		h, err := readDiskHeader(f, 4096)
		f.Close()
		if err != nil || h.entry.Expires.UnixNano() < now {
			d.drop(id, p, err)
			return nil
		}
		d.mu.Lock()
		if _, seen := d.index[id]; !seen {
			d.insertLocked(&diskItem{id: id, size: h.fileSize, expires: h.entry.Expires.UnixNano()})
		}
		evict := d.evictLocked(nil)
		d.mu.Unlock()
		d.remove(evict)
		return nil
	})
}

func diskKeyID(key string) diskID {
	sum := sha256.Sum256([]byte(key))
	var id diskID
	copy(id[:], sum[:])
	return id
}

func parseDiskID(name string) (diskID, bool) {
	var id diskID
	if len(name) != 32 {
		return id, false
	}
	_, err := hex.Decode(id[:], []byte(name))
	return id, err == nil
}

func (d *Disk) path(id diskID) string {
	h := hex.EncodeToString(id[:])
	return filepath.Join(d.objs, h[:2], h)
}

// diskHeader is what readDiskHeader learns from a file.
type diskHeader struct {
	key       string
	entry     Entry
	dataOff   int64
	bodyLen   int64
	blockSize int64
	crcs      []uint32
	tailCRC   uint32
	fileSize  int64
	head      *headReader
}

// headReader serves reads from the file's first bytes, read at once, and
// the rest from the file: a small entry costs one read.
type headReader struct {
	f    *os.File
	head []byte
}

func (h *headReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= 0 && off+int64(len(p)) <= int64(len(h.head)) {
		return copy(p, h.head[off:]), nil
	}
	return h.f.ReadAt(p, off)
}

// readDiskHeader reads and checks a file's metadata and trailer, reading
// the whole file at once if it is at most prefetch bytes; a torn or damaged file is an error
// wrapping ErrCorrupt.
func readDiskHeader(file *os.File, prefetch int64) (*diskHeader, error) {
	st, err := file.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > prefetch {
		prefetch = 4096 // a large body is read block by block later
	}
	f := &headReader{f: file, head: make([]byte, min(st.Size(), prefetch))}
	if _, err := file.ReadAt(f.head, 0); err != nil {
		return nil, fmt.Errorf("%w: short file: %v", ErrCorrupt, err)
	}
	var pre [8]byte
	if _, err := f.ReadAt(pre[:], 0); err != nil {
		return nil, fmt.Errorf("%w: short header: %v", ErrCorrupt, err)
	}
	if string(pre[:4]) != diskMagic {
		return nil, fmt.Errorf("%w: bad magic", ErrCorrupt)
	}
	metaLen := int64(binary.BigEndian.Uint32(pre[4:]))
	if metaLen > diskMaxMetaLen || 8+metaLen+4+diskTailFixed > st.Size() {
		return nil, fmt.Errorf("%w: metadata length %d", ErrCorrupt, metaLen)
	}
	meta := make([]byte, metaLen+4)
	if _, err := f.ReadAt(meta, 8); err != nil {
		return nil, fmt.Errorf("%w: short metadata: %v", ErrCorrupt, err)
	}
	if crc32.Checksum(meta[:metaLen], castagnoli) != binary.BigEndian.Uint32(meta[metaLen:]) {
		return nil, fmt.Errorf("%w: metadata checksum", ErrCorrupt)
	}
	h := &diskHeader{dataOff: 8 + metaLen + 4, fileSize: st.Size(), head: f}
	dec := decoder{b: meta[:metaLen]}
	h.key = dec.string()
	if dec.err != nil {
		return nil, dec.err
	}
	if err := h.entry.UnmarshalBinary(dec.b); err != nil {
		return nil, err
	}
	var tail [diskTailFixed]byte
	if _, err := f.ReadAt(tail[:], st.Size()-diskTailFixed); err != nil {
		return nil, fmt.Errorf("%w: short trailer: %v", ErrCorrupt, err)
	}
	if string(tail[16:]) != diskTailMagic {
		return nil, fmt.Errorf("%w: no trailer (torn write)", ErrCorrupt)
	}
	h.bodyLen = int64(binary.BigEndian.Uint64(tail[:8]))
	h.blockSize = int64(binary.BigEndian.Uint32(tail[8:12]))
	if h.blockSize <= 0 || h.bodyLen < 0 || h.bodyLen > st.Size() {
		return nil, fmt.Errorf("%w: trailer lengths", ErrCorrupt)
	}
	n := (h.bodyLen + h.blockSize - 1) / h.blockSize
	if h.dataOff+h.bodyLen+4*n+diskTailFixed != st.Size() {
		return nil, fmt.Errorf("%w: file is %d bytes, its trailer says %d (torn write)", ErrCorrupt, st.Size(), h.dataOff+h.bodyLen+4*n+diskTailFixed)
	}
	raw := make([]byte, 4*n+12)
	if _, err := f.ReadAt(raw, h.dataOff+h.bodyLen); err != nil {
		return nil, fmt.Errorf("%w: short trailer: %v", ErrCorrupt, err)
	}
	if crc32.Checksum(raw, castagnoli) != binary.BigEndian.Uint32(tail[12:16]) {
		return nil, fmt.Errorf("%w: trailer checksum", ErrCorrupt)
	}
	h.tailCRC = binary.BigEndian.Uint32(tail[12:16])
	h.crcs = make([]uint32, n)
	for i := range h.crcs {
		h.crcs[i] = binary.BigEndian.Uint32(raw[4*i:])
	}
	return h, nil
}

// Get opens the entry's file. A body up to InlineBody is read and checked
// whole; a larger one is returned as Content, checked block by block as it
// is read (and checked whole first if this process has not written or
// checked it yet, i.e. after a restart).
func (d *Disk) Get(_ context.Context, key string) (*Entry, error) {
	id := diskKeyID(key)
	p := d.path(id)
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("disk cache get: %w", err)
	}
	h, err := readDiskHeader(f, d.o.InlineBody+64<<10)
	if err == nil && h.key != key {
		err = fmt.Errorf("%w: file holds another key", ErrNotFound)
	}
	if err != nil {
		f.Close()
		d.drop(id, p, err)
		return nil, fmt.Errorf("disk cache get: %w: %w", ErrNotFound, err)
	}
	if h.entry.Expires.Before(d.o.Now()) {
		f.Close()
		d.drop(id, p, nil)
		return nil, ErrNotFound
	}
	onCorrupt := func(err error) { d.drop(id, p, err) }
	e := &h.entry
	verified := d.touch(id, h)
	if h.bodyLen <= d.o.InlineBody {
		r := &diskReader{f: f, h: h, onCorrupt: onCorrupt, bufIdx: -1}
		e.Body = make([]byte, h.bodyLen)
		_, err := io.ReadFull(r, e.Body)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("disk cache get: %w: %w", ErrNotFound, err)
		}
		return e, nil
	}
	if !verified {
		r := &diskReader{f: f, h: h, onCorrupt: onCorrupt, bufIdx: -1}
		if err := r.verifyAll(); err != nil {
			f.Close()
			return nil, fmt.Errorf("disk cache get: %w: %w", ErrNotFound, err)
		}
		d.markVerified(id)
	}
	e.Content = &diskContent{path: p, h: h, onCorrupt: onCorrupt, f: f}
	return e, nil
}

// touch marks id most recently used (indexing it if the background load has
// not reached it yet) and reports whether its body is known good.
func (d *Disk) touch(id diskID, h *diskHeader) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	it, ok := d.index[id]
	if !ok {
		it = &diskItem{id: id, size: h.fileSize, expires: h.entry.Expires.UnixNano()}
		d.insertLocked(it)
		return false
	}
	d.unlinkLocked(it)
	d.pushLocked(it)
	return it.verified
}

func (d *Disk) markVerified(id diskID) {
	d.mu.Lock()
	if it, ok := d.index[id]; ok {
		it.verified = true
	}
	d.mu.Unlock()
}

// Set writes e (its Body, or its Content when it came from a store) at key.
func (d *Disk) Set(ctx context.Context, key string, e *Entry, ttl time.Duration) error {
	if ttl <= 0 {
		return nil
	}
	if e.BodySize() > d.o.MaxObjectSize {
		return fmt.Errorf("disk cache: %d bytes over the %d-byte object limit: %w", e.BodySize(), d.o.MaxObjectSize, ErrTooLarge)
	}
	w, err := d.Create(ctx, key, e, ttl)
	if err != nil {
		return err
	}
	defer w.Close()
	if e.Content != nil {
		var r io.ReadCloser
		if r, err = e.Content.Open(0); err == nil {
			_, err = io.Copy(w, r)
			r.Close()
		}
	} else {
		_, err = w.Write(e.Body)
	}
	if err != nil {
		w.Abort()
		return fmt.Errorf("disk cache set: %w", err)
	}
	return w.Commit(ctx)
}

// Create starts a streamed write of e at key (StreamStore). A tier at 90%
// of its bound admits a new key only on its second write in a while (a
// count-min sketch with aging): an object asked for once does not evict
// the working set; until then it is ErrNotAdmitted.
func (d *Disk) Create(_ context.Context, key string, e *Entry, ttl time.Duration) (BodyWriter, error) {
	if d.seen.add(key) < 2 && d.nearFull() && !d.holds(key) {
		return nil, ErrNotAdmitted
	}
	cp := *e
	cp.Body, cp.Content = nil, nil
	cp.Expires = d.o.Now().Add(ttl)
	enc, _ := cp.MarshalBinary()
	meta := appendString(nil, key)
	meta = append(meta, enc...)
	if len(meta) > diskMaxMetaLen {
		return nil, fmt.Errorf("disk cache: metadata of %d bytes: %w", len(meta), ErrTooLarge)
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	f, err := os.CreateTemp(d.tmp, hex.EncodeToString(rnd[:])+"-*")
	if err != nil {
		return nil, fmt.Errorf("disk cache create: %w", err)
	}
	hdr := make([]byte, 0, 8+len(meta)+4)
	hdr = append(hdr, diskMagic...)
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(len(meta)))
	hdr = append(hdr, meta...)
	hdr = binary.BigEndian.AppendUint32(hdr, crc32.Checksum(meta, castagnoli))
	if _, err := f.Write(hdr); err != nil {
		f.Close()
		_ = os.Remove(f.Name())
		return nil, fmt.Errorf("disk cache create: %w", err)
	}
	return &diskWriter{d: d, f: f, id: diskKeyID(key), dataOff: int64(len(hdr)), expires: cp.Expires.UnixNano()}, nil
}

// holds reports whether key has an entry (a rewrite, after a 304, is
// always admitted).
func (d *Disk) holds(key string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.index[diskKeyID(key)]
	return ok
}

func (d *Disk) nearFull() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.bytes >= d.o.MaxBytes/10*9
}

// Delete removes key's file.
func (d *Disk) Delete(_ context.Context, key string) error {
	id := diskKeyID(key)
	d.drop(id, d.path(id), nil)
	return nil
}

// Usage is the bytes of the files indexed and their number (Sizer).
func (d *Disk) Usage() (bytes int64, entries int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.bytes, len(d.index)
}

// MaxObjectSize is the largest body kept (ObjectLimiter).
func (d *Disk) MaxObjectSize() int64 { return d.o.MaxObjectSize }

// drop deletes a file and its index item; err (if any) is why it is dropped.
func (d *Disk) drop(id diskID, p string, err error) {
	if err != nil && errors.Is(err, ErrCorrupt) {
		d.o.Logger.Warn().Err(err).Str("file", p).Msg("cache: damaged disk entry dropped; it will be fetched again")
	}
	d.mu.Lock()
	if it, ok := d.index[id]; ok {
		d.unlinkLocked(it)
		delete(d.index, id)
		d.bytes -= it.size
	}
	d.mu.Unlock()
	_ = os.Remove(p)
}

func (d *Disk) insertLocked(it *diskItem) {
	if old, ok := d.index[it.id]; ok {
		d.unlinkLocked(old)
		d.bytes -= old.size
	}
	d.index[it.id] = it
	d.bytes += it.size
	d.pushLocked(it)
}

func (d *Disk) pushLocked(it *diskItem) {
	it.prev, it.next = &d.head, d.head.next
	d.head.next.prev = it
	d.head.next = it
}

func (d *Disk) unlinkLocked(it *diskItem) {
	it.prev.next, it.next.prev = it.next, it.prev
	it.prev, it.next = nil, nil
}

// evictLocked unindexes least recently used items until the tier is within
// its bound, keeping keep, and returns their files for removal.
func (d *Disk) evictLocked(keep *diskItem) []string {
	var out []string
	for d.bytes > d.o.MaxBytes {
		it := d.head.prev
		if it == &d.head || it == keep {
			break
		}
		d.unlinkLocked(it)
		delete(d.index, it.id)
		d.bytes -= it.size
		out = append(out, d.path(it.id))
	}
	return out
}

func (d *Disk) remove(paths []string) {
	for _, p := range paths {
		_ = os.Remove(p)
	}
}

// diskWriter streams a body into a temporary file, computing its block
// checksums, and renames it into place on Commit.
type diskWriter struct {
	d       *Disk
	f       *os.File
	id      diskID
	dataOff int64
	expires int64

	n      int64
	crcs   []uint32
	cur    uint32 // CRC of the current partial block
	ended  bool
	closed bool
}

func (w *diskWriter) Write(p []byte) (int, error) {
	if w.ended {
		return 0, errors.New("disk cache: write after commit or abort")
	}
	if w.n+int64(len(p)) > w.d.o.MaxObjectSize {
		return 0, fmt.Errorf("disk cache: body over the %d-byte object limit: %w", w.d.o.MaxObjectSize, ErrTooLarge)
	}
	n, err := w.f.Write(p)
	q := p[:n]
	for len(q) > 0 {
		room := diskBlock - w.n%diskBlock
		k := min(int64(len(q)), room)
		w.cur = crc32.Update(w.cur, castagnoli, q[:k])
		w.n += k
		q = q[k:]
		if w.n%diskBlock == 0 {
			w.crcs = append(w.crcs, w.cur)
			w.cur = 0
		}
	}
	return n, err
}

// ReadAt reads back written body bytes.
func (w *diskWriter) ReadAt(p []byte, off int64) (int, error) {
	return w.f.ReadAt(p, w.dataOff+off)
}

func (w *diskWriter) Commit(ctx context.Context) error {
	if w.ended {
		return errors.New("disk cache: commit after commit or abort")
	}
	w.ended = true
	if w.n%diskBlock != 0 {
		w.crcs = append(w.crcs, w.cur)
	}
	raw := make([]byte, 0, 4*len(w.crcs)+diskTailFixed)
	for _, c := range w.crcs {
		raw = binary.BigEndian.AppendUint32(raw, c)
	}
	raw = binary.BigEndian.AppendUint64(raw, uint64(w.n))
	raw = binary.BigEndian.AppendUint32(raw, diskBlock)
	raw = binary.BigEndian.AppendUint32(raw, crc32.Checksum(raw, castagnoli))
	raw = append(raw, diskTailMagic...)
	err := ctx.Err()
	if err == nil {
		_, err = w.f.Write(raw)
	}
	if err == nil {
		err = w.f.Sync()
	}
	final := w.d.path(w.id)
	if err == nil {
		err = os.MkdirAll(filepath.Dir(final), 0o750)
	}
	size := w.dataOff + w.n + int64(len(raw))
	if err == nil && size > w.d.o.MaxBytes {
		err = fmt.Errorf("disk cache: %d bytes over the tier's bound: %w", size, ErrTooLarge)
	}
	if err != nil {
		_ = os.Remove(w.f.Name())
		return fmt.Errorf("disk cache commit: %w", err)
	}
	d := w.d
	d.mu.Lock()
	if err = os.Rename(w.f.Name(), final); err == nil {
		it := &diskItem{id: w.id, size: size, expires: w.expires, verified: true}
		d.insertLocked(it)
		evict := d.evictLocked(it)
		d.mu.Unlock()
		d.remove(evict)
		return nil
	}
	d.mu.Unlock()
	_ = os.Remove(w.f.Name())
	return fmt.Errorf("disk cache commit: %w", err)
}

func (w *diskWriter) Abort() {
	if !w.ended {
		w.ended = true
		_ = os.Remove(w.f.Name())
	}
}

func (w *diskWriter) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	w.Abort()
	return w.f.Close()
}

// diskContent is a stored body. The file Get opened is handed to the first
// reader; later readers open the file again and check it is still the same
// (its trailer), so a shared entry never reads another version's bytes.
type diskContent struct {
	path      string
	h         *diskHeader
	onCorrupt func(error)

	mu sync.Mutex
	f  *os.File // opened by Get, not yet handed to a reader
}

func (c *diskContent) Size() int64 { return c.h.bodyLen }

func (c *diskContent) Open(off int64) (io.ReadCloser, error) {
	c.mu.Lock()
	f := c.f
	c.f = nil
	c.mu.Unlock()
	if f == nil {
		var err error
		if f, err = os.Open(c.path); err != nil {
			return nil, fmt.Errorf("disk cache: entry gone: %w", err)
		}
		h, err := readDiskHeader(f, 4096)
		if err != nil || h.fileSize != c.h.fileSize || h.tailCRC != c.h.tailCRC {
			f.Close()
			return nil, fmt.Errorf("disk cache: entry replaced or damaged since it was found: %w", ErrNotFound)
		}
		return &diskReader{f: f, h: h, off: off, onCorrupt: c.onCorrupt, bufIdx: -1}, nil
	}
	return &diskReader{f: f, h: c.h, off: off, onCorrupt: c.onCorrupt, bufIdx: -1}, nil
}

// diskReader reads a body sequentially, checking each block's CRC before
// any of its bytes are returned.
type diskReader struct {
	f         *os.File
	h         *diskHeader
	off       int64
	onCorrupt func(error)
	buf       []byte
	bufIdx    int64
}

func (r *diskReader) Read(p []byte) (int, error) {
	if r.off >= r.h.bodyLen {
		return 0, io.EOF
	}
	idx := r.off / r.h.blockSize
	blk, err := r.block(idx)
	if err != nil {
		return 0, err
	}
	n := copy(p, blk[r.off-idx*r.h.blockSize:])
	r.off += int64(n)
	return n, nil
}

func (r *diskReader) Close() error { return r.f.Close() }

// block returns block idx, checked.
func (r *diskReader) block(idx int64) ([]byte, error) {
	if r.buf == nil {
		r.buf = make([]byte, r.h.blockSize)
	}
	start := idx * r.h.blockSize
	blk := r.buf[:min(r.h.blockSize, r.h.bodyLen-start)]
	if r.bufIdx == idx {
		return blk, nil
	}
	r.bufIdx = -1
	if _, err := r.h.head.ReadAt(blk, r.h.dataOff+start); err != nil {
		return nil, fmt.Errorf("disk cache read: %w", err)
	}
	if crc32.Checksum(blk, castagnoli) != r.h.crcs[idx] {
		err := fmt.Errorf("%w: block %d fails its checksum", ErrCorrupt, idx)
		r.onCorrupt(err)
		return nil, err
	}
	r.bufIdx = idx
	return blk, nil
}

// verifyAll checks every block.
func (r *diskReader) verifyAll() error {
	for i := range int64(len(r.h.crcs)) {
		if _, err := r.block(i); err != nil {
			return err
		}
	}
	return nil
}
