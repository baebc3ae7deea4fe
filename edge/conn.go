package edge

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/edgegate/edgegate/edge/accesslog"
	"github.com/edgegate/edgegate/internal/tlsname"
	"golang.org/x/net/http2/hpack"
)

// Requests that net/http refuses before a handler runs (a malformed request
// line or header, headers over the limit, an unknown transfer coding,
// HTTP/2 protocol errors) never reach serveViewer, yet each must end in a
// standard log line. The edge therefore sees every viewer connection
// through a viewerConn: the HTTP server reads and writes plaintext through
// it (the edge terminates TLS itself and hands the server the decrypted
// stream), so it sees what the server answers while no handler runs, and
// logs that answer when the connection closes. This is sturdier than
// reading the server's ErrorLog, which says nothing about most refusals.

// maxCapturedLine bounds the request line kept for a refused request.
const maxCapturedLine = 2048

// viewerConn is one viewer connection as the HTTP server sees it.
type viewerConn struct {
	net.Conn
	s       *Server
	tls     *tls.ConnectionState // nil on port 80
	h2      bool                 // HTTP/2 was negotiated: frames, not HTTP/1 text
	local   string               // "http" or "https"
	tracked bool                 // counted in Server.openConns

	mu            sync.Mutex
	handlers      int       // handlers running for this connection
	periodStart   time.Time // when the request being read started to arrive
	periodRead    int64     // bytes read since the last handler ended (HTTP/1)
	periodWritten int64     // bytes written while no handler ran
	line          []byte    // the request line being read (HTTP/1)
	lineDone      bool
	hdr           headerScan
	status        []byte // the server's own answer while no handler ran
	frames        frameScan
	h2BodyErrs    int  // HTTP/2 request bodies a handler found broken (their stream resets are logged by the handler)
	prefaceN      int  // bytes of the HTTP/2 client preface checked so far (read side only)
	badPreface    bool // HTTP/2 was negotiated but the client did not send the preface
	closeOnce     sync.Once

	// HTTP/2 response header blocks held back for their body (holdHeaders).
	wmu     sync.Mutex // orders the connection's writes and the flush of held bytes
	held    []byte
	holdT   *time.Timer
	heldErr error // a flush of held bytes failed: the next Write returns it
}

// h2HeaderHold bounds how long an HTTP/2 response header block waits for
// the first bytes of its body before it leaves alone.
const h2HeaderHold = time.Millisecond

// maxHeld bounds the bytes held back on one connection.
const maxHeld = 16 << 10

// viewerConnH1 is a TLS viewerConn that is not HTTP/2: it reports its TLS
// state so that net/http sets Request.TLS. An HTTP/2 viewerConn must not,
// or net/http would not take it as HTTP/2 (serveViewer sets Request.TLS
// for those).
type viewerConnH1 struct{ *viewerConn }

// ConnectionState is what net/http looks for to set Request.TLS.
func (c viewerConnH1) ConnectionState() tls.ConnectionState { return *c.tls }

type viewerConnKey struct{}

// viewerConnFrom returns the connection a request came on.
func viewerConnFrom(ctx context.Context) *viewerConn {
	vc, _ := ctx.Value(viewerConnKey{}).(*viewerConn)
	return vc
}

// connContext is the servers' ConnContext: it makes the viewerConn
// reachable from the request.
func connContext(ctx context.Context, c net.Conn) context.Context {
	switch vc := c.(type) {
	case *viewerConn:
		return context.WithValue(ctx, viewerConnKey{}, vc)
	case viewerConnH1:
		return context.WithValue(ctx, viewerConnKey{}, vc.viewerConn)
	}
	return ctx
}

func (s *Server) newViewerConn(c net.Conn, state *tls.ConnectionState) net.Conn {
	vc := &viewerConn{Conn: c, s: s, tls: state, local: "http", tracked: true}
	s.openConns.Add(1)
	if state == nil {
		return vc
	}
	vc.local = "https"
	if state.NegotiatedProtocol == "h2" {
		vc.h2 = true
		return vc
	}
	return viewerConnH1{vc}
}

// errBadPreface ends an HTTP/2 connection that does not start with the
// client preface.
var errBadPreface = errors.New("edge: HTTP/2 negotiated but the client preface is missing")

// Read notes the request line and the framing headers of the request being
// read. On an HTTP/2 connection it checks the client preface first: the
// server gets the stream as unencrypted HTTP/2, which would otherwise read
// anything else as HTTP/1 (RFC 9113 §3.4 wants a connection error).
func (c *viewerConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.h2 && c.prefaceN < len(http2ClientPreface) {
		k := min(n, len(http2ClientPreface)-c.prefaceN)
		if string(p[:k]) != http2ClientPreface[c.prefaceN:c.prefaceN+k] {
			c.mu.Lock()
			c.badPreface = true
			c.mu.Unlock()
			// Closed here, before net/http answers it as an HTTP/1 request.
			_ = c.Conn.Close()
			return 0, errBadPreface
		}
		c.prefaceN += k
	}
	if n > 0 && !c.h2 {
		c.mu.Lock()
		if c.periodRead == 0 {
			c.periodStart = time.Now()
		}
		c.periodRead += int64(n)
		b := p[:n]
		if !c.lineDone {
			i := bytes.IndexByte(b, '\n')
			take := b
			if i >= 0 {
				take, c.lineDone = b[:i], true
			}
			room := maxCapturedLine - len(c.line)
			if len(take) > room {
				take, c.lineDone = take[:room], true
			}
			c.line = append(c.line, take...)
		}
		c.hdr.feed(b)
		c.mu.Unlock()
	}
	return n, err
}

// Write notes what the server answers while no handler runs (HTTP/1), or
// the stream and connection errors it sends (HTTP/2).
func (c *viewerConn) Write(p []byte) (int, error) {
	if c.h2 { // set before the connection is served, never changed
		// Frames are noted before they leave: once the viewer has them it
		// may hang up, and the server's Close (which logs what was
		// refused) must not overtake this Write.
		c.mu.Lock()
		c.frames.feed(p)
		c.mu.Unlock()
		return c.writeH2(p)
	}
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.mu.Lock()
		if c.handlers == 0 && c.periodRead > 0 {
			c.periodWritten += int64(n)
			if len(c.status) == 0 && bytes.HasPrefix(p, []byte("HTTP/1.")) {
				c.status = append([]byte(nil), p[:min(n, 128)]...)
			}
		}
		c.mu.Unlock()
	}
	return n, err
}

// writeH2 writes what the HTTP/2 server flushes, holding back a response
// header block whose body is still to come (holdHeaders) and sending it
// with the next write: Go's server flushes each frame it writes when no
// other is queued, and the handler's DATA frame is queued only once the
// HEADERS frame has been written, so every response cost two writes (two
// TLS records, two system calls, two TCP segments) where nginx sends one.
func (c *viewerConn) writeH2(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.heldErr != nil {
		return 0, c.heldErr
	}
	if holdHeaders(p) && len(c.held)+len(p) <= maxHeld {
		c.held = append(c.held, p...)
		if c.holdT == nil {
			c.holdT = time.AfterFunc(h2HeaderHold, c.flushHeld)
		} else if len(c.held) == len(p) {
			c.holdT.Reset(h2HeaderHold)
		}
		return len(p), nil
	}
	if len(c.held) == 0 {
		return c.Conn.Write(p)
	}
	c.holdT.Stop()
	buf := append(c.held, p...)
	c.held = buf[:0]
	if cap(c.held) > maxHeld {
		c.held = nil // a large write: don't keep its buffer
	}
	if _, err := c.Conn.Write(buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

// flushHeld sends held header blocks whose body did not follow in time,
// and before the connection closes.
func (c *viewerConn) flushHeld() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if len(c.held) == 0 || c.heldErr != nil {
		return
	}
	if _, err := c.Conn.Write(c.held); err != nil {
		c.heldErr = err
	}
	c.held = c.held[:0]
}

// closeHeld sends what is held before the connection closes, unless a
// write is under way: Close must not wait for a write to a viewer that
// does not read (closing is what unblocks it), nor block long on one.
func (c *viewerConn) closeHeld() {
	if !c.wmu.TryLock() {
		return
	}
	defer c.wmu.Unlock()
	if c.holdT != nil {
		c.holdT.Stop()
	}
	if len(c.held) > 0 && c.heldErr == nil {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = c.Conn.Write(c.held)
	}
	c.held, c.heldErr = nil, net.ErrClosed
}

// holdHeaders reports whether p is whole HTTP/2 frames, each a HEADERS
// frame that does not end its stream or a CONTINUATION: header blocks
// whose response body (or final response, after a 1xx) is still to come.
func holdHeaders(p []byte) bool {
	if len(p) == 0 {
		return false
	}
	for len(p) > 0 {
		if len(p) < 9 {
			return false
		}
		n := int(p[0])<<16 | int(p[1])<<8 | int(p[2])
		switch typ, flags := p[3], p[4]; {
		case typ == h2FrameHeaders && flags&h2FlagEndStream == 0:
		case typ == h2FrameContinuation:
		default:
			return false
		}
		if len(p) < 9+n {
			return false
		}
		p = p[9+n:]
	}
	return true
}

// CloseWrite lets net/http half-close before it hangs up on a refused
// request, as it does on a bare connection.
func (c *viewerConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// handlerStarted and handlerDone bracket serveViewer.
func (c *viewerConn) handlerStarted() {
	c.mu.Lock()
	c.handlers++
	c.mu.Unlock()
}

func (c *viewerConn) handlerDone(bodyBroken bool) {
	c.mu.Lock()
	c.handlers--
	if c.h2 {
		if bodyBroken {
			c.h2BodyErrs++
		}
	} else {
		c.periodRead, c.periodWritten = 0, 0
		c.line, c.lineDone, c.status = c.line[:0], false, nil
		c.hdr = headerScan{name: c.hdr.name[:0]} // its buffer serves the next request
	}
	c.mu.Unlock()
}

// conflictingFraming reports a request with both Content-Length and
// Transfer-Encoding (RFC 9112 §6.1: answer, then close the connection).
// net/http drops the Content-Length before a handler sees the request.
func (c *viewerConn) conflictingFraming() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hdr.contentLength && c.hdr.transferEncoding
}

// Close logs the requests the server refused on this connection, then
// closes it.
func (c *viewerConn) Close() error {
	if c.h2 {
		c.closeHeld()
	}
	c.closeOnce.Do(func() {
		for _, rf := range c.refusals() {
			c.s.logRefused(c, rf)
		}
		if c.tracked {
			c.s.openConns.Done()
		}
	})
	return c.Conn.Close()
}

// refusal is one request the server answered (or dropped) by itself.
type refusal struct {
	status   int
	detailed accesslog.ResultType
	line     string // the request line, "" when unknown
	proto    string
	read     int64
	written  int64
	start    time.Time
}

func (c *viewerConn) refusals() []refusal {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.h2 {
		var out []refusal
		resets := c.frames.resets - c.h2BodyErrs
		for range max(resets, 0) {
			out = append(out, refusal{detailed: accesslog.ResultInvalidRequest, proto: "HTTP/2.0", start: time.Now()})
		}
		for _, st := range c.frames.refused {
			// net/http's own 400 (a connection-specific header, a bad TE) and
			// 431 (header list too large) are both about the header block.
			out = append(out, refusal{status: st, detailed: accesslog.ResultInvalidRequestHeader, proto: "HTTP/2.0", start: time.Now()})
		}
		if c.badPreface {
			out = append(out, refusal{detailed: accesslog.ResultInvalidRequest, proto: "HTTP/2.0", start: time.Now()})
		}
		if c.frames.goaway != 0 {
			out = append(out, refusal{detailed: accesslog.ResultInvalidRequest, proto: "HTTP/2.0", start: time.Now()})
		}
		return out
	}
	if c.handlers > 0 || c.periodRead == 0 {
		return nil
	}
	rf := refusal{line: string(c.line), read: c.periodRead, written: c.periodWritten, start: c.periodStart,
		detailed: accesslog.ResultClientHungUpRequest}
	// "HTTP/1.1 431 Request Header Fields Too Large\r\n..."
	if f := strings.Fields(string(c.status)); len(f) >= 2 {
		rf.status, _ = strconv.Atoi(f[1])
		rf.detailed = accesslog.ResultInvalidRequest
		first, _, _ := strings.Cut(string(c.status), "\r\n")
		// net/http's 400 rarely says why; a well-formed request line means
		// the header block was at fault.
		if rf.status == 431 || strings.Contains(strings.ToLower(first), "header") ||
			(rf.status == 400 && c.lineDone && wellFormedRequestLine(string(c.line))) {
			rf.detailed = accesslog.ResultInvalidRequestHeader
		}
	}
	return []refusal{rf}
}

// wellFormedRequestLine reports "METHOD TARGET HTTP/1.x".
func wellFormedRequestLine(line string) bool {
	f := strings.Fields(line)
	return len(f) == 3 && strings.HasPrefix(f[1], "/") && strings.HasPrefix(f[2], "HTTP/1.")
}

// logRefused writes the standard log line and counts the metric of a
// request that no handler saw.
func (s *Server) logRefused(c *viewerConn, rf refusal) {
	st := s.state()
	end := time.Now()
	rec := &accesslog.Record{
		Time: end.UTC(), Location: st.cfg.Edge.Location, Status: rf.status,
		ResultType: accesslog.ResultError, ResponseResultType: accesslog.ResultError, DetailedResultType: rf.detailed,
		RequestID: newRequestID(), Protocol: c.local, BytesReceived: rf.read, BytesSent: rf.written,
		TimeTaken: end.Sub(rf.start), ProtocolVersion: rf.proto, ContentLength: -1, RangeStart: -1, RangeEnd: -1,
	}
	if method, rest, ok := strings.Cut(rf.line, " "); ok {
		target, proto, _ := strings.Cut(strings.TrimSpace(rest), " ")
		rec.Method = method
		rec.ProtocolVersion = strings.TrimSpace(proto)
		rec.URIStem, rec.Query, _ = strings.Cut(target, "?")
	}
	if host, port, err := net.SplitHostPort(c.RemoteAddr().String()); err == nil {
		rec.ClientIP = host
		rec.ClientPort, _ = strconv.Atoi(port)
	}
	if c.tls != nil {
		rec.SSLProtocol = tlsname.Version(c.tls.Version)
		rec.SSLCipher = tlsname.Cipher(c.tls.CipherSuite)
	}
	s.stats.count(rec.ResultType, rec.DetailedResultType, rec.Status)
	s.log.Debug().Str("detailed_result_type", string(rf.detailed)).Int("status", rf.status).
		Str("client", c.RemoteAddr().String()).Msg("request refused before it reached a handler")
	s.writeLine(rec)
}

// writeLine appends one record to the standard log, if there is one.
func (s *Server) writeLine(rec *accesslog.Record) {
	s.accessMu.RLock()
	defer s.accessMu.RUnlock()
	if s.access == nil {
		return
	}
	if err := s.access.Write(rec); err != nil {
		s.log.Error().Err(err).Str("request_id", rec.RequestID).Msg("standard log line not written")
	}
}

// headerScan spots Content-Length and Transfer-Encoding in a request's
// header block as it streams in, stopping at the blank line.
type headerScan struct {
	done                            bool
	atLineStart                     bool
	started                         bool // past the request line
	name                            []byte
	inName                          bool
	contentLength, transferEncoding bool
}

func (h *headerScan) feed(b []byte) {
	for i := 0; i < len(b); i++ {
		if h.done {
			return
		}
		c := b[i]
		if c == '\n' {
			if h.atLineStart && h.started {
				h.done = true // the blank line ending the headers
				return
			}
			h.started = true
			h.atLineStart, h.inName, h.name = true, true, h.name[:0]
			continue
		}
		if c == '\r' {
			continue
		}
		h.atLineStart = false
		if !h.started || !h.inName {
			// The rest of the line (the request line, a field value) tells
			// nothing: jump to its end rather than look at every byte.
			j := bytes.IndexByte(b[i+1:], '\n')
			if j < 0 {
				return
			}
			i += j // the next byte looked at is the '\n'
			continue
		}
		if c == ':' {
			// EqualFold, not ToLower: no string built per header line.
			switch {
			case bytes.EqualFold(h.name, []byte("content-length")):
				h.contentLength = true
			case bytes.EqualFold(h.name, []byte("transfer-encoding")):
				h.transferEncoding = true
			}
			h.inName = false
			continue
		}
		if len(h.name) < 32 {
			h.name = append(h.name, c)
		}
	}
}

// frameScan follows the HTTP/2 frames the server writes, to count the
// streams it resets for a protocol error and a connection-level GOAWAY
// error, and the responses net/http sends by itself without running the
// edge's handler (400 for a connection-specific header such as
// Transfer-Encoding, 431 for a header list over the limit). It looks at
// frame headers, the first bytes of RST_STREAM and GOAWAY payloads, and
// decodes response header blocks (HPACK keeps state across them, so every
// block is decoded) to tell the edge's responses, which always carry
// X-Edge-Request-Id, from net/http's own.
type frameScan struct {
	hdr     [9]byte
	hdrN    int
	payload [8]byte // the first bytes of a RST_STREAM or GOAWAY payload
	payN    int
	left    int // payload bytes of the current frame still to come
	typ     byte
	flags   byte
	resets  int    // RST_STREAM frames with an error that a viewer caused
	goaway  uint32 // the error code of a GOAWAY, 0 for none

	block   []byte         // the header block being received (HEADERS, CONTINUATION)
	dec     *hpack.Decoder // nil until the first header block; broken once decoding fails
	broken  bool           // a block could not be decoded: stop looking
	status  string         // :status of the block being decoded
	ours    bool           // the block carries X-Edge-Request-Id
	refused []int          // statuses net/http sent without the edge's handler
}

// HTTP/2 frame types, flags and error codes the scan cares about (RFC 9113).
const (
	http2ClientPreface  = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	h2FrameHeaders      = 0x1
	h2FrameRSTStream    = 0x3
	h2FrameGoAway       = 0x7
	h2FrameContinuation = 0x9
	h2FlagEndStream     = 0x1
	h2FlagEndHeaders    = 0x4
	h2FlagPadded        = 0x8
	h2FlagPriority      = 0x20
	// maxScannedBlock bounds a response header block kept for decoding;
	// the server's own blocks are far smaller.
	maxScannedBlock = 256 << 10
)

// viewerFault are the RST_STREAM errors that mean the viewer broke the
// protocol (as opposed to NO_ERROR, CANCEL or INTERNAL_ERROR, which the
// server sends for its own reasons, already logged by the handler).
func viewerFault(code uint32) bool {
	switch code {
	case 0x1, 0x3, 0x5, 0x6, 0x7, 0x9, 0xb: // PROTOCOL, FLOW_CONTROL, STREAM_CLOSED, FRAME_SIZE, REFUSED_STREAM, COMPRESSION, ENHANCE_YOUR_CALM
		return true
	}
	return false
}

func (f *frameScan) feed(b []byte) {
	for len(b) > 0 {
		if f.left == 0 && f.hdrN < 9 {
			k := copy(f.hdr[f.hdrN:], b)
			f.hdrN += k
			b = b[k:]
			if f.hdrN < 9 {
				return
			}
			f.left = int(f.hdr[0])<<16 | int(f.hdr[1])<<8 | int(f.hdr[2])
			f.typ = f.hdr[3]
			f.flags = f.hdr[4]
			f.payN = 0
			if f.left == 0 {
				f.hdrN = 0
				f.frameDone()
			}
			continue
		}
		k := min(len(b), f.left)
		switch f.typ {
		case h2FrameRSTStream, h2FrameGoAway:
			f.payN += copy(f.payload[f.payN:], b[:k])
		case h2FrameHeaders, h2FrameContinuation:
			if !f.broken {
				if len(f.block)+k > maxScannedBlock {
					f.broken, f.block = true, nil
				} else {
					f.block = append(f.block, b[:k]...)
				}
			}
		}
		b = b[k:]
		f.left -= k
		if f.left == 0 {
			f.frameDone()
			f.hdrN = 0
		}
	}
}

func (f *frameScan) frameDone() {
	code := func(off int) uint32 {
		if f.payN < off+4 {
			return 0
		}
		p := f.payload[off : off+4]
		return uint32(p[0])<<24 | uint32(p[1])<<16 | uint32(p[2])<<8 | uint32(p[3])
	}
	switch f.typ {
	case h2FrameRSTStream:
		if viewerFault(code(0)) {
			f.resets++
		}
	case h2FrameGoAway:
		if c := code(4); c != 0 && f.goaway == 0 {
			f.goaway = c
		}
	case h2FrameHeaders, h2FrameContinuation:
		if f.typ == h2FrameHeaders && !f.broken {
			f.block = trimHeadersPayload(f.block, f.flags, &f.broken)
		}
		if f.flags&h2FlagEndHeaders != 0 {
			f.headerBlockDone()
		}
	}
}

// trimHeadersPayload strips a HEADERS frame's padding and priority fields
// from the start of the block (the server sends neither; this is defence).
func trimHeadersPayload(p []byte, flags byte, broken *bool) []byte {
	pad := 0
	if flags&h2FlagPadded != 0 {
		if len(p) < 1 {
			*broken = true
			return nil
		}
		pad, p = int(p[0]), p[1:]
	}
	if flags&h2FlagPriority != 0 {
		if len(p) < 5 {
			*broken = true
			return nil
		}
		p = p[5:]
	}
	if pad > len(p) {
		*broken = true
		return nil
	}
	return p[:len(p)-pad]
}

// headerBlockDone decodes a complete response header block and notes a
// final response that the edge's handler did not write.
func (f *frameScan) headerBlockDone() {
	block := f.block
	f.block = f.block[:0]
	if f.broken {
		return
	}
	if f.dec == nil {
		f.dec = hpack.NewDecoder(4096, func(hf hpack.HeaderField) {
			switch hf.Name {
			case ":status":
				f.status = hf.Value
			case "x-edge-request-id":
				f.ours = true
			}
		})
		// The server's encoder announces its table size in the block.
		f.dec.SetAllowedMaxDynamicTableSize(1 << 16)
	}
	f.status, f.ours = "", false
	if _, err := f.dec.Write(block); err != nil {
		f.broken = true
		return
	}
	if err := f.dec.Close(); err != nil {
		f.broken = true
		return
	}
	// Informational responses (100 Continue, 103 from an origin) and
	// trailers carry no request id; they are not refusals.
	if f.ours || len(f.status) != 3 || f.status[0] == '1' {
		return
	}
	if st, err := strconv.Atoi(f.status); err == nil {
		f.refused = append(f.refused, st)
	}
}

// viewerListener hands the HTTP server viewerConns. On the HTTPS port it
// completes each TLS handshake itself (in its own goroutine, bounded by
// the handshake timeout) and passes the decrypted connection on.
type viewerListener struct {
	net.Listener
	s         *Server
	tlsConfig *tls.Config // nil on port 80
	handshake time.Duration
	conns     chan net.Conn
	done      chan struct{}
	once      sync.Once
}

func (s *Server) newViewerListener(ln net.Listener, tlsConfig *tls.Config, handshake time.Duration) *viewerListener {
	l := &viewerListener{Listener: ln, s: s, tlsConfig: tlsConfig, handshake: handshake,
		conns: make(chan net.Conn), done: make(chan struct{})}
	if tlsConfig != nil {
		go l.acceptTLS()
	}
	return l
}

// Accept returns the next viewer connection.
func (l *viewerListener) Accept() (net.Conn, error) {
	if l.tlsConfig == nil {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		return l.s.newViewerConn(c, nil), nil
	}
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting; handshakes in progress are dropped.
func (l *viewerListener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.Listener.Close()
	})
	return err
}

func (l *viewerListener) acceptTLS() {
	var pause time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off as net/http does.
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			l.s.log.Error().Err(err).Dur("retry_in", pause).Msg("accept failed")
			select {
			case <-time.After(pause):
			case <-l.done:
				return
			}
			continue
		}
		pause = 0
		go l.handshakeAndDeliver(c)
	}
}

func (l *viewerListener) handshakeAndDeliver(raw net.Conn) {
	tc := tls.Server(raw, l.tlsConfig)
	ctx, cancel := context.WithTimeout(context.Background(), l.handshake)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		var rhe tls.RecordHeaderError
		if errors.As(err, &rhe) && rhe.Conn != nil && looksLikeHTTP(rhe.RecordHeader[:]) {
			// Plain HTTP on the HTTPS port: answer as net/http would, and
			// log the request.
			vc := &viewerConn{Conn: rhe.Conn, s: l.s, local: "https", periodStart: time.Now(), periodRead: 5,
				line: append([]byte(nil), rhe.RecordHeader[:]...)}
			_, _ = vc.Write([]byte("HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"))
			vc.Close()
			return
		}
		l.s.log.Debug().Str("component", "tls").Str("client", raw.RemoteAddr().String()).Err(err).Msg("TLS handshake failed")
		raw.Close()
		return
	}
	state := tc.ConnectionState()
	c := l.s.newViewerConn(tc, &state)
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

// looksLikeHTTP reports whether a would-be TLS record header is the start
// of an HTTP/1 request.
func looksLikeHTTP(hdr []byte) bool {
	switch string(hdr) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO", "DELET", "PATCH", "CONNE", "TRACE":
		return true
	}
	return false
}
