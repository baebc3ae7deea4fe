package origin

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgegate/edgegate/internal/tlsname"
	"github.com/edgegate/edgegate/origin/accesslog"
)

// serveStream serves one TCP or TLS listener connection: TLS handshake (TLS
// listeners) or SNI peek (TCP listeners with sni_routes), a target chosen
// for the whole connection, then bytes copied both ways until both sides
// are done. One access log line is written when it ends.
func (l *listener) serveStream(ctx context.Context, raw net.Conn) {
	start := time.Now()
	l.s.metrics.add(mConnections, 1, "listener", l.name)
	l.s.metrics.add(mActiveConnections, 1, "listener", l.name)
	defer l.s.metrics.add(mActiveConnections, -1, "listener", l.name)
	rec := accesslog.Record{
		Type: accesslog.TypeTCP, Listener: l.name, Client: raw.RemoteAddr().String(),
		RequestProcessing: accesslog.NotReached, TargetProcessing: accesslog.NotReached, ResponseProcessing: accesslog.NotReached,
		TargetGroup: l.cfg.DefaultAction.Forward, Actions: "forward",
	}
	client := raw
	var sni string
	var replay []byte
	if l.tlsConfig != nil {
		rec.Type = accesslog.TypeTLS
		tc, ok := l.handshake(ctx, raw, accesslog.TypeTLS)
		if !ok {
			return // handshake logged the failure
		}
		defer tc.Close()
		client = tc
		cs := tc.ConnectionState()
		sni = cs.ServerName
		rec.SSLCipher = tlsname.Cipher(cs.CipherSuite)
		rec.SSLProtocol = tlsname.Version(cs.Version)
		if l.verifier != nil && len(cs.PeerCertificates) > 0 {
			rec.ClientCertSubject = cs.PeerCertificates[0].Subject.String()
		}
	} else if len(l.routes) > 0 {
		var err error
		sni, replay, err = peekServerName(raw, l.timeouts.TLSHandshake.D())
		if err != nil && len(replay) == 0 {
			raw.Close()
			rec.ErrorReason = accesslog.ReasonClientTLSNegotiationError
			l.finishStream(&rec)
			return
		}
	}
	defer raw.Close()
	rec.DomainName = sni

	g := l.route(sni)
	rec.TargetGroup = g.name
	t, tconn, reason, err := g.connectStream(ctx, sni)
	if t != nil {
		rec.Target = t.addr
	}
	rec.RequestProcessing = time.Since(start)
	if err != nil {
		l.log.Warn().Err(err).Str("client", rec.Client).Msg("no target reachable")
		rec.ErrorReason = reason
		l.finishStream(&rec)
		return
	}
	defer t.outstanding.Add(-1)
	defer tconn.Close()
	// A target deregistered by a reload loses its streams once its
	// deregistration delay is over.
	defer context.AfterFunc(t.gone, func() { tconn.Close(); client.Close() })()
	connected := time.Now()
	idle := l.timeouts.TCPIdle.D()
	if len(replay) > 0 {
		_ = tconn.SetWriteDeadline(time.Now().Add(idle))
		if _, err := tconn.Write(replay); err != nil {
			rec.ErrorReason = accesslog.ReasonTargetConnectionError
			l.finishStream(&rec)
			return
		}
		rec.ReceivedBytes = int64(len(replay))
	}
	up, down, idled := pipe(client, tconn, idle)
	rec.ReceivedBytes += up
	rec.SentBytes = down
	rec.TargetProcessing = time.Since(connected)
	switch {
	case idled:
		rec.ErrorReason = accesslog.ReasonIdleTimeout
	case l.conns.wasForced():
		rec.ErrorReason = accesslog.ReasonShutdown
	}
	l.finishStream(&rec)
}

func (l *listener) finishStream(rec *accesslog.Record) {
	rec.Time = time.Now()
	l.s.logRecord(l, rec)
}

// route chooses the target group for a server name: the first matching SNI
// route, else the default action.
func (l *listener) route(sni string) *targetGroup {
	sni = strings.ToLower(strings.TrimSuffix(sni, "."))
	for _, r := range l.routes {
		if sni != "" && r.match(sni) {
			return r.g
		}
	}
	return l.group
}

// errPeeked stops the handshake used to read a ClientHello.
var errPeeked = errors.New("client hello read")

// peekServerName reads a TLS ClientHello from c and returns its SNI and
// every byte read, which the caller must send to the target first. The
// parsing is crypto/tls's own: a server handshake over a connection that
// records reads and discards writes, stopped as soon as the hello is
// parsed.
func peekServerName(c net.Conn, timeout time.Duration) (string, []byte, error) {
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return "", nil, err
	}
	defer c.SetReadDeadline(time.Time{})
	rc := &recordingConn{Conn: c}
	var sni string
	err := tls.Server(rc, &tls.Config{
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			sni = h.ServerName
			return nil, errPeeked
		},
	}).Handshake()
	if errors.Is(err, errPeeked) {
		err = nil
	}
	return sni, rc.buf.Bytes(), err
}

// recordingConn keeps what is read from Conn and swallows what is written,
// so that a TLS server handshake can parse a ClientHello without the
// client seeing anything.
type recordingConn struct {
	net.Conn
	buf bytes.Buffer
}

func (r *recordingConn) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.buf.Write(p[:n])
	return n, err
}

func (r *recordingConn) Write(p []byte) (int, error) { return len(p), nil }
func (r *recordingConn) Close() error                { return nil }

// pipe copies bytes both ways until both directions have ended. When one
// side finishes sending (EOF), the other side's write half is closed and
// the opposite direction carries on; an error either way closes both. The
// connection ends when no byte has moved either way for idle. It returns
// the bytes sent client→target and target→client, and whether it idled
// out.
func pipe(client, target net.Conn, idle time.Duration) (up, down int64, idled bool) {
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	var timedOut atomic.Bool
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			client.Close()
			target.Close()
		})
	}
	copyDir := func(dst, src net.Conn, n *int64) {
		buf := make([]byte, 32<<10)
		for {
			_ = src.SetReadDeadline(time.Unix(0, last.Load()).Add(idle))
			nr, rerr := src.Read(buf)
			if nr > 0 {
				now := time.Now()
				last.Store(now.UnixNano())
				_ = dst.SetWriteDeadline(now.Add(idle))
				nw, werr := dst.Write(buf[:nr])
				*n += int64(nw)
				if werr != nil {
					closeBoth()
					return
				}
			}
			switch {
			case rerr == nil:
			case errors.Is(rerr, os.ErrDeadlineExceeded):
				if time.Since(time.Unix(0, last.Load())) < idle {
					continue // the other direction was busy
				}
				timedOut.Store(true)
				closeBoth()
				return
			case errors.Is(rerr, io.EOF):
				if cw, ok := dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
					return
				}
				closeBoth()
				return
			default:
				closeBoth()
				return
			}
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { copyDir(target, client, &up) })
	wg.Go(func() { copyDir(client, target, &down) })
	wg.Wait()
	closeBoth()
	return up, down, timedOut.Load()
}
