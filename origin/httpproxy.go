package origin

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgegate/edgegate/internal/hostname"
	"github.com/edgegate/edgegate/internal/tlsname"
	"github.com/edgegate/edgegate/origin/accesslog"
)

// StatusClientClosedRequest is logged (never sent) when the client goes
// away before the response, as ALB logs 460.
const StatusClientClosedRequest = 460

// newGroupTransport is the pooled HTTP/1.1 client of an HTTP or HTTPS
// target group, shared by every listener that forwards to it.
func newGroupTransport(g *targetGroup, to Timeouts, timeout time.Duration) http.RoundTripper {
	gt := &groupTransport{g: g}
	gt.base.Store(newBaseTransport(g.protocol, g.dialer, to, timeout))
	return gt
}

// newBaseTransport is the connection pool to a group's targets; timeout
// bounds each request until its response headers.
func newBaseTransport(protocol string, dialer *net.Dialer, to Timeouts, timeout time.Duration) *http.Transport {
	base := &http.Transport{
		Proxy:                  nil, // targets are addressed directly, never through an environment proxy
		DialContext:            dialer.DialContext,
		TLSHandshakeTimeout:    to.TLSHandshake.D(),
		ResponseHeaderTimeout:  timeout, // a hung target holds a request no longer
		ExpectContinueTimeout:  time.Second,
		MaxIdleConns:           1024,
		MaxIdleConnsPerHost:    256, // the default of 2 would churn connections under load
		IdleConnTimeout:        to.Idle.D(),
		MaxResponseHeaderBytes: int64(to.MaxHeaderBytes),
		DisableCompression:     true, // pass Accept-Encoding and bodies through untouched
		// HTTP/1.1 to targets, as ALB speaks by default: an empty
		// TLSNextProto map keeps HTTP/2 off.
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	if protocol == ProtocolHTTPS {
		base.TLSClientConfig = targetTLSConfig("", []string{"http/1.1"})
	}
	return base
}

// groupTransport sends a request to its chosen target and, when the target
// cannot be reached at all (nothing was sent), to the next one, for
// requests without a body.
type groupTransport struct {
	g    *targetGroup
	base atomic.Pointer[http.Transport] // replaced when a reload changes the group's timeout
}

func (gt *groupTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	st, _ := req.Context().Value(stateKey{}).(*reqState)
	base := gt.base.Load()
	for {
		if st != nil {
			gt.g.metrics.add(mTargetRequests, 1, "target_group", gt.g.name, "target", st.target.addr)
		}
		resp, err := roundTripTo(base, req, st)
		if st != nil && (err == nil || req.Context().Err() == nil) {
			// A client that went away says nothing about the target.
			gt.g.passiveResult(st.target, err)
		}
		if err == nil || st == nil || !isDialError(err) || (req.Body != nil && req.Body != http.NoBody) {
			return resp, err
		}
		gt.g.metrics.add(mTargetConnectErrors, 1, "target_group", gt.g.name, "target", st.target.addr)
		st.tried = append(st.tried, st.target)
		next := gt.g.pick(st.tried)
		if next == nil || req.Context().Err() != nil {
			return nil, err
		}
		st.setTarget(next)
		req = req.Clone(req.Context())
		req.URL.Host = next.addr
	}
}

// roundTripTo sends req, cut short if its target is deregistered (a reload
// removed it and the deregistration delay is over) before it completes.
func roundTripTo(base *http.Transport, req *http.Request, st *reqState) (*http.Response, error) {
	if st == nil {
		return base.RoundTrip(req)
	}
	ctx, cancel := context.WithCancel(req.Context())
	stop := context.AfterFunc(st.target.gone, cancel)
	resp, err := base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		stop()
		cancel()
		return nil, err
	}
	resp.Body = &releasingBody{ReadCloser: resp.Body, release: func() { stop(); cancel() }}
	return resp, nil
}

// releasingBody runs release once the body is closed.
type releasingBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}

// stateKey carries a request's *reqState in its context.
type stateKey struct{}

// reqState follows one proxied request for the access log.
type reqState struct {
	target       *target
	tried        []*target
	start        time.Time
	sent         atomic.Int64 // unix nanoseconds; written by the transport's goroutine
	gotHeaders   time.Time
	targetStatus int
	status       int // overrides what the writer saw (460)
	reason       string
}

// setTarget moves the request's outstanding count to t.
func (st *reqState) setTarget(t *target) {
	if st.target != nil {
		st.target.outstanding.Add(-1)
	}
	st.target = t
	t.outstanding.Add(1)
}

// httpHandler serves an HTTP or HTTPS listener's requests.
type httpHandler struct {
	l      *listener
	scheme string
	proxy  *httputil.ReverseProxy
}

func newHTTPHandler(l *listener) *httpHandler {
	h := &httpHandler{l: l, scheme: "http"}
	if l.cfg.Protocol == ProtocolHTTPS {
		h.scheme = "https"
	}
	if l.group != nil {
		h.proxy = &httputil.ReverseProxy{
			Rewrite:        h.rewrite,
			Transport:      l.group.transport,
			ModifyResponse: h.modifyResponse,
			ErrorHandler:   h.proxyError,
			ErrorLog:       log.New(listenerLog{l}, "", 0),
		}
	}
	return h
}

// rewrite builds the request to the target. ReverseProxy has already
// removed hop-by-hop headers and inbound X-Forwarded-*.
func (h *httpHandler) rewrite(pr *httputil.ProxyRequest) {
	st := pr.In.Context().Value(stateKey{}).(*reqState)
	scheme := "http"
	if h.l.group.protocol == ProtocolHTTPS {
		scheme = "https"
	}
	pr.SetURL(&url.URL{Scheme: scheme, Host: st.target.addr})
	pr.Out.Host = pr.In.Host // targets see the name the client asked for, as behind ALB
	// ALB's "append" mode: the client's X-Forwarded-For (the edge's, with
	// the viewer in it) is kept and the client address appended, so the
	// last entry is the one this load balancer vouches for.
	if prior := pr.In.Header.Values("X-Forwarded-For"); len(prior) > 0 {
		pr.Out.Header["X-Forwarded-For"] = prior
	}
	pr.SetXForwarded() // -For appended, -Host, -Proto http or https
	pr.Out.Header.Set("X-Forwarded-Port", strconv.Itoa(h.l.port))
	stripClientCertHeaders(pr.Out.Header)
	if h.l.verifier != nil && pr.In.TLS != nil && len(pr.In.TLS.PeerCertificates) > 0 {
		setClientCertHeaders(pr.Out.Header, pr.In.TLS.PeerCertificates[0])
	}
}

func (h *httpHandler) modifyResponse(resp *http.Response) error {
	st := resp.Request.Context().Value(stateKey{}).(*reqState)
	st.gotHeaders = time.Now()
	st.targetStatus = resp.StatusCode
	return nil
}

// proxyError answers when the target could not be used, with ALB's status
// codes: 502 for a refused or broken connection, 504 for a timeout, and
// 460 in the log (nothing sent) when the client went away first.
func (h *httpHandler) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	st := r.Context().Value(stateKey{}).(*reqState)
	status, reason := classifyProxyError(r.Context(), err)
	st.reason = reason
	if status == StatusClientClosedRequest {
		st.status = status
		return
	}
	h.l.log.Warn().Err(err).Str("target", st.target.addr).Str("reason", reason).Int("status", status).Msg("target failed")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, strconv.Itoa(status)+" "+http.StatusText(status)+"\n")
}

func classifyProxyError(ctx context.Context, err error) (int, string) {
	var ne net.Error
	timeout := errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
	switch {
	case ctx.Err() != nil:
		return StatusClientClosedRequest, accesslog.ReasonClientClosed
	case isDialError(err) && timeout:
		return http.StatusGatewayTimeout, accesslog.ReasonTargetConnectionError
	case isDialError(err):
		return http.StatusBadGateway, accesslog.ReasonTargetConnectionError
	case timeout:
		return http.StatusGatewayTimeout, accesslog.ReasonTargetResponseTimeout
	case strings.Contains(err.Error(), "tls: "):
		return http.StatusBadGateway, accesslog.ReasonTargetTLSNegotiationError
	}
	return http.StatusBadGateway, accesslog.ReasonTargetResponseError
}

func (h *httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := &reqState{start: time.Now()}
	rec := &responseRecorder{ResponseWriter: w}
	var body *countingBody
	if r.Body != nil && r.Body != http.NoBody {
		body = &countingBody{ReadCloser: r.Body}
		r.Body = body
	}
	// Never let a client's own X-Client-Cert-* reach a target (rewrite
	// strips the outgoing copy too; this also covers redirects' logs).
	stripClientCertHeaders(r.Header)
	action := "forward"
	redirectURL := ""
	defer func() {
		p := recover()
		if p != nil && st.reason == "" {
			// ReverseProxy aborts with ErrAbortHandler when the body copy
			// fails midway.
			st.reason = accesslog.ReasonTargetResponseError
			if r.Context().Err() != nil {
				st.reason = accesslog.ReasonClientClosed
			}
		}
		h.finish(r, rec, st, body, action, redirectURL)
		if p != nil {
			panic(p)
		}
	}()
	if rd := h.l.cfg.DefaultAction.Redirect; rd != nil {
		action = "redirect"
		redirectURL = h.redirect(rec, r, rd)
		return
	}
	st.setTarget(h.l.group.pick(nil))
	ctx := context.WithValue(r.Context(), stateKey{}, st)
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { st.sent.Store(time.Now().UnixNano()) },
	})
	h.proxy.ServeHTTP(rec, r.WithContext(ctx))
}

// redirect answers with the configured redirect, keeping host, path and
// query, and returns the Location.
func (h *httpHandler) redirect(w http.ResponseWriter, r *http.Request, rd *Redirect) string {
	host := hostname.WithoutPort(r.Host)
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" {
		http.Error(w, "400 Bad Request: no Host header to redirect to", http.StatusBadRequest)
		return ""
	}
	scheme := strings.ToLower(rd.Protocol)
	hostport := net.JoinHostPort(host, strconv.Itoa(rd.Port))
	if (scheme == "https" && rd.Port == 443) || (scheme == "http" && rd.Port == 80) {
		hostport = host
		if strings.Contains(host, ":") {
			hostport = "[" + host + "]"
		}
	}
	loc := scheme + "://" + hostport + r.URL.RequestURI()
	w.Header().Set("Location", loc)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(rd.Status)
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, strconv.Itoa(rd.Status)+" "+http.StatusText(rd.Status)+": "+loc+"\n")
	}
	return loc
}

// finish writes the request's access log line and metrics.
func (h *httpHandler) finish(r *http.Request, rec *responseRecorder, st *reqState, body *countingBody, action, redirectURL string) {
	now := time.Now()
	if st.target != nil {
		st.target.outstanding.Add(-1)
	}
	status := rec.status
	if st.status != 0 {
		status = st.status
	}
	if status == 0 && st.targetStatus == http.StatusSwitchingProtocols {
		status = st.targetStatus // an upgrade writes its 101 on the hijacked connection
	}
	typ := accesslog.TypeHTTP
	switch {
	case r.ProtoMajor == 2:
		typ = accesslog.TypeH2
	case r.TLS != nil:
		typ = accesslog.TypeHTTPS
	}
	out := accesslog.Record{
		Type: typ, Time: now, Listener: h.l.name, Client: r.RemoteAddr,
		RequestProcessing: accesslog.NotReached, TargetProcessing: accesslog.NotReached, ResponseProcessing: accesslog.NotReached,
		ELBStatus: status, TargetStatus: st.targetStatus,
		ReceivedBytes: requestHeaderBytes(r), SentBytes: rec.headerBytes + rec.bodyBytes,
		Request:   r.Method + " " + h.scheme + "://" + hostname.WithoutPort(r.Host) + ":" + strconv.Itoa(h.l.port) + r.URL.RequestURI() + " " + r.Proto,
		UserAgent: r.UserAgent(), Actions: action, RedirectURL: redirectURL, ErrorReason: st.reason,
	}
	if body != nil {
		out.ReceivedBytes += body.n.Load()
	}
	if h.l.group != nil {
		out.TargetGroup = h.l.group.name
	}
	if st.target != nil {
		out.Target = st.target.addr
	}
	if sent := st.sent.Load(); sent != 0 {
		sentAt := time.Unix(0, sent)
		out.RequestProcessing = sentAt.Sub(st.start)
		if !st.gotHeaders.IsZero() {
			out.TargetProcessing = st.gotHeaders.Sub(sentAt)
			if !rec.wroteAt.IsZero() {
				out.ResponseProcessing = rec.wroteAt.Sub(st.gotHeaders)
			}
		}
	} else if action == "redirect" && !rec.wroteAt.IsZero() {
		out.RequestProcessing = rec.wroteAt.Sub(st.start)
	}
	if t := r.TLS; t != nil {
		out.SSLCipher = tlsname.Cipher(t.CipherSuite)
		out.SSLProtocol = tlsname.Version(t.Version)
		out.DomainName = t.ServerName
		if h.l.verifier != nil && len(t.PeerCertificates) > 0 {
			out.ClientCertSubject = t.PeerCertificates[0].Subject.String()
		}
	}
	code := "-"
	if status > 0 {
		code = strconv.Itoa(status)
	}
	h.l.s.metrics.add(mRequests, 1, "listener", h.l.name, "code", code)
	h.l.s.logRecord(h.l, &out)
}

// requestHeaderBytes estimates the size of the request line and headers as
// received (exact for HTTP/1.1 up to header folding; HTTP/2 compresses).
func requestHeaderBytes(r *http.Request) int64 {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4 + len("Host: \r\n") + len(r.Host) + 2
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return int64(n)
}

// responseRecorder notes what was sent to the client. Unwrap lets
// http.ResponseController (used by ReverseProxy to flush and to hijack for
// upgrades) reach the real writer.
type responseRecorder struct {
	http.ResponseWriter
	status      int
	headerBytes int64
	bodyBytes   int64
	wroteAt     time.Time
}

func (w *responseRecorder) WriteHeader(code int) {
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
		w.wroteAt = time.Now()
		n := len("HTTP/1.1 200 OK\r\n\r\n")
		for k, vs := range w.Header() {
			for _, v := range vs {
				n += len(k) + len(v) + 4
			}
		}
		w.headerBytes = int64(n)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.bodyBytes += int64(n)
	return n, err
}

func (w *responseRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// countingBody counts request body bytes read.
type countingBody struct {
	io.ReadCloser
	n atomic.Int64 // the transport reads the body on its own goroutine
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}
