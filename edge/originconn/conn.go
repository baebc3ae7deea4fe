package originconn

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// timedConn enforces ResponseTimeout on an origin connection: while a
// request is in flight every Read and Write must progress within the
// timeout, which bounds both the wait for the first byte and the gaps in a
// body. While the connection idles in the pool its reads have no deadline,
// so that a response timeout shorter than the keep-alive timeout does not
// close pooled connections early.
//
// Knowing when a response has ended takes following HTTP/1.1 framing on the
// bytes read (see framer); net/http tells a connection nothing. When the
// framing is not understood the deadline simply stays, which is safe: the
// worst case is an idle connection closed after ResponseTimeout.
type timedConn struct {
	net.Conn
	timeout      time.Duration
	origin, addr string

	mu sync.Mutex // guards f and the deadlines, and orders deadline changes with state changes
	f  framer
	// readDL and writeDL are the deadlines last set on Conn (zero: none),
	// so that one that barely moved is left alone (see deadlineDue).
	readDL, writeDL time.Time
}

// deadlineSlack is the share of the timeout by which a deadline may lag:
// one set less than timeout/deadlineSlack ago stays. Every Read and Write
// moving it cost a runtime timer update (a few percent of a proxied
// request's CPU, and one per 32 KiB of a large body); the timeout is still
// kept to within 1%.
const deadlineSlack = 128

// deadlineDue reports whether the deadline cur should move to now+timeout.
func (c *timedConn) deadlineDue(cur, now time.Time) bool {
	return cur.IsZero() || cur.Sub(now) < c.timeout-c.timeout/deadlineSlack
}

func newTimedConn(c net.Conn, timeout time.Duration, origin, addr string) *timedConn {
	return &timedConn{Conn: c, timeout: timeout, origin: origin, addr: addr}
}

// Read reads with a deadline only while a response is expected.
func (c *timedConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	var err error
	if c.f.busy() {
		if now := time.Now(); c.deadlineDue(c.readDL, now) {
			c.readDL = now.Add(c.timeout)
			err = c.Conn.SetReadDeadline(c.readDL)
		}
	} else if !c.readDL.IsZero() {
		c.readDL = time.Time{}
		err = c.Conn.SetReadDeadline(time.Time{})
	}
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		c.f.feed(p[:n])
		c.mu.Unlock()
	}
	if err != nil && err != io.EOF { // io.EOF stays bare: net/http compares it
		err = c.readError(err)
	}
	return n, err
}

// readError names the origin in a read failure, for the operational log.
func (c *timedConn) readError(err error) error {
	switch {
	case isTimeout(err):
		return c.timeoutError(err)
	case isRemoteAlert(err):
		// With TLS 1.3 an origin refuses a client certificate only after
		// the client finished its handshake: still a handshake failure.
		return &Error{Kind: KindConnect, Origin: c.origin, Addr: c.addr, Err: err}
	}
	return &Error{Kind: KindRead, Origin: c.origin, Addr: c.addr, Err: err}
}

// Write starts (or continues) a request: from now on a response is due
// within the timeout, and the read already pending on an idle connection
// gets that deadline too.
func (c *timedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.f.request(p)
	now := time.Now()
	var err error
	if c.deadlineDue(c.readDL, now) {
		c.readDL = now.Add(c.timeout)
		err = c.Conn.SetReadDeadline(c.readDL)
	}
	if err == nil && c.deadlineDue(c.writeDL, now) {
		c.writeDL = now.Add(c.timeout)
		err = c.Conn.SetWriteDeadline(c.writeDL)
	}
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	n, err := c.Conn.Write(p)
	if err != nil && isTimeout(err) {
		err = c.timeoutError(err)
	}
	return n, err
}

func (c *timedConn) timeoutError(err error) error {
	return &Error{Kind: KindTimeout, Origin: c.origin, Addr: c.addr,
		Err: fmt.Errorf("%w: the origin sent nothing for %s: %w", errResponseTimeout, c.timeout, err)}
}

// ConnectionState reports the TLS state of an https connection (the zero
// state for plain HTTP), since net/http cannot see through this wrapper.
func (c *timedConn) ConnectionState() tls.ConnectionState {
	if tc, ok := c.Conn.(*tls.Conn); ok {
		return tc.ConnectionState()
	}
	return tls.ConnectionState{}
}

// NetConn returns the wrapped connection.
func (c *timedConn) NetConn() net.Conn { return c.Conn }

// framer follows the framing of HTTP/1.1 responses just enough to tell when
// one has ended. It sees the request side only to spot HEAD, whose response
// has no body.
type framer struct {
	state     frameState
	head      bool // the request in flight is HEAD
	line      []byte
	lineLong  bool // the current line exceeded maxFramerLine
	sawStatus bool
	status    int
	length    int64 // Content-Length, -1 if absent
	lengthBad bool
	coding    string // Transfer-Encoding values, lower case, comma-joined
	remaining int64  // bytes left in a Content-Length body or a chunk
}

type frameState uint8

const (
	frameIdle      frameState = iota // no request in flight
	frameHead                        // status line and header fields
	frameBody                        // Content-Length body
	frameChunkSize                   // chunk-size line
	frameChunkData                   // chunk data
	frameChunkEnd                    // CRLF after chunk data
	frameTrailer                     // trailer fields after the last chunk
	frameUnknown                     // not followed (read until close, upgrade, oddity)
)

// maxFramerLine bounds what a line keeps: the status line and the framing
// fields are short; longer lines of other fields are skipped.
const maxFramerLine = 4096

func (f *framer) busy() bool { return f.state != frameIdle }

// request notes bytes written. The first write on an idle connection
// starts an exchange; later ones are the rest of the request.
func (f *framer) request(p []byte) {
	if f.state != frameIdle {
		return
	}
	f.head = bytes.HasPrefix(p, []byte("HEAD "))
	f.startResponse()
}

func (f *framer) startResponse() {
	f.state = frameHead
	f.line = f.line[:0]
	f.lineLong = false
	f.sawStatus = false
	f.status = 0
	f.length = -1
	f.lengthBad = false
	f.coding = ""
}

// feed follows the bytes of the response read.
func (f *framer) feed(p []byte) {
	for len(p) > 0 {
		switch f.state {
		case frameIdle, frameUnknown:
			return
		case frameBody, frameChunkData:
			n := min(int64(len(p)), f.remaining)
			f.remaining -= n
			p = p[n:]
			if f.remaining == 0 {
				if f.state == frameBody {
					f.state = frameIdle
				} else {
					f.state = frameChunkEnd
				}
			}
		default:
			i := bytes.IndexByte(p, '\n')
			chunk := p
			if i >= 0 {
				chunk = p[:i]
			}
			if room := maxFramerLine - len(f.line); len(chunk) > room {
				f.line = append(f.line, chunk[:room]...)
				f.lineLong = true
			} else {
				f.line = append(f.line, chunk...)
			}
			if i < 0 {
				return
			}
			p = p[i+1:]
			f.onLine(bytes.TrimSuffix(f.line, []byte("\r")), f.lineLong)
			f.line = f.line[:0]
			f.lineLong = false
		}
	}
}

func (f *framer) onLine(line []byte, long bool) {
	switch f.state {
	case frameHead:
		if !f.sawStatus {
			f.sawStatus = true
			// "HTTP/1.1 200 OK": cut, not bytes.Fields, which allocates on
			// every response.
			version, rest, _ := bytes.Cut(bytes.TrimLeft(line, " \t"), []byte(" "))
			code3, _, _ := bytes.Cut(bytes.TrimLeft(rest, " "), []byte(" "))
			if !bytes.HasPrefix(version, []byte("HTTP/")) || len(code3) == 0 {
				f.state = frameUnknown
				return
			}
			code, err := strconv.Atoi(string(code3))
			if err != nil {
				f.state = frameUnknown
				return
			}
			f.status = code
			return
		}
		if len(line) == 0 {
			f.endHead()
			return
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			f.state = frameUnknown
			return
		}
		value = bytes.TrimSpace(value)
		// EqualFold, not ToLower: no allocation per header line.
		switch name = bytes.TrimSpace(name); {
		case bytes.EqualFold(name, []byte("content-length")):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if long || err != nil || n < 0 || (f.length >= 0 && f.length != n) {
				f.lengthBad = true
			}
			f.length = n
		case bytes.EqualFold(name, []byte("transfer-encoding")):
			if long {
				f.state = frameUnknown
				return
			}
			if f.coding != "" {
				f.coding += ","
			}
			f.coding += string(bytes.ToLower(value))
		}
	case frameChunkSize:
		size, _, _ := bytes.Cut(line, []byte(";"))
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 64)
		switch {
		case long || err != nil || n < 0:
			f.state = frameUnknown
		case n == 0:
			f.state = frameTrailer
		default:
			f.remaining = n
			f.state = frameChunkData
		}
	case frameChunkEnd:
		if len(line) != 0 {
			f.state = frameUnknown
			return
		}
		f.state = frameChunkSize
	case frameTrailer:
		if len(line) == 0 {
			f.state = frameIdle
		}
	}
}

// endHead decides how the body is framed, by the rules of RFC 9112 §6.3.
func (f *framer) endHead() {
	switch {
	case f.status == 101:
		f.state = frameUnknown // the connection now carries another protocol
	case f.status >= 100 && f.status < 200:
		f.startResponse() // interim response: the final one follows
	case f.head || f.status == 204 || f.status == 304:
		f.state = frameIdle
	case f.coding != "":
		if f.coding == "chunked" {
			f.state = frameChunkSize
		} else {
			f.state = frameUnknown
		}
	case f.lengthBad:
		f.state = frameUnknown
	case f.length == 0:
		f.state = frameIdle
	case f.length > 0:
		f.remaining = f.length
		f.state = frameBody
	default:
		f.state = frameUnknown // delimited by close: the connection will not be reused
	}
}
