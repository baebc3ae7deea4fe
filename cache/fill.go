package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// fill is a large body being written to a streaming tier while viewers
// read it: the first viewer and every viewer who asks before it is whole
// read along from the tier's file (one origin request, no body in memory).
// It is the Content of its entry until the entry is committed.
type fill struct {
	c     *Cache
	key   string
	entry *Entry // metadata; Content is the fill itself
	w     BodyWriter
	size  int64 // Content-Length, -1 unknown
	// cancel ends the origin exchange, failing the fill.
	cancel context.CancelFunc

	mu      sync.Mutex
	n       int64         // bytes written
	done    bool          // no more bytes will come
	err     error         // why the fill failed, if it did
	changed chan struct{} // closed at each change
	refs    int           // the copier and open readers; the writer closes at 0
}

// errFillGone is Open on a fill already finished and released: the entry
// is in the store by then, or failed.
var errFillGone = errors.New("cache: fill finished")

func (f *fill) Size() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.size
}

// Open reads along from off, waiting for bytes as they arrive.
func (f *fill) Open(off int64) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refs == 0 {
		return nil, errFillGone
	}
	f.refs++
	return &fillReader{f: f, off: off}, nil
}

func (f *fill) release() {
	f.mu.Lock()
	f.refs--
	last := f.refs == 0
	f.mu.Unlock()
	if last {
		_ = f.w.Close()
	}
}

// advance records n more bytes written, or the end (err nil: complete).
func (f *fill) advance(n int64, end bool, err error) {
	f.mu.Lock()
	f.n += n
	if end {
		f.done, f.err = true, err
	}
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// run copies the origin's body into the tier, then commits it. It owns
// body and f.cancel. A stall longer than stall fails the fill; so does a
// body other than Content-Length promised.
// A body without Content-Length that turns out longer than limit is still
// relayed whole to its viewers, but not stored.
func (f *fill) run(ctx context.Context, body io.ReadCloser, prefix []byte, stall time.Duration, limit int64) {
	cancel := f.cancel
	defer f.c.filling.Done()
	defer f.release()
	defer cancel()
	defer body.Close()
	defer f.c.fills.Delete(f.key)
	fail := func(err error) {
		f.w.Abort()
		f.advance(0, true, fmt.Errorf("origin fetch: %w", err))
		f.c.o.Logger.Warn().Err(err).Str("path", f.entry.Path).Msg("cache: large object fill failed; not stored")
	}
	if len(prefix) > 0 {
		if _, err := f.w.Write(prefix); err != nil {
			fail(err)
			return
		}
		f.advance(int64(len(prefix)), false, nil)
	}
	timer := time.AfterFunc(stall, cancel)
	defer timer.Stop()
	buf := make([]byte, 64<<10)
	total := int64(len(prefix))
	for {
		n, err := body.Read(buf)
		timer.Reset(stall)
		if n > 0 {
			total += int64(n)
			if _, werr := f.w.Write(buf[:n]); werr != nil {
				fail(werr)
				return
			}
			f.advance(int64(n), false, nil)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				err = fmt.Errorf("%w (no bytes for %s)", err, stall)
			}
			fail(fmt.Errorf("read body: %w", err))
			return
		}
	}
	if f.size >= 0 && total != f.size {
		fail(fmt.Errorf("read body: got %d of %d bytes: %w", total, f.size, io.ErrUnexpectedEOF))
		return
	}
	f.mu.Lock()
	f.size = total
	f.mu.Unlock()
	if total > limit {
		f.w.Abort()
		f.c.o.Logger.Info().Int64("bytes", total).Str("path", f.entry.Path).Msg("cache: object over max_object_size relayed, not stored")
	} else if err := f.w.Commit(context.WithoutCancel(ctx)); err != nil {
		// The viewers have the whole body; only the storing failed.
		f.c.o.Logger.Warn().Err(err).Str("path", f.entry.Path).Msg("cache: large object not stored")
	}
	f.advance(0, true, nil)
}

// rangeAhead is how far beyond a fill's progress a Range may start before
// it is fetched from the origin on its own instead of waiting for the fill.
const rangeAhead = 8 << 20

// rangeBeyond reports whether r asks for a single range starting more than
// rangeAhead bytes beyond what the fill has received.
func (f *fill) rangeBeyond(r *http.Request) bool {
	rg := r.Header.Get("Range")
	if rg == "" || r.Method != http.MethodGet {
		return false
	}
	f.mu.Lock()
	size, n, done := f.size, f.n, f.done
	f.mu.Unlock()
	if size < 0 || done {
		return false
	}
	start, _, ok, multi := parseRange(rg, size)
	return ok && !multi && start > n+rangeAhead
}

// fillReader is one viewer reading along.
type fillReader struct {
	f      *fill
	off    int64
	closed bool
}

func (r *fillReader) Read(p []byte) (int, error) {
	f := r.f
	for {
		f.mu.Lock()
		n, done, err, ch := f.n, f.done, f.err, f.changed
		f.mu.Unlock()
		if err != nil {
			return 0, err
		}
		if r.off < n {
			k, rerr := f.w.ReadAt(p[:min(int64(len(p)), n-r.off)], r.off)
			r.off += int64(k)
			if k > 0 {
				return k, nil
			}
			if rerr != nil && rerr != io.EOF {
				return 0, fmt.Errorf("cache: read along a fill: %w", rerr)
			}
		}
		if done {
			return 0, io.EOF
		}
		<-ch
	}
}

func (r *fillReader) Close() error {
	if !r.closed {
		r.closed = true
		r.f.release()
	}
	return nil
}

// respondContent answers from an entry whose body is Content (a disk
// tier's large object or a fill): Respond's status and header, then the
// single byte range or the whole body as a stream. A body of unknown size
// (a fill without Content-Length) is sent whole, as a server may ignore
// Range.
func (c *Cache) respondContent(e *Entry, r *http.Request, o Outcome) (*Response, error) {
	cp := *e
	cp.Body, cp.Content = nil, nil
	rr := r
	if r.Header.Get("Range") != "" {
		rr = r.Clone(r.Context())
		rr.Header.Del("Range")
	}
	status, h, _ := Respond(&cp, rr, c.o.Now())
	resp := &Response{Outcome: o, Status: status, Header: h, Entry: e}
	if status == http.StatusNotModified || e.Status == http.StatusNoContent {
		return resp, nil
	}
	size := e.Content.Size()
	start, end := int64(0), size-1
	if size >= 0 {
		h.Set("Content-Length", strconv.FormatInt(size, 10))
	} else {
		h.Del("Content-Length")
	}
	if rg := r.Header.Get("Range"); rg != "" && size >= 0 && status == http.StatusOK && ifRangeHolds(e, r.Header.Get("If-Range")) {
		s, en, ok, multi := parseRange(rg, size)
		switch {
		case multi:
		case !ok:
			h.Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
			h.Set("Content-Length", "0")
			h.Del("Content-Type")
			resp.Status = http.StatusRequestedRangeNotSatisfiable
			resp.Stream = http.NoBody
			return resp, nil
		default:
			start, end = s, en
			h.Set("Content-Range", "bytes "+strconv.FormatInt(s, 10)+"-"+strconv.FormatInt(en, 10)+"/"+strconv.FormatInt(size, 10))
			h.Set("Content-Length", strconv.FormatInt(en-s+1, 10))
			resp.Status = http.StatusPartialContent
		}
	}
	if r.Method == http.MethodHead {
		resp.Stream = http.NoBody
		return resp, nil
	}
	body, err := e.Content.Open(start)
	if err != nil {
		return nil, err
	}
	if size >= 0 {
		body = &limitedBody{Reader: io.LimitReader(body, end-start+1), Closer: body}
	}
	resp.Stream = body
	return resp, nil
}

type limitedBody struct {
	io.Reader
	io.Closer
}

// DefaultMaxObjectSize is a policy's largest stored body when it sets none.
const DefaultMaxObjectSize = 1 << 30

// storeRequest is a storable origin response on its way into the store.
type storeRequest struct {
	key               string
	viewer            http.Header // selects the variant of a Vary response
	kp                KeyPolicy
	req               *http.Request
	resp              *http.Response
	d                 Decision
	reqTime, respTime time.Time
	limit             int64
	cancel            context.CancelFunc // ends the origin exchange
	prefix            []byte             // body bytes read before deciding to stream
	detail            string             // why the body was not stored
}

// storeBody stores a response the policy allows: a body up to InlineSize is
// read whole and put in every tier that takes it; a larger one (up to the
// policy's limit) starts a fill of the streaming tier. A nil result means
// the body cannot be stored (sr.detail says why); what was read of it is
// in sr.prefix. An error is a body the origin broke.
func (c *Cache) storeBody(_, octx context.Context, sr *storeRequest) (*fetchResult, error) {
	resp := sr.resp
	sr.detail = "too-large"
	if resp.ContentLength > sr.limit {
		return nil, nil
	}
	inline := min(c.o.InlineSize, sr.limit)
	if resp.ContentLength <= inline {
		body, complete, err := readBody(resp, inline)
		if err != nil {
			return nil, fmt.Errorf("origin fetch: read body: %w", err)
		}
		if complete {
			e := NewEntry(resp.StatusCode, resp.Header, body, sr.d, sr.req.URL.Path, sr.reqTime, sr.respTime)
			stored, detail := c.put(octx, sr.key, selectingHeader(sr.viewer, sr.kp, e.VaryFields), e)
			return &fetchResult{entry: e, outcome: Miss, stored: stored, detail: detail}, nil
		}
		sr.prefix = body
		if inline >= sr.limit {
			return nil, nil // over the limit already
		}
	}
	ss, ok := c.store.(StreamStore)
	if !ok || !canStream(c.store) {
		return nil, nil
	}
	e := NewEntry(resp.StatusCode, resp.Header, nil, sr.d, sr.req.URL.Path, sr.reqTime, sr.respTime)
	ttl := e.StorageTTL(c.o.Now(), c.o.KeepStale)
	if ttl <= 0 {
		return nil, nil
	}
	skey := c.storeKey(octx, sr.key, selectingHeader(sr.viewer, sr.kp, e.VaryFields), e, ttl)
	w, err := ss.Create(octx, skey, e, ttl)
	switch {
	case errors.Is(err, ErrNotAdmitted):
		sr.detail = "not-admitted"
		return nil, nil
	case err != nil:
		c.logStoreErr(err, "create")
		return nil, nil
	}
	f := &fill{c: c, key: skey, entry: e, w: w, size: resp.ContentLength, cancel: sr.cancel, changed: make(chan struct{}), refs: 1}
	e.Content = f
	c.fills.Store(skey, f)
	c.filling.Add(1)
	return &fetchResult{fill: f, outcome: Miss, stored: true}, nil
}

// maxObjectSize is the largest body stored under p.
func (c *Cache) maxObjectSize(p Policy) int64 {
	lim := p.MaxObjectSize
	if lim <= 0 {
		lim = DefaultMaxObjectSize
	}
	if c.o.MaxObjectSize > 0 {
		lim = min(lim, c.o.MaxObjectSize)
	}
	return lim
}

// inlineSize is the default Options.InlineSize for a store.
func inlineSize(s Store) int64 {
	if canStream(s) {
		return 1 << 20
	}
	if l, ok := s.(ObjectLimiter); ok && l.MaxObjectSize() > 0 {
		return l.MaxObjectSize()
	}
	return 64 << 20
}

// canStream reports whether a store takes streamed bodies: a StreamStore
// does, unless it says otherwise (a Tiered store without a streaming tier).
func canStream(s Store) bool {
	if cs, ok := s.(interface{ CanStream() bool }); ok {
		return cs.CanStream()
	}
	_, ok := s.(StreamStore)
	return ok
}

// detailFor turns Decide's reason into an RFC 9211 detail: the reason as a
// token when it is one ("no-store", "private"), else as a quoted string.
func detailFor(reason string) string {
	if reason == "" {
		return ""
	}
	for _, r := range reason {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return strconv.Quote(reason)
		}
	}
	return reason
}

// readBody reads up to limit bytes. complete is false when the body is
// larger (what was read is returned so the caller can stream the rest); an
// error, or fewer bytes than Content-Length promised, is an error.
func readBody(resp *http.Response, limit int64) (body []byte, complete bool, err error) {
	if resp.ContentLength > limit {
		return nil, false, nil
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(body)) > limit {
		return body, false, nil
	}
	if resp.ContentLength >= 0 && int64(len(body)) != resp.ContentLength {
		return nil, false, fmt.Errorf("got %d of %d bytes: %w", len(body), resp.ContentLength, io.ErrUnexpectedEOF)
	}
	return body, true, nil
}
