package edge

import (
	"context"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/edgegate/edgegate/edge/accesslog"
)

// maxURLBytes is CloudFront's limit on a request URL.
const maxURLBytes = 8192

// serveViewer handles one viewer request on either port and writes its
// log line whatever happens, including a panic that aborts the response.
func (s *Server) serveViewer(w http.ResponseWriter, r *http.Request) {
	s.inflight.Add(1)
	defer s.inflight.Done()
	ex := newExchange(w, r)
	ex.log = s.log
	r = r.WithContext(context.WithValue(r.Context(), exchangeKey{}, ex))
	defer func() {
		if v := recover(); v != nil {
			// http.ErrAbortHandler from the proxy: the response was cut.
			s.finish(ex, true)
			panic(v)
		}
		s.finish(ex, false)
	}()
	s.route(ex, r)
}

func (s *Server) route(ex *exchange, r *http.Request) {
	host := strings.ToLower(strings.TrimSuffix(stripPort(r.Host), "."))
	d := s.byHost[host]
	ex.dist = d
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
		if sd := s.byHost[strings.ToLower(r.TLS.ServerName)]; sd != d {
			ex.classify(accesslog.ResultError, accesslog.ResultError, accesslog.ResultInvalidRequestCertificate)
			s.errorPage(ex, ex, http.StatusMisdirectedRequest, "The Host header does not match the certificate of this connection.")
			return
		}
	}
	if len(r.RequestURI) > maxURLBytes {
		ex.classify(accesslog.ResultError, accesslog.ResultError, accesslog.ResultInvalidRequest)
		s.errorPage(ex, ex, http.StatusRequestURITooLong, "The request URL is too long.")
		return
	}
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
	b := d.behaviorFor(r.URL.Path)
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

// behaviorFor returns the first behavior whose pattern matches, else the
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
func (s *Server) redirect(ex *exchange, r *http.Request, host string, status int) {
	target := "https://" + host
	if _, port, err := net.SplitHostPort(s.Addr("https")); err == nil && port != "443" {
		target += ":" + port
	}
	target += r.URL.RequestURI()
	ex.classify(accesslog.ResultRedirect, accesslog.ResultRedirect, accesslog.ResultRedirect)
	h := ex.Header()
	s.edgeHeaders(h, ex, accesslog.ResultRedirect)
	h.Set("Location", target)
	h.Set("Content-Length", "0")
	ex.WriteHeader(status)
}

func stripPort(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

// finish settles the result types of a cut exchange and writes its line.
func (s *Server) finish(ex *exchange, aborted bool) {
	end := time.Now()
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
	if s.access == nil {
		return
	}
	rec := ex.record(s.cfg.Edge.Location, s.cfg.Edge.Logs.IncludeCookies, end)
	if err := s.access.Write(rec); err != nil {
		s.log.Error().Err(err).Str("request_id", ex.id).Msg("standard log line not written")
	}
}
