package cache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"time"
	"unsafe"
)

// Encoding: "EGC" + version, then the fields below, each integer a
// (u)varint and each string or byte slice length-prefixed. Version 1:
//
//	kind u8 | flags u8 | status | requestTime | responseTime | initialAge |
//	lifetime | swr | sie | expires | path | nVary {field} |
//	nHeader {name nValues {value}} | generation | body
//
// Times are Unix nanoseconds, 0 for the zero time.
const (
	codecMagic   = "EGC"
	codecVersion = 1
	flagNoStale  = 1
)

// ErrCorrupt is wrapped by every decoding error: the blob is truncated,
// damaged or of an unknown version. Stores treat it as a miss.
var ErrCorrupt = errors.New("corrupt cache entry")

// MarshalBinary encodes the entry, body included.
func (e *Entry) MarshalBinary() ([]byte, error) {
	b := appendMeta(make([]byte, 0, 256+len(e.Body)), e)
	return appendBytes(b, e.Body), nil
}

// UnmarshalBinary decodes an entry encoded by MarshalBinary; a truncated or
// corrupt blob is an error wrapping ErrCorrupt, never a panic.
func (e *Entry) UnmarshalBinary(data []byte) error {
	d := decoder{b: data}
	d.meta(e)
	e.Body = d.bytes()
	return d.finish()
}

// appendMeta encodes everything but the body.
func appendMeta(b []byte, e *Entry) []byte {
	b = append(b, codecMagic...)
	b = append(b, codecVersion, byte(e.Kind))
	var flags byte
	if e.NoStale {
		flags |= flagNoStale
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(e.Status))
	b = binary.AppendVarint(b, unixNano(e.RequestTime))
	b = binary.AppendVarint(b, unixNano(e.ResponseTime))
	for _, d := range []time.Duration{e.InitialAge, e.Lifetime, e.StaleWhileRevalidate, e.StaleIfError} {
		b = binary.AppendVarint(b, int64(d))
	}
	b = binary.AppendVarint(b, unixNano(e.Expires))
	b = appendString(b, e.Path)
	b = binary.AppendUvarint(b, uint64(len(e.VaryFields)))
	for _, f := range e.VaryFields {
		b = appendString(b, f)
	}
	b = binary.AppendUvarint(b, uint64(len(e.Header)))
	for k, vs := range e.Header {
		b = appendString(b, k)
		b = binary.AppendUvarint(b, uint64(len(vs)))
		for _, v := range vs {
			b = appendString(b, v)
		}
	}
	b = binary.AppendUvarint(b, e.Generation)
	return b
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendBytes(b, s []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// decoder reads the encoding; the first problem sticks and later reads
// return zero values, so callers check once at the end.
type decoder struct {
	b   []byte
	err error
	// shared makes strings views of b instead of copies: for a blob that
	// is never written again and may be retained by them (the memory
	// tier's, see Memory.Get).
	shared bool
	// strs, when not nil, is room for the Vary fields and header values,
	// so that small entries take no allocation of their own for them.
	strs []string
	// room is how many fields the header map is made ready to take
	// beyond those decoded.
	room int
}

// strings returns an empty slice with room for n strings, from d.strs
// while it lasts.
func (d *decoder) strings(n int) []string {
	if l := len(d.strs); n <= cap(d.strs)-l {
		d.strs = d.strs[:l+n]
		return d.strs[l : l : l+n]
	}
	return make([]string, 0, n)
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) byte1() byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a length that must fit in what remains (each item takes at
// least one byte), so a forged count cannot make us allocate gigabytes.
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("count %d exceeds data", n)
		return 0
	}
	return int(n)
}

func (d *decoder) bytes() []byte {
	n := d.count()
	if d.err != nil {
		return nil
	}
	out := d.b[:n:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) string() string {
	b := d.bytes()
	if d.shared && len(b) > 0 {
		// Safe only because the caller promised b is immutable: the
		// string keeps the whole blob alive and sees it as it is.
		return unsafe.String(&b[0], len(b))
	}
	return string(b)
}

func (d *decoder) meta(e *Entry) {
	if len(d.b) < len(codecMagic)+1 || string(d.b[:len(codecMagic)]) != codecMagic {
		d.fail("bad magic")
		return
	}
	if v := d.b[len(codecMagic)]; v != codecVersion {
		d.fail("unknown version %d", v)
		return
	}
	d.b = d.b[len(codecMagic)+1:]
	e.Kind = Kind(d.byte1())
	if e.Kind > KindVary {
		d.fail("unknown kind %d", e.Kind)
	}
	e.NoStale = d.byte1()&flagNoStale != 0
	status := d.uvarint()
	if d.err == nil && (status < 100 || status > 999) {
		d.fail("status %d", status)
	}
	e.Status = int(status)
	e.RequestTime = fromUnixNano(d.varint())
	e.ResponseTime = fromUnixNano(d.varint())
	e.InitialAge = time.Duration(d.varint())
	e.Lifetime = time.Duration(d.varint())
	e.StaleWhileRevalidate = time.Duration(d.varint())
	e.StaleIfError = time.Duration(d.varint())
	e.Expires = fromUnixNano(d.varint())
	e.Path = d.string()
	if n := d.count(); n > 0 {
		e.VaryFields = d.strings(n)
		for range n {
			e.VaryFields = append(e.VaryFields, d.string())
		}
	}
	n := d.count()
	e.Header = make(http.Header, n+d.room)
	// All values share one array (most fields have one value), capped per
	// field as Header.Clone does so that an Add to one cannot spill into
	// the next: one allocation instead of one per field.
	values := d.strs[len(d.strs):] // the header is decoded last: all the room left
	if cap(values) < n {
		values = make([]string, 0, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		k := d.string()
		start, m := len(values), d.count()
		for range m {
			values = append(values, d.string())
		}
		e.Header[k] = values[start:len(values):len(values)]
	}
	e.Generation = d.uvarint()
}

func (d *decoder) finish() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	return d.err
}
