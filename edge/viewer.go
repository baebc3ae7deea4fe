package edge

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/edgegate/edgegate/edge/accesslog"
	"github.com/edgegate/edgegate/internal/hostname"
	"github.com/edgegate/edgegate/internal/urlpath"
)

// maxURLBytes is CloudFront's limit on a request URL.
const maxURLBytes = 8192

// serveViewer handles one viewer request on either port and writes its
// log line whatever happens, including a panic that aborts the response.
func (s *Server) serveViewer(w http.ResponseWriter, r *http.Request) {
	s.inflight.Add(1)
	defer s.inflight.Done()
	vc := viewerConnFrom(r.Context())
	if vc != nil {
		vc.handlerStarted()
		if r.TLS == nil && vc.tls != nil {
			// HTTP/2 reaches the server as a decrypted stream (conn.go).
			r = r.WithContext(r.Context())
			r.TLS = vc.tls
		}
	}
	ex := newExchange(w, r)
	if vc != nil {
		defer func() { vc.handlerDone(ex.bodyBroken()) }()
	}
	ex.st = s.state()
	ex.log = s.log
	// The routed request carries the exchange in its context, and its URL
	// is a copy that routing rewrites; the log keeps the one received (ex.r).
	ex.ctx = exchangeCtx{Context: r.Context(), ex: ex}
	ex.url = *r.URL
	r = r.WithContext(&ex.ctx)
	r.URL = &ex.url
	defer func() {
		if v := recover(); v != nil {
			// http.ErrAbortHandler from the proxy: the response was cut.
			s.finish(ex, true)
			panic(v)
		}
		s.finish(ex, false)
	}()
	if vc != nil && vc.conflictingFraming() {
		// RFC 9112 §6.1: a request with both Content-Length and
		// Transfer-Encoding may be smuggling another; answer and close.
		ex.classify(accesslog.ResultError, accesslog.ResultError, accesslog.ResultInvalidRequestHeader)
		ex.Header().Set("Connection", "close")
		s.errorPage(ex, ex, http.StatusBadRequest, "The request has both Content-Length and Transfer-Encoding.")
		return
	}
	s.route(ex, r)
}

func (s *Server) route(ex *exchange, r *http.Request) {
	host := strings.ToLower(strings.TrimSuffix(stripPort(r.Host), "."))
	d := ex.st.distribution(host)
	ex.dist = d
	if d != nil {
		ex.rhp = d.behaviors[len(d.behaviors)-1].headers
		if r.TLS != nil && r.ProtoMajor < 3 {
			ex.altSvc = s.altSvc(d)
		}
	}
	if d == nil {
		status := http.StatusForbidden
		if r.TLS != nil {
			status = http.StatusMisdirectedRequest
		}
		ex.classify(accesslog.ResultError, accesslog.ResultError, accesslog.ResultInvalidRequest)
		s.errorPage(ex, ex, status, "This edge serves no distribution for host "+host+".")
		return
	}
	if r.TLS != nil {
		// The Host must belong to the distribution whose certificate the
		// connection was made with, or one name could front for another.
		sni := strings.ToLower(r.TLS.ServerName)
		if sni == "" {
			sni = tlsLocalIP(r) // an IP alias: no SNI, the address dialled names it
		}
		if sd := ex.st.distribution(sni); sd != d {
			ex.classify(accesslog.ResultError, accesslog.ResultError, accesslog.ResultInvalidRequestCertificate)
			s.errorPage(ex, ex, http.StatusMisdirectedRequest, "The Host header does not match the certificate of this connection.")
			return
		}
	}
	if r.ProtoMajor == 3 && !s.earlyDataOK(ex, r, d) {
		return
	}
	if len(r.RequestURI) > maxURLBytes {
		ex.classify(accesslog.ResultError, accesslog.ResultError, accesslog.ResultInvalidRequest)
		s.errorPage(ex, ex, http.StatusRequestURITooLong, "The request URL is too long.")
		return
	}
	if !normalizePath(r.URL) {
		// "*", an opaque form like "http:@evil.test/x", or no path at all:
		// nothing a behavior could match or a redirect could carry.
		ex.classify(accesslog.ResultError, accesslog.ResultError, accesslog.ResultInvalidRequest)
		s.errorPage(ex, ex, http.StatusBadRequest, "The request target is not a path.")
		return
	}
	b := d.behaviorFor(r.URL.EscapedPath())
	ex.rhp = b.headers
	if r.TLS == nil {
		switch d.cfg.ViewerProtocolPolicy {
		case PolicyRedirectToHTTPS:
			if r.Method != http.MethodGet && r.Method != http.MethodHead && r.ProtoAtLeast(1, 1) {
				s.redirect(ex, r, host, http.StatusTemporaryRedirect)
				return
			} else if r.Method == http.MethodGet || r.Method == http.MethodHead {
				s.redirect(ex, r, host, http.StatusMovedPermanently)
				return
			}
			fallthrough // HTTP/1.0 with another method cannot be redirected safely
		case PolicyHTTPSOnly:
			ex.classify(accesslog.ResultError, accesslog.ResultError, accesslog.ResultError)
			s.errorPage(ex, ex, http.StatusForbidden, "This distribution is served over HTTPS only.")
			return
		}
	}
	if b.headers.answersPreflight(r) {
		// The policy answers CORS preflights at the edge, whatever the
		// behavior's allowed methods: the origin never sees them.
		s.preflight(ex, r, b.headers)
		return
	}
	if !b.allows(r.Method) {
		ex.classify(accesslog.ResultError, accesslog.ResultError, accesslog.ResultInvalidRequestMethod)
		ex.Header().Set("Allow", strings.Join(b.cfg.AllowedMethods, ", "))
		s.errorPage(ex, ex, http.StatusForbidden, "This distribution is not configured to allow the HTTP request method "+r.Method+" here.")
		return
	}
	// Until a response arrives, a miss is what is happening.
	ex.classify(accesslog.ResultMiss, accesslog.ResultMiss, accesslog.ResultMiss)
	if !b.cfg.CachePolicy.Disabled {
		s.serveCached(ex, r, b)
		return
	}
	s.serveUncached(ex, r, b)
}

// normalizePath rewrites u's path to its normalised form (internal/urlpath),
// which behavior matching, the cache key and the origin request all use.
// It is false for a request target that is not an absolute path.
func normalizePath(u *url.URL) bool {
	if u.Opaque != "" || !strings.HasPrefix(u.Path, "/") {
		return false
	}
	esc := u.EscapedPath()
	norm := urlpath.Normalize(esc)
	if norm == esc {
		return true
	}
	p, err := url.PathUnescape(norm)
	if err != nil {
		return false
	}
	u.Path, u.RawPath = p, norm
	return true
}

// behaviorFor returns the first behavior whose pattern matches the
// normalised escaped path (an encoded slash never matches "/"), else the
// default.
func (d *distribution) behaviorFor(path string) *behavior {
	for _, b := range d.behaviors {
		if b.pattern == "" || matchPath(b.pattern, path) {
			return b
		}
	}
	return d.behaviors[len(d.behaviors)-1]
}

// redirect sends the viewer to the same host, path and query over HTTPS.
// Location is built only from the matched alias (host), the normalised
// path and the query, never from the request target as sent, so that no
// request line can make it point elsewhere.
func (s *Server) redirect(ex *exchange, r *http.Request, host string, status int) {
	target := "https://" + host
	if _, port, err := net.SplitHostPort(s.Addr("https")); err == nil && port != "443" {
		target += ":" + port
	}
	target += r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	ex.classify(accesslog.ResultRedirect, accesslog.ResultRedirect, accesslog.ResultRedirect)
	h := ex.Header()
	s.edgeHeaders(h, ex, accesslog.ResultRedirect)
	h.Set("Location", target)
	h.Set("Content-Length", "0")
	ex.WriteHeader(status)
}

func stripPort(hostport string) string {
	return strings.Trim(hostname.WithoutPort(hostport), "[]")
}

// finish settles the result types of a cut exchange and writes its line.
func (s *Server) finish(ex *exchange, aborted bool) {
	// The start plus the monotonic time since: one clock read, not two.
	end := ex.start.Add(time.Since(ex.start))
	ex.mu.Lock()
	switch {
	case ex.originErr != nil && (aborted || ex.writeErr == nil):
		// The origin broke the body midway: the viewer got a cut response.
		ex.result, ex.detailed = accesslog.ResultError, accesslog.ResultOriginReadError
	case ex.writeErr != nil || (aborted && ex.status != 0):
		// The viewer went away while we sent; the response type stays as it was.
		ex.result, ex.detailed = accesslog.ResultError, accesslog.ResultClientCommError
	case ex.reqBody != nil && ex.status == 0:
		if _, err := ex.reqBody.stats(); err != nil {
			ex.result, ex.respResult, ex.detailed = accesslog.ResultError, accesslog.ResultError, accesslog.ResultClientHungUpRequest
		}
	}
	if ex.result == "" {
		ex.result, ex.respResult, ex.detailed = accesslog.ResultError, accesslog.ResultError, accesslog.ResultError
	}
	result, detailed, status := ex.result, ex.detailed, ex.status
	originErr := ex.originErr
	ex.mu.Unlock()
	if originErr != nil && detailed == accesslog.ResultOriginReadError {
		ex.logger().Error().Str("detailed_result_type", string(detailed)).Str("cause", rootCause(originErr)).Err(originErr).
			Msg("origin broke the response midway")
	}
	s.stats.count(result, detailed, status)
	rec := ex.record(ex.st.cfg.Edge.Location, ex.st.cfg.Edge.Logs.IncludeCookies, end)
	s.writeLine(&rec)
}

// tlsLocalIP is the address the viewer's connection was accepted on.
func tlsLocalIP(r *http.Request) string {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return ""
}
