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
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions configures the Redis tier.
type RedisOptions struct {
	// Prefix starts every key; default "edgegate:cache:".
	Prefix string
	// ChunkSize splits bodies larger than it into chunks; default 512 KiB.
	ChunkSize int
	// MaxObjectSize is the largest body stored; default 64 MiB.
	MaxObjectSize int64
	// InlineBody is the largest body Get reads into memory; a larger one is
	// returned as Content, read chunk by chunk as a viewer takes it.
	// Default 1 MiB.
	InlineBody int64
	// ChunkTimeout bounds fetching one chunk of such a body while a viewer
	// reads it; past it the viewer's response is cut. Default 2s.
	ChunkTimeout time.Duration
	// Now stamps Expires; time.Now when nil.
	Now func() time.Time
}

// Redis is the shared tier. An entry is one metadata key holding the
// encoded entry and, for a body above ChunkSize, a generation id, chunk count,
// length and CRC of chunks stored under keys of that generation. A writer
// stores all chunks of a new generation first, then switches the metadata
// key with one SET, so a reader sees the old object or the new one, never a
// mix; a reader that loses a race with a rewrite finds a chunk missing or
// the CRC wrong and reports a miss. Keys use a hash tag, so one object's keys
// share a Redis Cluster slot and MGET works there too.
type Redis struct {
	rdb redis.UniversalClient
	o   RedisOptions
}

// chunkGrace keeps chunks a little longer than their metadata, so a reader
// that got the metadata just before it expired still finds the chunks.
const chunkGrace = 30 * time.Second

// chunkBatch is how many chunks one MGET asks for.
const chunkBatch = 8

// NewRedis builds the Redis tier on a client the caller owns.
func NewRedis(rdb redis.UniversalClient, o RedisOptions) *Redis {
	if o.Prefix == "" {
		o.Prefix = "edgegate:cache:"
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = 512 << 10
	}
	if o.MaxObjectSize <= 0 {
		o.MaxObjectSize = 64 << 20
	}
	if o.InlineBody <= 0 {
		o.InlineBody = 1 << 20
	}
	if o.ChunkTimeout <= 0 {
		o.ChunkTimeout = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Redis{rdb: rdb, o: o}
}

// objectKey hashes the cache key (which may be kilobytes long) into a short
// hash-tagged Redis key.
func (s *Redis) objectKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return s.o.Prefix + "{" + hex.EncodeToString(sum[:]) + "}"
}

func metaKey(obj string) string { return obj + ":m" }

func chunkKey(obj, gen string, i int) string { return obj + ":c:" + gen + ":" + strconv.Itoa(i) }

// newGen names a new generation of chunks: "c<size>-<random>" marks chunks
// of size bytes (the last shorter) that carry their own CRC-32C in 4
// trailing bytes, so that a body can be streamed and a damaged chunk is
// caught before its bytes are served. Generations without the mark (older
// writers) are read whole and checked by the body's CRC.
func newGen(size int) string {
	var g [8]byte
	_, _ = rand.Read(g[:])
	return "c" + strconv.Itoa(size) + "-" + hex.EncodeToString(g[:])
}

// genChunkSize reads newGen's chunk size; sealed is false for the old form.
func genChunkSize(gen string) (size int, sealed bool) {
	rest, ok := strings.CutPrefix(gen, "c")
	if !ok {
		return 0, false
	}
	n, _, ok := strings.Cut(rest, "-")
	size, err := strconv.Atoi(n)
	return size, ok && err == nil && size > 0
}

func sealChunk(part []byte) []byte {
	out := make([]byte, len(part), len(part)+4)
	copy(out, part)
	return binary.BigEndian.AppendUint32(out, crc32.Checksum(part, castagnoli))
}

// openChunk checks a sealed chunk and returns its data.
func openChunk(v string) (string, bool) {
	if len(v) < 4 {
		return "", false
	}
	data := v[:len(v)-4]
	return data, crc32.Checksum([]byte(data), castagnoli) == binary.BigEndian.Uint32([]byte(v[len(v)-4:]))
}

// redisContent streams a large body chunk by chunk, one GET at a time, so a
// viewer holds one chunk in memory, never the object.
type redisContent struct {
	s    *Redis
	obj  string
	m    *redisMeta
	size int
}

func (c *redisContent) Size() int64 { return int64(c.m.bodyLen) }

func (c *redisContent) Open(off int64) (io.ReadCloser, error) {
	return &redisReader{c: c, next: int(off / int64(c.size)), skip: int(off % int64(c.size))}, nil
}

type redisReader struct {
	c    *redisContent
	next int    // next chunk to fetch
	skip int    // bytes of it to skip (the start of a range)
	buf  string // rest of the current chunk
}

func (r *redisReader) Read(p []byte) (int, error) {
	for r.buf == "" {
		if r.next >= r.c.m.chunks {
			return 0, io.EOF
		}
		ctx, cancel := context.WithTimeout(context.Background(), r.c.s.o.ChunkTimeout)
		v, err := r.c.s.rdb.Get(ctx, chunkKey(r.c.obj, r.c.m.gen, r.next)).Result()
		cancel()
		if err != nil {
			return 0, fmt.Errorf("redis cache read chunk %d: %w", r.next, err)
		}
		data, ok := openChunk(v)
		if !ok || r.skip > len(data) {
			return 0, fmt.Errorf("redis cache read chunk %d: %w: damaged", r.next, ErrCorrupt)
		}
		r.buf = data[r.skip:]
		r.skip = 0
		r.next++
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *redisReader) Close() error { return nil }

// redisMeta is the decoded metadata value.
type redisMeta struct {
	gen     string
	chunks  int
	bodyLen int
	crc     uint32
	entry   Entry
}

func encodeMeta(m *redisMeta, e *Entry) []byte {
	b := appendString(nil, m.gen)
	b = binary.AppendUvarint(b, uint64(m.chunks))
	b = binary.AppendUvarint(b, uint64(m.bodyLen))
	b = binary.BigEndian.AppendUint32(b, m.crc)
	if m.chunks > 0 {
		cp := *e
		cp.Body = nil
		e = &cp
	}
	enc, _ := e.MarshalBinary()
	return append(b, enc...)
}

func decodeMeta(v []byte) (*redisMeta, error) {
	d := decoder{b: v}
	m := &redisMeta{gen: d.string(), chunks: int(d.uvarint()), bodyLen: int(d.uvarint())}
	if d.err == nil && len(d.b) < 4 {
		d.fail("truncated crc")
	}
	if d.err != nil {
		return nil, d.err
	}
	m.crc = binary.BigEndian.Uint32(d.b)
	if err := m.entry.UnmarshalBinary(d.b[4:]); err != nil {
		return nil, err
	}
	if m.chunks < 0 || m.bodyLen < 0 || (m.chunks == 0 && len(m.entry.Body) != m.bodyLen) {
		return nil, fmt.Errorf("%w: inconsistent chunk count %d / length %d", ErrCorrupt, m.chunks, m.bodyLen)
	}
	return m, nil
}

// Get reads the entry at key. A missing, partly written or corrupt object
// is ErrNotFound; a Redis failure is any other error.
func (s *Redis) Get(ctx context.Context, key string) (*Entry, error) {
	obj := s.objectKey(key)
	v, err := s.rdb.Get(ctx, metaKey(obj)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("redis cache get: %w", err)
	}
	m, err := decodeMeta(v)
	if err != nil {
		return nil, fmt.Errorf("redis cache get: %w: %w", ErrNotFound, err)
	}
	if m.chunks == 0 {
		return &m.entry, nil
	}
	size, sealed := genChunkSize(m.gen)
	if !sealed {
		size = s.o.ChunkSize
	}
	if m.chunks > int(s.o.MaxObjectSize/int64(max(size, 1)))+1 || m.bodyLen > int(s.o.MaxObjectSize) ||
		(sealed && (m.chunks-1)*size >= max(m.bodyLen, 1)) {
		return nil, fmt.Errorf("redis cache get: %w: %w: %d chunks", ErrNotFound, ErrCorrupt, m.chunks)
	}
	if sealed && int64(m.bodyLen) > s.o.InlineBody {
		e := m.entry
		e.Body, e.Content = nil, &redisContent{s: s, obj: obj, m: m, size: size}
		return &e, nil
	}
	body := make([]byte, 0, m.bodyLen)
	for i := 0; i < m.chunks; i += chunkBatch {
		keys := make([]string, 0, chunkBatch)
		for j := i; j < min(i+chunkBatch, m.chunks); j++ {
			keys = append(keys, chunkKey(obj, m.gen, j))
		}
		vals, err := s.rdb.MGet(ctx, keys...).Result()
		if err != nil {
			return nil, fmt.Errorf("redis cache get chunks: %w", err)
		}
		for _, cv := range vals {
			str, ok := cv.(string)
			if ok && sealed {
				str, ok = openChunk(str)
			}
			if !ok || len(body)+len(str) > m.bodyLen {
				return nil, fmt.Errorf("redis cache get: %w: chunk missing, damaged or overlong (object rewritten or expired)", ErrNotFound)
			}
			body = append(body, str...)
		}
	}
	if len(body) != m.bodyLen || crc32.ChecksumIEEE(body) != m.crc {
		return nil, fmt.Errorf("redis cache get: %w: %w: body length or checksum mismatch", ErrNotFound, ErrCorrupt)
	}
	m.entry.Body = body
	return &m.entry, nil
}

// Set stores e at key for ttl; a body above MaxObjectSize is ErrTooLarge.
func (s *Redis) Set(ctx context.Context, key string, e *Entry, ttl time.Duration) error {
	if ttl <= 0 {
		return nil
	}
	if e.Content != nil || int64(len(e.Body)) > s.o.MaxObjectSize {
		return fmt.Errorf("redis cache set: body of %d bytes over %d: %w", len(e.Body), s.o.MaxObjectSize, ErrTooLarge)
	}
	obj := s.objectKey(key)
	cp := *e
	cp.Expires = s.o.Now().Add(ttl)
	m := &redisMeta{bodyLen: len(e.Body), crc: crc32.ChecksumIEEE(e.Body)}
	if len(e.Body) > s.o.ChunkSize {
		m.gen = newGen(s.o.ChunkSize)
		m.chunks = (len(e.Body) + s.o.ChunkSize - 1) / s.o.ChunkSize
		pipe := s.rdb.Pipeline()
		for i := 0; i < m.chunks; i++ {
			part := e.Body[i*s.o.ChunkSize : min((i+1)*s.o.ChunkSize, len(e.Body))]
			pipe.Set(ctx, chunkKey(obj, m.gen, i), sealChunk(part), ttl+chunkGrace)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("redis cache set chunks: %w", err)
		}
	}
	old, err := s.rdb.SetArgs(ctx, metaKey(obj), encodeMeta(m, &cp), redis.SetArgs{TTL: ttl, Get: true}).Bytes()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("redis cache set: %w", err)
	}
	s.dropChunks(ctx, obj, old)
	return nil
}

// dropChunks unlinks the chunks of a replaced or deleted generation; a
// reader still on it sees a missing chunk and reports a miss.
func (s *Redis) dropChunks(ctx context.Context, obj string, oldMeta []byte) {
	if len(oldMeta) == 0 {
		return
	}
	m, err := decodeMeta(oldMeta)
	if err != nil || m.chunks == 0 {
		return
	}
	keys := make([]string, m.chunks)
	for i := range keys {
		keys[i] = chunkKey(obj, m.gen, i)
	}
	_ = s.rdb.Unlink(ctx, keys...).Err() // best effort: they expire anyway
}

// MaxObjectSize is the largest body Set keeps (ObjectLimiter).
func (s *Redis) MaxObjectSize() int64 { return s.o.MaxObjectSize }

// Delete removes key and its chunks.
func (s *Redis) Delete(ctx context.Context, key string) error {
	obj := s.objectKey(key)
	old, err := s.rdb.GetDel(ctx, metaKey(obj)).Bytes()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("redis cache delete: %w", err)
	}
	s.dropChunks(ctx, obj, old)
	return nil
}

// Ping checks that Redis answers; Tiered uses it to notice a comeback.
func (s *Redis) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis cache ping: %w", err)
	}
	return nil
}

// Create starts a streamed write (StreamStore): chunks are stored as they
// come, under a new generation, and the metadata key is switched to them on
// Commit, so readers see the old object or the new one, never a mix. The
// writer cannot read back (ReadAt fails): Tiered streams fills into a local
// tier and copies them here once whole.
func (s *Redis) Create(ctx context.Context, key string, e *Entry, ttl time.Duration) (BodyWriter, error) {
	if ttl <= 0 {
		return nil, fmt.Errorf("redis cache create: no ttl: %w", ErrTooLarge)
	}
	cp := *e
	cp.Body, cp.Content = nil, nil
	cp.Expires = s.o.Now().Add(ttl)
	return &redisWriter{s: s, ctx: ctx, obj: s.objectKey(key), gen: newGen(s.o.ChunkSize), ttl: ttl, e: &cp}, nil
}

// CanStream is false: a fill cannot read along a write into Redis (Tiered
// fills a local tier and copies it here).
func (s *Redis) CanStream() bool { return false }

type redisWriter struct {
	s   *Redis
	ctx context.Context
	obj string
	gen string
	ttl time.Duration
	e   *Entry

	buf    []byte
	chunks int
	n      int64
	crc    uint32
	ended  bool
}

func (w *redisWriter) Write(p []byte) (int, error) {
	if w.ended {
		return 0, errors.New("redis cache: write after commit or abort")
	}
	if w.n+int64(len(p)) > w.s.o.MaxObjectSize {
		return 0, fmt.Errorf("redis cache: body over %d bytes: %w", w.s.o.MaxObjectSize, ErrTooLarge)
	}
	written := len(p)
	w.crc = crc32.Update(w.crc, crc32.IEEETable, p)
	w.n += int64(len(p))
	for len(p) > 0 {
		k := min(len(p), w.s.o.ChunkSize-len(w.buf))
		w.buf = append(w.buf, p[:k]...)
		p = p[k:]
		if len(w.buf) == w.s.o.ChunkSize {
			if err := w.flush(); err != nil {
				return 0, err
			}
		}
	}
	return written, nil
}

func (w *redisWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	err := w.s.rdb.Set(w.ctx, chunkKey(w.obj, w.gen, w.chunks), sealChunk(w.buf), w.ttl+chunkGrace).Err()
	if err != nil {
		return fmt.Errorf("redis cache set chunk: %w", err)
	}
	w.chunks++
	w.buf = w.buf[:0]
	return nil
}

func (w *redisWriter) ReadAt([]byte, int64) (int, error) {
	return 0, errors.New("redis cache: a streamed write cannot be read back")
}

func (w *redisWriter) Commit(ctx context.Context) error {
	if w.ended {
		return errors.New("redis cache: commit after commit or abort")
	}
	w.ended = true
	m := &redisMeta{bodyLen: int(w.n), crc: w.crc}
	if w.n <= int64(w.s.o.ChunkSize) && w.chunks == 0 {
		w.e.Body = w.buf // small: inline in the metadata, as Set does
	} else {
		if err := w.flush(); err != nil {
			return err
		}
		m.gen, m.chunks = w.gen, w.chunks
	}
	old, err := w.s.rdb.SetArgs(ctx, metaKey(w.obj), encodeMeta(m, w.e), redis.SetArgs{TTL: w.ttl, Get: true}).Bytes()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("redis cache commit: %w", err)
	}
	w.s.dropChunks(ctx, w.obj, old)
	return nil
}

func (w *redisWriter) Abort() {
	if w.ended {
		return
	}
	w.ended = true
	keys := make([]string, w.chunks)
	for i := range keys {
		keys[i] = chunkKey(w.obj, w.gen, i)
	}
	if len(keys) > 0 {
		_ = w.s.rdb.Unlink(context.WithoutCancel(w.ctx), keys...).Err() // best effort: they expire anyway
	}
}

func (w *redisWriter) Close() error {
	w.Abort()
	return nil
}
