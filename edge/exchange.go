package edge

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/edgegate/edgegate/edge/accesslog"
	"github.com/edgegate/edgegate/internal/tlsname"
	"github.com/rs/zerolog"
)

// exchange follows one viewer request from arrival to its log line. It
// wraps the ResponseWriter to learn what was actually sent.
type exchange struct {
	w     http.ResponseWriter
	r     *http.Request
	start time.Time
	id    string
	st    *state        // the config snapshot the request runs on
	dist  *distribution // nil for an unknown host
	log   zerolog.Logger

	mu          sync.Mutex
	status      int // 0 until headers are written
	headerBytes int64
	bodyBytes   int64
	firstByte   time.Duration
	writeErr    error // the viewer connection failed while we wrote
	originErr   error // the origin failed while we read its body
	result      accesslog.ResultType
	respResult  accesslog.ResultType
	detailed    accesslog.ResultType
	reqBody     *countingReader
	timing      edgeTimings

	// rhp is the response headers policy of the behavior (or, before one is
	// matched, the distribution's default behavior); set by route only.
	rhp *respHeaders
	// altSvc advertises HTTP/3 on HTTP/1.1 and HTTP/2 responses (a shared
	// slice, never written through); set by route only.
	altSvc []string

	// ctx and url back the routed request serveViewer makes: its context
	// carries the exchange and routing rewrites its URL, a copy of the one
	// received. They live here so that a request costs one allocation
	// less for each.
	ctx exchangeCtx
	url url.URL

	// fetch is the origin side of a cached behavior's request, here for
	// the same reason (serveCached only).
	fetch cachedFetch
}

// exchangeCtx is the routed request's context: its parent with the
// exchange under exchangeKey, as context.WithValue would make it.
type exchangeCtx struct {
	context.Context
	ex *exchange
}

// Value implements context.Context.
func (c *exchangeCtx) Value(key any) any {
	if _, ok := key.(exchangeKey); ok {
		return c.ex
	}
	return c.Context.Value(key)
}

// newRequestID returns 18 random bytes in URL-safe base64. An id is no
// secret (every response shows its own) but must be unique: 144 bits from
// math/rand/v2's global generator (the runtime's ChaCha8, seeded by the
// operating system) are, without the getrandom call per request that
// crypto/rand cost, more than the rest of the id.
func newRequestID() string {
	var b [24]byte
	binary.LittleEndian.PutUint64(b[0:], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	binary.LittleEndian.PutUint64(b[16:], rand.Uint64())
	return base64.RawURLEncoding.EncodeToString(b[:18])
}

func newExchange(w http.ResponseWriter, r *http.Request) *exchange {
	ex := &exchange{w: w, r: r, start: time.Now(), id: newRequestID()}
	if r.Body != nil && r.Body != http.NoBody {
		ex.reqBody = &countingReader{rc: r.Body}
		r.Body = ex.reqBody
	}
	return ex
}

// classify records the result types as the exchange goes; finish may still
// override them when the response is cut.
func (ex *exchange) classify(result, response, detailed accesslog.ResultType) {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	ex.result, ex.respResult, ex.detailed = result, response, detailed
}

// bodyBroken reports whether reading the viewer's request body failed.
func (ex *exchange) bodyBroken() bool {
	if ex.reqBody == nil {
		return false
	}
	_, err := ex.reqBody.stats()
	return err != nil
}

// Header implements http.ResponseWriter.
func (ex *exchange) Header() http.Header { return ex.w.Header() }

// WriteHeader implements http.ResponseWriter and notes the status and the
// size of the header block as the viewer will receive it.
func (ex *exchange) WriteHeader(code int) {
	ex.mu.Lock()
	final := ex.status == 0 && code >= 200
	ex.mu.Unlock()
	if final && ex.altSvc != nil {
		ex.w.Header()["Alt-Svc"] = ex.altSvc
	}
	if final && ex.rhp != nil {
		ex.rhp.apply(ex.w.Header(), ex)
	}
	ex.mu.Lock()
	if ex.status == 0 && code >= 200 {
		ex.status = code
		ex.firstByte = time.Since(ex.start)
		ex.headerBytes = headerSize(code, ex.w.Header())
	}
	ex.mu.Unlock()
	ex.w.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (ex *exchange) Write(p []byte) (int, error) {
	ex.mu.Lock()
	if ex.status == 0 {
		ex.mu.Unlock()
		ex.WriteHeader(http.StatusOK)
		ex.mu.Lock()
	}
	ex.mu.Unlock()
	n, err := ex.w.Write(p)
	ex.mu.Lock()
	ex.bodyBytes += int64(n)
	if err != nil && ex.writeErr == nil {
		ex.writeErr = err
	}
	ex.mu.Unlock()
	return n, err
}

// Flush lets streaming responses through (ReverseProxy finds it via
// http.ResponseController).
//
// A flush of the header block alone is put off when the body's length is
// known: ReverseProxy asks for one before copying the body, which cost a
// write (a TLS record, a TCP segment) of its own on every response. The
// header then leaves with the first body bytes, as nginx sends it. A
// response of unknown length (chunked, server-sent events) still gets its
// header at once: a viewer may be waiting on it before any event comes.
func (ex *exchange) Flush() {
	ex.mu.Lock()
	headerOnly := ex.status != 0 && ex.bodyBytes == 0 && field(ex.w.Header(), "Content-Length") != ""
	ex.mu.Unlock()
	if headerOnly {
		return
	}
	if err := http.NewResponseController(ex.w).Flush(); err != nil {
		ex.mu.Lock()
		if ex.writeErr == nil && !errors.Is(err, http.ErrNotSupported) {
			ex.writeErr = err
		}
		ex.mu.Unlock()
	}
}

// flushHeld sends what Flush held back, before a cut: the viewer then has
// the status it is logged with. Errors are moot, the response is aborted.
func (ex *exchange) flushHeld() {
	ex.mu.Lock()
	held := ex.status != 0 && ex.bodyBytes == 0
	ex.mu.Unlock()
	if held {
		_ = http.NewResponseController(ex.w).Flush()
	}
}

// Unwrap exposes the underlying writer to http.ResponseController.
func (ex *exchange) Unwrap() http.ResponseWriter { return ex.w }

// headerSize estimates the bytes of the status line and header block.
func headerSize(code int, h http.Header) int64 {
	n := len("HTTP/1.1 ") + 3 + 1 + len(http.StatusText(code)) + 2
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + 2 + len(v) + 2
		}
	}
	n += len("Date: Mon, 02 Jan 2006 15:04:05 GMT\r\n") + 2
	return int64(n)
}

func requestHeaderSize(r *http.Request) int64 {
	n := len(r.Method) + 1 + len(r.RequestURI) + 1 + len(r.Proto) + 2 + len("Host: ") + len(r.Host) + 2
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + 2 + len(v) + 2
		}
	}
	return int64(n + 2)
}

// countingReader counts request body bytes and remembers a read failure
// (the viewer hanging up while sending).
type countingReader struct {
	rc  io.ReadCloser
	mu  sync.Mutex
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	c.mu.Lock()
	c.n += int64(n)
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	return n, err
}

func (c *countingReader) Close() error { return c.rc.Close() }

func (c *countingReader) stats() (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n, c.err
}

// originBody wraps an origin response body to tell an origin failure
// apart from a viewer failure when the copy to the viewer breaks.
type originBody struct {
	io.ReadCloser
	ex *exchange
}

func (b *originBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	// A read cancelled because the viewer went away is the viewer's doing,
	// not the origin's.
	if err != nil && err != io.EOF && b.ex.r.Context().Err() == nil {
		b.ex.mu.Lock()
		if b.ex.originErr == nil {
			b.ex.originErr = err
		}
		b.ex.mu.Unlock()
	}
	return n, err
}

// record builds the standard log line for the finished exchange. It is
// returned by value so that it can live on the caller's stack.
func (ex *exchange) record(location string, includeCookies bool, end time.Time) accesslog.Record {
	r := ex.r
	ex.mu.Lock()
	defer ex.mu.Unlock()
	rec := accesslog.Record{
		Time:               end.UTC(),
		Location:           location,
		BytesSent:          ex.headerBytes + ex.bodyBytes,
		Method:             r.Method,
		URIStem:            r.URL.EscapedPath(),
		Status:             ex.status,
		Referer:            field(r.Header, "Referer"),
		UserAgent:          field(r.Header, "User-Agent"),
		Query:              r.URL.RawQuery,
		ResultType:         ex.result,
		RequestID:          ex.id,
		HostHeader:         r.Host,
		Protocol:           "http",
		BytesReceived:      requestHeaderSize(r),
		TimeTaken:          end.Sub(ex.start),
		ForwardedFor:       field(r.Header, "X-Forwarded-For"),
		ResponseResultType: ex.respResult,
		ProtocolVersion:    r.Proto,
		TimeToFirstByte:    ex.firstByte,
		DetailedResultType: ex.detailed,
		ContentType:        field(ex.w.Header(), "Content-Type"),
		ContentLength:      -1,
		RangeStart:         -1,
		RangeEnd:           -1,
	}
	if ex.dist != nil {
		rec.Host = ex.dist.cfg.ID
	}
	if includeCookies {
		rec.Cookie = field(r.Header, "Cookie")
	}
	if host, port, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		rec.ClientIP = host
		rec.ClientPort, _ = strconv.Atoi(port)
	} else {
		rec.ClientIP = r.RemoteAddr
	}
	if r.TLS != nil {
		rec.Protocol = "https"
		rec.SSLProtocol = tlsname.Version(r.TLS.Version)
		rec.SSLCipher = tlsname.Cipher(r.TLS.CipherSuite)
	}
	if strings.EqualFold(field(r.Header, "Upgrade"), "websocket") {
		rec.Protocol = map[string]string{"http": "ws", "https": "wss"}[rec.Protocol]
	}
	if ex.reqBody != nil {
		n, _ := ex.reqBody.stats()
		rec.BytesReceived += n
	}
	if cl := field(ex.w.Header(), "Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil {
			rec.ContentLength = n
		}
	}
	if cr := field(ex.w.Header(), "Content-Range"); cr != "" {
		rec.RangeStart, rec.RangeEnd = parseContentRange(cr)
	}
	return rec
}

// field is h.Get for a key already in canonical form: Get canonicalizes
// its key on every call, and the log line reads eight fields per request.
func field(h http.Header, canonicalKey string) string {
	if v := h[canonicalKey]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// parseContentRange reads "bytes START-END/SIZE".
func parseContentRange(v string) (start, end int64) {
	spec, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return -1, -1
	}
	spec, _, _ = strings.Cut(spec, "/")
	a, b, ok := strings.Cut(spec, "-")
	if !ok {
		return -1, -1
	}
	s, err1 := strconv.ParseInt(a, 10, 64)
	e, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil {
		return -1, -1
	}
	return s, e
}
