package edge

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/edgegate/edgegate/edge/accesslog"
	"github.com/edgegate/edgegate/internal/reuseport"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// quicListener serves HTTP/3 on the UDP port of the HTTPS listener, with
// the same certificates, routing, cache and standard log.
type quicListener struct {
	pc        net.PacketConn
	srv       *http3.Server
	port      int
	allow0RTT bool
	// altSvc is the Alt-Svc field value advertising this listener, built
	// once: every HTTP/1.1 and HTTP/2 response carries it. Header maps
	// share the slice, so it must never be written through (http.Header's
	// Set and Add replace or copy it).
	altSvc []string
}

type quicConnKey struct{}

// earlyDataOK decides a request that may have arrived in 0-RTT early data,
// before the handshake completed: such a request could be a replay. It
// proceeds early only for a safe method of a distribution that allows
// 0-RTT; any other waits for the handshake to complete (RFC 8470 §3), and
// is refused with 425 Too Early if it does not.
func (s *Server) earlyDataOK(ex *exchange, r *http.Request, d *distribution) bool {
	c, _ := r.Context().Value(quicConnKey{}).(*quic.Conn)
	if c == nil {
		return true
	}
	select {
	case <-c.HandshakeComplete():
		return true
	default:
	}
	if d.cfg.Allow0RTT && (r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions) {
		return true
	}
	t := time.NewTimer(ex.st.cfg.Edge.Timeouts.ReadHeader.D())
	defer t.Stop()
	select {
	case <-c.HandshakeComplete():
		return true
	case <-r.Context().Done():
	case <-t.C:
	}
	ex.classify(accesslog.ResultError, accesslog.ResultError, accesslog.ResultInvalidRequest)
	s.errorPage(ex, ex, http.StatusTooEarly, "The request came in TLS early data and the handshake did not complete.")
	return false
}

// allows0RTT reports whether any distribution allows 0-RTT: only then
// does the listener accept early data at all.
func (st *state) allows0RTT() bool {
	for _, d := range st.dists {
		if d.quicTLS != nil && d.cfg.Allow0RTT {
			return true
		}
	}
	return false
}

// wantsH3 reports whether any distribution offers HTTP/3.
func (st *state) wantsH3() bool {
	for _, d := range st.dists {
		if d.quicTLS != nil {
			return true
		}
	}
	return false
}

// newQUICListener binds UDP beside the bound HTTPS listener (so ":0" gets
// the TCP listener's port) and prepares the HTTP/3 server.
func (s *Server) newQUICListener(cfg *Config, https net.Addr, allow0RTT bool) (*quicListener, error) {
	tcp, ok := https.(*net.TCPAddr)
	if !ok {
		return nil, fmt.Errorf("edge HTTP/3: HTTPS listener on %s is not TCP", https)
	}
	addr := net.JoinHostPort(tcp.IP.String(), strconv.Itoa(tcp.Port))
	pc, err := reuseport.ListenConfig().ListenPacket(s.baseCtx, "udp", addr)
	if err != nil {
		return nil, fmt.Errorf("edge HTTP/3 listen udp %s: %w", addr, err)
	}
	s.adviseUDPBuffer("/proc/sys/net/core/rmem_max")
	t := cfg.Edge.Timeouts
	srv := &http3.Server{
		Handler: http.HandlerFunc(s.serveViewer),
		TLSConfig: &tls.Config{
			GetConfigForClient: s.quicConfigForClient,
			MinVersion:         tls.VersionTLS13,
		},
		QUICConfig: &quic.Config{
			// 0-RTT data can be replayed by an attacker (RFC 9001 §9.2):
			// accepted only when a distribution allows it, and then
			// gated per request (earlyDataOK).
			Allow0RTT:            allow0RTT,
			HandshakeIdleTimeout: t.ReadHeader.D(),
			MaxIdleTimeout:       t.Idle.D(),
		},
		MaxHeaderBytes: int(t.MaxHeaderBytes),
		IdleTimeout:    t.Idle.D(),
		ConnContext: func(ctx context.Context, c *quic.Conn) context.Context {
			return context.WithValue(ctx, quicConnKey{}, c)
		},
	}
	return &quicListener{pc: pc, srv: srv, port: tcp.Port, allow0RTT: allow0RTT,
		altSvc: []string{`h3=":` + strconv.Itoa(tcp.Port) + `"; ma=86400`}}, nil
}

// quicConfigForClient picks the distribution by SNI, as on TCP; a name
// that is unknown, or whose distribution does not offer HTTP/3, gets no
// certificate and so a failed handshake.
func (s *Server) quicConfigForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if name == "" && hello.Conn != nil {
		// No SNI for an IP address: the address dialled names it, as on TCP.
		if a, ok := hello.Conn.LocalAddr().(*net.UDPAddr); ok {
			name = a.IP.String()
		}
	}
	if d := s.state().distribution(name); d != nil && d.quicTLS != nil {
		return d.quicTLS, nil
	}
	s.stats.tlsRefused.Add(1)
	return &tls.Config{MinVersion: tls.VersionTLS13}, nil
}

func (s *Server) serveQUIC(q *quicListener) {
	if err := q.srv.Serve(q.pc); err != nil && err != http.ErrServerClosed && err != quic.ErrServerClosed {
		s.log.Error().Err(err).Msg("HTTP/3 listener stopped")
	}
}

// drainQUIC tells HTTP/3 clients to go away (GOAWAY), lets their
// requests finish until ctx ends, then closes what is left.
func (s *Server) drainQUIC(ctx context.Context, q *quicListener) {
	if err := q.srv.Shutdown(ctx); err != nil {
		s.log.Warn().Err(err).Msg("HTTP/3 drain timed out; closing remaining connections")
		q.srv.Close()
	}
	q.pc.Close()
}

// altSvc is the Alt-Svc value advertising HTTP/3 for a distribution, or
// nil when it offers none or the listener is off. The slice is shared:
// see quicListener.altSvc.
func (s *Server) altSvc(d *distribution) []string {
	if d == nil || d.quicTLS == nil {
		return nil
	}
	s.lnMu.RLock()
	q := s.quic
	s.lnMu.RUnlock()
	if q == nil {
		return nil
	}
	return q.altSvc
}

// quicReceiveBuffer is the UDP receive buffer quic-go asks for; a smaller
// kernel limit drops packets under load.
const quicReceiveBuffer = 7 << 20

// adviseUDPBuffer logs how to raise the kernel's UDP receive buffer limit
// when it is below what quic-go needs, as quic-go itself warns.
func (s *Server) adviseUDPBuffer(rmemMax string) {
	data, err := os.ReadFile(rmemMax)
	if err != nil {
		return // not Linux: quic-go's own warning covers it
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || n >= quicReceiveBuffer {
		return
	}
	s.log.Warn().Int("rmem_max", n).Int("wanted", quicReceiveBuffer).
		Msg("HTTP/3: the kernel's UDP receive buffer limit is small and packets may be dropped under load; raise it: sysctl -w net.core.rmem_max=7500000 net.core.wmem_max=7500000")
}

// rebindQUIC follows a reload: HTTP/3 moves with the HTTPS listener, and
// starts or stops as distributions offer it or not. The old listener
// drains in the background.
func (s *Server) rebindQUIC(ctx context.Context, cfg *Config, st *state) {
	s.lnMu.RLock()
	old, https := s.quic, s.listeners["https"]
	s.lnMu.RUnlock()
	var next *quicListener
	if https != nil && st.wantsH3() {
		if old != nil && old.pc.LocalAddr().String() == udpTwin(https.ln.Addr()) && old.allow0RTT == st.allows0RTT() {
			return // unchanged
		}
		var err error
		if next, err = s.newQUICListener(cfg, https.ln.Addr(), st.allows0RTT()); err != nil {
			s.log.Error().Err(err).Msg("reload: HTTP/3 listener not started")
			next = nil
		}
	} else if old == nil {
		return
	}
	s.lnMu.Lock()
	s.quic = next
	s.lnMu.Unlock()
	if next != nil {
		go s.serveQUIC(next)
	}
	if old != nil {
		s.retired.Add(1)
		go func() {
			defer s.retired.Done()
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Edge.Timeouts.Shutdown.D())
			defer cancel()
			s.drainQUIC(dctx, old)
		}()
	}
}

// udpTwin is the UDP address string of a TCP address.
func udpTwin(a net.Addr) string {
	t := a.(*net.TCPAddr)
	return (&net.UDPAddr{IP: t.IP, Port: t.Port, Zone: t.Zone}).String()
}
