package edge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/edgegate/edgegate/cache"
	"github.com/edgegate/edgegate/edge/accesslog"
	"github.com/edgegate/edgegate/edge/originconn"
	"github.com/rs/zerolog"
)

// origin is a configured origin with its pooled transport.
type origin struct {
	cfg       *Origin
	opts      originconn.Options
	transport *http.Transport
}

// target is what a behavior sends requests to: one origin, or an origin
// group whose members are tried in order.
type target struct {
	id       string
	origins  []*origin
	failover []int
	proxy    streamingProxy
	bufs     *bufferPool // copy buffers of the proxy and of cached streams
}

// streamingProxy is the target's ReverseProxy. When the origin breaks a
// body, ReverseProxy aborts the response with a panic; what the viewer
// was sent so far, a header block still held back included (see
// exchange.Flush), is flushed first, so that the viewer gets the status
// and the body as far as it got before the connection is cut.
type streamingProxy struct{ *httputil.ReverseProxy }

func (p streamingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if ex, ok := w.(*exchange); ok {
				ex.flushHeld()
			}
			panic(v)
		}
	}()
	out := w
	if ex, ok := w.(*exchange); ok {
		out = flushWriter{ex}
	}
	p.ReverseProxy.ServeHTTP(out, r)
}

// flushWriter flushes every write of the body at once: the viewer's first
// byte follows the origin's. ReverseProxy's FlushInterval of -1 does the
// same, but arms a timer per response that fires at once, in a goroutine
// of its own, and locks a mutex per write. The header block alone is not
// flushed (see exchange.Flush), so a small response still leaves in one
// write.
type flushWriter struct{ *exchange }

func (w flushWriter) Write(p []byte) (int, error) {
	n, err := w.exchange.Write(p)
	if err == nil {
		w.exchange.Flush()
	}
	return n, err
}

// copyBufferSize is the buffer bodies are copied through, as io.Copy's.
const copyBufferSize = 32 << 10

// bufferPool reuses copy buffers: without it every proxied response
// allocated 32 KiB. Buffers are kept as array pointers so that Put costs
// no allocation. A nil pool works, without reuse.
type bufferPool struct{ p sync.Pool }

// Get implements httputil.BufferPool.
func (bp *bufferPool) Get() []byte {
	if bp != nil {
		if b, _ := bp.p.Get().(*[copyBufferSize]byte); b != nil {
			return b[:]
		}
	}
	return new([copyBufferSize]byte)[:]
}

// Put implements httputil.BufferPool.
func (bp *bufferPool) Put(b []byte) {
	if bp != nil && len(b) == copyBufferSize {
		bp.p.Put((*[copyBufferSize]byte)(b))
	}
}

// originOptions maps an origin's config to how the edge connects to it.
func originOptions(o *Origin, resolver string) (originconn.Options, error) {
	roots, err := originconn.LoadRoots(o.TrustedCA)
	if err != nil {
		return originconn.Options{}, fmt.Errorf("origin %s: trusted_ca: %w", o.ID, err)
	}
	lo, hi, err := originconn.ParseSSLProtocols(o.SSLProtocols)
	if err != nil {
		return originconn.Options{}, fmt.Errorf("origin %s: %w", o.ID, err)
	}
	opts := originconn.Options{
		DomainName:         o.DomainName,
		ConnectTo:          o.ConnectTo,
		HTTPPort:           o.HTTPPort,
		HTTPSPort:          o.HTTPSPort,
		RootCAs:            roots,
		MinVersion:         lo,
		MaxVersion:         hi,
		ConnectionAttempts: o.ConnectionAttempts,
		ConnectionTimeout:  o.ConnectionTimeout.D(),
		ResponseTimeout:    o.ResponseTimeout.D(),
		KeepaliveTimeout:   o.KeepaliveTimeout.D(),
		Resolver:           resolver,
	}
	if o.ClientCertificate.Cert != "" {
		c, err := tls.LoadX509KeyPair(o.ClientCertificate.Cert, o.ClientCertificate.Key)
		if err != nil {
			return originconn.Options{}, fmt.Errorf("origin %s: client_certificate: %w", o.ID, err)
		}
		opts.ClientCertificate = &c
	}
	return opts, nil
}

func newOrigin(o *Origin, resolver string) (*origin, error) {
	opts, err := originOptions(o, resolver)
	if err != nil {
		return nil, err
	}
	tr, err := originconn.NewTransport(opts)
	if err != nil {
		return nil, fmt.Errorf("origin %s: %w", o.ID, err)
	}
	return &origin{cfg: o, opts: opts, transport: tr}, nil
}

// OriginOptions returns how the edge connects to each origin of the
// config, keyed by distribution ID and origin ID, so that `edgegate check
// -probe` connects exactly as the edge would.
func (c *Config) OriginOptions() (map[string]map[string]originconn.Options, error) {
	out := map[string]map[string]originconn.Options{}
	for i := range c.Distributions {
		d := &c.Distributions[i]
		out[d.ID] = map[string]originconn.Options{}
		for j := range d.Origins {
			opts, err := originOptions(&d.Origins[j], c.Edge.Resolver)
			if err != nil {
				return nil, err
			}
			out[d.ID][d.Origins[j].ID] = opts
		}
	}
	return out, nil
}

// scheme chooses http or https to the origin per its protocol policy.
func (o *origin) scheme(viewerScheme string) string {
	switch o.cfg.ProtocolPolicy {
	case OriginHTTPOnly:
		return "http"
	case OriginMatchViewer:
		return viewerScheme
	}
	return "https"
}

// prepare points an outgoing request at this origin: URL, Host (the
// origin's domain name, as CloudFront sends by default), origin path and
// custom headers.
func (o *origin) prepare(out *http.Request, viewerScheme string) {
	scheme := o.scheme(viewerScheme)
	port := o.cfg.HTTPSPort
	if scheme == "http" {
		port = o.cfg.HTTPPort
	}
	host := o.cfg.DomainName
	if (scheme == "https" && port != 443) || (scheme == "http" && port != 80) {
		host = net.JoinHostPort(host, strconv.Itoa(port))
	}
	out.URL.Scheme = scheme
	out.URL.Host = host
	out.Host = host
	if vh, _ := out.Context().Value(viewerHostKey{}).(string); vh != "" {
		out.Host = vh // the origin request policy forwards the viewer's Host (AllViewer)
	}
	if o.cfg.OriginPath != "" {
		out.URL.Path = o.cfg.OriginPath + out.URL.Path
		if out.URL.RawPath != "" {
			out.URL.RawPath = o.cfg.OriginPath + out.URL.RawPath
		}
	}
	for k, v := range o.cfg.CustomHeaders {
		out.Header.Set(k, v)
	}
}

// originFailure carries which origin failed, for the operational log.
type originFailure struct {
	origin *origin
	err    error
}

func (f *originFailure) Error() string {
	return fmt.Sprintf("origin %s (%s): %v", f.origin.cfg.ID, f.origin.cfg.DomainName, f.err)
}

func (f *originFailure) Unwrap() error { return f.err }

// failoverMethods are the methods CloudFront fails over for.
func canFailover(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

// RoundTrip sends the request to the first origin and, inside a group,
// fails over to the next on a connection failure or a failover status.
func (t *target) RoundTrip(req *http.Request) (*http.Response, error) {
	ex := exchangeFrom(req.Context())
	viewerScheme := "http"
	if ex != nil && ex.r.TLS != nil {
		viewerScheme = "https"
	}
	var lastErr error
	for i, o := range t.origins {
		out := req
		if i > 0 {
			out = req.Clone(req.Context())
		}
		o.prepare(out, viewerScheme)
		if ex != nil && ex.timesOrigin() {
			out = out.WithContext(ex.traceOrigin(out.Context()))
		}
		resp, err := o.transport.RoundTrip(out)
		last := i == len(t.origins)-1
		if err != nil {
			lastErr = &originFailure{origin: o, err: err}
			if last || !canFailover(req.Method) || req.Context().Err() != nil {
				return nil, lastErr
			}
			switch originconn.Classify(err) {
			case originconn.KindDNS, originconn.KindConnect, originconn.KindTimeout:
				if ex != nil {
					ex.logger().Warn().Str("origin", o.cfg.ID).Err(err).Msg("origin failed; failing over to the next member of the origin group")
				}
				continue
			}
			return nil, lastErr
		}
		if !last && canFailover(req.Method) && slices.Contains(t.failover, resp.StatusCode) {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if ex != nil {
				ex.logger().Warn().Str("origin", o.cfg.ID).Int("status", resp.StatusCode).Msg("origin answered a failover status; failing over")
			}
			continue
		}
		return resp, nil
	}
	return nil, lastErr
}

// timesOrigin reports whether the viewer's response carries Server-Timing,
// the only reader of the origin's timings: tracing costs a context, the
// hooks' allocations and, on top of ReverseProxy's own trace, a
// reflective merge of the two on every request.
func (ex *exchange) timesOrigin() bool { return ex.rhp != nil && ex.rhp.timing }

// traceOrigin measures, for Server-Timing, how long a new connection to
// the origin took (TCP and TLS) and how long the origin took to its first
// response byte.
func (ex *exchange) traceOrigin(ctx context.Context) context.Context {
	var connStart time.Time
	sent := time.Now()
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		ConnectStart: func(string, string) {
			ex.mu.Lock()
			if connStart.IsZero() {
				connStart = time.Now()
			}
			ex.mu.Unlock()
		},
		GotConn: func(info httptrace.GotConnInfo) {
			ex.mu.Lock()
			if !info.Reused && !connStart.IsZero() {
				ex.timing.connect = time.Since(connStart)
			}
			ex.mu.Unlock()
		},
		WroteRequest: func(httptrace.WroteRequestInfo) {
			ex.mu.Lock()
			sent = time.Now()
			ex.mu.Unlock()
		},
		GotFirstResponseByte: func() {
			ex.mu.Lock()
			ex.timing.firstByte = time.Since(sent)
			ex.mu.Unlock()
		},
	})
}

func (t *target) closeIdle() {
	for _, o := range t.origins {
		o.transport.CloseIdleConnections()
	}
}

// newProxy builds the reverse proxy for a target (and the target's buffer
// pool). Rewrite (not the unsafe Director) is used so that hop-by-hop
// headers, and headers a viewer names in Connection, are stripped before
// our own headers are added.
func (s *Server) newProxy(t *target) streamingProxy {
	if t.bufs == nil {
		t.bufs = &bufferPool{}
	}
	return streamingProxy{&httputil.ReverseProxy{
		BufferPool: t.bufs,
		Rewrite: func(pr *httputil.ProxyRequest) {
			// pr.In went through the origin request policy: an
			// X-Forwarded-Host still on it is one the policy names.
			if v := pr.In.Header.Values("X-Forwarded-Host"); len(v) > 0 {
				pr.Out.Header["X-Forwarded-Host"] = v
			}
			s.setForwarding(pr.Out.Header, pr.In, exchangeFrom(pr.In.Context()))
		},
		Transport: t,
		ModifyResponse: func(resp *http.Response) error {
			ex := exchangeFrom(resp.Request.Context())
			if ex == nil {
				return nil
			}
			resp.Body = &originBody{ReadCloser: resp.Body, ex: ex}
			resp.Header.Del(cache.OwnTargetedField) // it speaks to the edge only, cached or not
			result := accesslog.ResultMiss
			if resp.StatusCode >= 400 {
				result = accesslog.ResultError
			}
			ex.classify(result, result, result)
			h := resp.Header
			if resp.StatusCode != http.StatusSwitchingProtocols {
				// The header goes to the viewer's map here, its values in
				// one array, rather than through ReverseProxy's copy, which
				// allocates per field; the upgrade of a 101 needs it left on
				// resp. The hop-by-hop fields are gone already.
				h = ex.Header()
				spare := copyEndToEnd(h, resp.Header, edgeFields)
				resp.Header = nil // ReverseProxy only reads it from here on
				s.edgeHeadersStatus(h, ex, result, "", spare)
				return nil
			}
			s.edgeHeaders(h, ex, result)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			ex := exchangeFrom(r.Context())
			s.originError(w, r, ex, err)
		},
		// Stream as the origin sends: the viewer's first byte follows the
		// origin's, and a body cut midway still reaches the viewer as far as
		// it got, with the status it was sent. flushWriter flushes every
		// write; ReverseProxy adds its own flushing only for a body of
		// unknown length and event streams.
		FlushInterval: 0,
		ErrorLog:      s.stdlog,
	}}
}

// setForwarding sets the headers the edge adds to every origin request:
// the viewer's X-Forwarded-For chain with the viewer appended, as
// CloudFront does, X-Forwarded-Proto, X-Forwarded-Host, our Via hop and
// the request id. X-Forwarded-Host is the Host as the cache key holds it
// (lower case, no port), so an origin building links from it cannot be
// steered by a viewer; a viewer's own value is kept only when the origin
// request policy names the header (it is then on out already).
func (s *Server) setForwarding(out http.Header, viewer *http.Request, ex *exchange) {
	// The values share one array (capped slices, so an Add to one cannot
	// spill into the next): this runs on every origin request.
	v := make([]string, 0, 5)
	set := func(k, value string) {
		v = append(v, value)
		out[k] = v[len(v)-1 : len(v) : len(v)]
	}
	client := stripPort(viewer.RemoteAddr)
	if xff := viewer.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		client = strings.Join(xff, ", ") + ", " + client
	}
	set("X-Forwarded-For", client)
	proto := "http"
	if viewer.TLS != nil {
		proto = "https"
	}
	set("X-Forwarded-Proto", proto)
	if out.Get("X-Forwarded-Host") == "" {
		set("X-Forwarded-Host", strings.ToLower(strings.TrimSuffix(stripPort(viewer.Host), ".")))
	}
	if ex != nil {
		set("Via", via(out, ex.st.cfg.Edge.Location))
		set("X-Edge-Request-Id", ex.id)
	}
}

// viaHop is this edge's hop in a Via header.
func viaHop(location string) string { return "1.1 " + location + " (edgegate)" }

// via is the Via header with this edge's hop appended.
func via(h http.Header, location string) string {
	hop := viaHop(location)
	if v := h.Get("Via"); v != "" {
		return v + ", " + hop
	}
	return hop
}

// addVia appends this edge's hop to the Via header.
func addVia(h http.Header, location string) {
	h.Set("Via", via(h, location))
}

// edgeHeaders adds the headers every edge response carries. The keys are
// canonical already and the values share one array: this runs on
// every request, hits included.
func (s *Server) edgeHeaders(h http.Header, ex *exchange, result accesslog.ResultType) {
	s.edgeHeadersStatus(h, ex, result, "", nil)
}

// edgeFields is how many values edgeHeaders sets (X-Cache,
// X-Edge-Location, X-Edge-Request-Id, Via).
const edgeFields = 4

// edgeHeadersStatus is edgeHeaders that also sets Cache-Status (RFC 9211)
// when cacheStatus is not empty, its value in the same array; that array
// is spare when it has room (copyEndToEnd leaves some), else a new one.
func (s *Server) edgeHeadersStatus(h http.Header, ex *exchange, result accesslog.ResultType, cacheStatus string, spare []string) {
	loc := ex.st.cfg.Edge.Location
	if len(h["Via"]) > 0 {
		addVia(h, loc) // the origin's hops come first
	}
	n := edgeFields
	if cacheStatus != "" {
		n++
	}
	v := spare
	if len(v) < n {
		v = make([]string, n)
	}
	v[0], v[1], v[2], v[3] = xCache(result), loc, ex.id, ex.st.via
	h["X-Cache"], h["X-Edge-Location"], h["X-Edge-Request-Id"] = v[0:1:1], v[1:2:2], v[2:3:3]
	if len(h["Via"]) == 0 {
		h["Via"] = v[3:4:4]
	}
	if cacheStatus != "" {
		v[4] = cacheStatus
		h["Cache-Status"] = v[4:5:5]
	}
}

// xCache is the X-Cache value for a result type, without building the
// string for the common ones.
func xCache(result accesslog.ResultType) string {
	switch result {
	case accesslog.ResultHit:
		return "Hit from edgegate"
	case accesslog.ResultMiss:
		return "Miss from edgegate"
	case accesslog.ResultRefreshHit:
		return "RefreshHit from edgegate"
	case accesslog.ResultError:
		return "Error from edgegate"
	}
	return string(result) + " from edgegate"
}

// originError answers a failed origin fetch with the status and result
// types of DESIGN §4 and logs the cause for the operator.
func (s *Server) originError(w http.ResponseWriter, r *http.Request, ex *exchange, err error) {
	if ex.bodyBroken() {
		// The viewer broke its own request body (a malformed chunk, a body
		// cut short, a hang-up mid-upload): its fault, not the origin's,
		// and a communication error even if its context is gone too.
		ex.classify(accesslog.ResultError, accesslog.ResultError, accesslog.ResultClientCommError)
		_, berr := ex.reqBody.stats()
		ex.logger().Info().Str("detailed_result_type", string(accesslog.ResultClientCommError)).Str("cause", rootCause(berr)).
			Msg("the viewer's request body is malformed or cut short")
		s.errorPage(w, ex, http.StatusBadRequest, "The request body is malformed or was cut short.")
		return
	}
	if r.Context().Err() != nil && errors.Is(err, context.Canceled) {
		// The viewer hung up before a response: nothing can be sent (000).
		ex.classify(accesslog.ResultError, accesslog.ResultError, accesslog.ResultClientHungUpRequest)
		return
	}
	kind := originconn.Classify(err)
	var be *bodyReadError
	if errors.As(err, &be) {
		kind = originconn.KindRead
		var ne net.Error
		if errors.As(be.err, &ne) && ne.Timeout() {
			kind = originconn.KindTimeout
		}
	}
	detailed := kind.Result()
	status := kind.Status()
	ex.classify(accesslog.ResultError, accesslog.ResultError, detailed)
	ev := ex.logger().Error().Str("detailed_result_type", string(detailed)).Int("status", status)
	var f *originFailure
	if errors.As(err, &f) {
		ev = ev.Str("origin", f.origin.cfg.ID).Str("domain_name", f.origin.cfg.DomainName)
		if f.origin.cfg.ConnectTo != "" {
			ev = ev.Str("connect_to", f.origin.cfg.ConnectTo)
		}
		err = f.err
	}
	ev.Str("cause", rootCause(err)).Err(err).Msg(originAdvice(kind))
	s.errorPage(w, ex, status, errorText(status))
}

// rootCause is the innermost error text, e.g. "x509: certificate is valid
// for alb.example.test, not lb-123.elb.example.test".
func rootCause(err error) string {
	for next := errors.Unwrap(err); next != nil; next = errors.Unwrap(err) {
		err = next
	}
	return err.Error()
}

// originAdvice is the result table's advice for an origin failure.
func originAdvice(k originconn.Kind) string {
	if a := k.Result().Info().Advice; a != "" {
		return a
	}
	return "origin broke the response"
}

func errorText(status int) string {
	switch status {
	case http.StatusBadGateway:
		return "edgegate wasn't able to connect to the origin."
	case http.StatusGatewayTimeout:
		return "edgegate attempted to establish a connection with the origin, but either the attempt failed or the origin closed the connection."
	}
	return http.StatusText(status)
}

// errorPage writes a small generated error response with the edge headers.
func (s *Server) errorPage(w http.ResponseWriter, ex *exchange, status int, msg string) {
	h := w.Header()
	for k := range h {
		// What an origin or an earlier step set goes; Allow (for a 403 on
		// the method) and Connection: close (to end the connection) stay.
		if k != "Allow" && k != "Connection" {
			delete(h, k)
		}
	}
	s.edgeHeaders(h, ex, accesslog.ResultError)
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	body := strconv.Itoa(status) + " " + http.StatusText(status) + "\n" + msg + "\nRequest ID: " + ex.id + "\n"
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if ex.r.Method != http.MethodHead {
		_, _ = io.WriteString(w, body)
	}
}

type exchangeKey struct{}

func exchangeFrom(ctx context.Context) *exchange {
	ex, _ := ctx.Value(exchangeKey{}).(*exchange)
	return ex
}

func (ex *exchange) logger() *zerolog.Logger {
	l := ex.log.With().Str("request_id", ex.id).Str("host", ex.r.Host).Str("uri", ex.r.URL.Path).Logger()
	return &l
}
