package edge

import (
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/edgegate/edgegate/edge/accesslog"
)

// respHeaders is a behavior's response headers policy, compiled.
type respHeaders struct {
	set       []headerAction
	remove    []string
	cors      *CORSConfig
	anyOrigin bool
	origins   map[string]bool // lower case
	timing    bool
	sampling  float64 // percent
}

type headerAction struct {
	name, value string
	override    bool
	httpsOnly   bool
}

// compileRHP turns a policy into what each response applies; nil when the
// behavior has none.
func compileRHP(p *ResponseHeadersPolicy) *respHeaders {
	if p.isZero() {
		return nil
	}
	rh := &respHeaders{cors: p.CORS, timing: p.ServerTiming.Enabled, sampling: 100}
	if r := p.ServerTiming.SamplingRate; r != nil {
		rh.sampling = *r
	}
	for _, h := range p.RemoveHeaders {
		rh.remove = append(rh.remove, http.CanonicalHeaderKey(h))
	}
	sh := p.SecurityHeaders
	if h := sh.StrictTransportSecurity; h != nil {
		v := "max-age=" + strconv.FormatInt(int64(h.MaxAge.D()/time.Second), 10)
		if h.IncludeSubdomains {
			v += "; includeSubDomains"
		}
		if h.Preload {
			v += "; preload"
		}
		rh.set = append(rh.set, headerAction{"Strict-Transport-Security", v, h.Override, true})
	}
	if h := sh.ContentTypeOptions; h != nil {
		rh.set = append(rh.set, headerAction{"X-Content-Type-Options", "nosniff", h.Override, false})
	}
	for _, v := range []struct {
		name string
		h    *ValueHeader
	}{{"X-Frame-Options", sh.FrameOptions}, {"Referrer-Policy", sh.ReferrerPolicy},
		{"Content-Security-Policy", sh.ContentSecurityPolicy}, {"X-Xss-Protection", sh.XSSProtection}} {
		if v.h != nil {
			rh.set = append(rh.set, headerAction{v.name, v.h.Value, v.h.Override, false})
		}
	}
	for _, h := range p.CustomHeaders {
		rh.set = append(rh.set, headerAction{http.CanonicalHeaderKey(h.Header), h.Value, h.Override, false})
	}
	if c := p.CORS; c != nil {
		rh.origins = map[string]bool{}
		for _, o := range c.AllowOrigins {
			if o == "*" {
				rh.anyOrigin = true
			}
			rh.origins[strings.ToLower(o)] = true
		}
	}
	return rh
}

// answersPreflight reports whether the policy answers r as a CORS
// preflight at the edge.
func (rh *respHeaders) answersPreflight(r *http.Request) bool {
	return rh != nil && rh.cors != nil && len(rh.cors.AllowMethods) > 0 && isPreflight(r)
}

func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

// allowOrigin is the Access-Control-Allow-Origin value for a request's
// Origin, or "" when the origin is not allowed.
func (rh *respHeaders) allowOrigin(origin string) string {
	switch {
	case origin == "":
		return ""
	case rh.anyOrigin && !rh.cors.AllowCredentials:
		return "*"
	case rh.anyOrigin || rh.origins[strings.ToLower(origin)]:
		return origin
	}
	return ""
}

// preflight answers a CORS preflight at the edge (Fetch standard §3.2.3):
// 204 with what the policy allows, or 403 without any CORS header when the
// origin, method or a header is not allowed, so the browser refuses.
func (s *Server) preflight(ex *exchange, r *http.Request, rh *respHeaders) {
	c := rh.cors
	ex.classify(accesslog.ResultHit, accesslog.ResultHit, accesslog.ResultHit)
	h := ex.Header()
	s.edgeHeaders(h, ex, accesslog.ResultHit)
	h.Set("Content-Length", "0")
	ao := rh.allowOrigin(r.Header.Get("Origin"))
	method := r.Header.Get("Access-Control-Request-Method")
	methodOK := slices.Contains(c.AllowMethods, "ALL") || slices.ContainsFunc(c.AllowMethods, func(m string) bool { return strings.EqualFold(m, method) })
	headersOK := true
	var requested []string
	for _, v := range r.Header.Values("Access-Control-Request-Headers") {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				requested = append(requested, f)
			}
		}
	}
	wildcard := slices.Contains(c.AllowHeaders, "*") && !c.AllowCredentials
	for _, f := range requested {
		if !wildcard && !slices.ContainsFunc(c.AllowHeaders, func(a string) bool { return strings.EqualFold(a, f) }) {
			headersOK = false
		}
	}
	if ao != "*" {
		addVary(h, "Origin")
	}
	if ao == "" || !methodOK || !headersOK {
		ex.classify(accesslog.ResultError, accesslog.ResultError, accesslog.ResultError)
		h.Set("X-Cache", string(accesslog.ResultError)+" from edgegate")
		ex.WriteHeader(http.StatusForbidden)
		return
	}
	h.Set("Access-Control-Allow-Origin", ao)
	methods := c.AllowMethods
	if slices.Contains(methods, "ALL") {
		methods = knownMethods
	}
	h.Set("Access-Control-Allow-Methods", strings.Join(methods, ", "))
	if len(requested) > 0 {
		if wildcard {
			h.Set("Access-Control-Allow-Headers", "*")
		} else {
			h.Set("Access-Control-Allow-Headers", strings.Join(requested, ", "))
		}
	}
	if c.AllowCredentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if c.MaxAge > 0 {
		h.Set("Access-Control-Max-Age", strconv.FormatInt(int64(c.MaxAge.D()/time.Second), 10))
	}
	ex.WriteHeader(http.StatusNoContent)
}

// apply edits the header of a response about to be sent to the viewer of
// ex: removals first, then security and custom headers, CORS and
// Server-Timing. It runs once per response, on cached hits and the edge's
// own errors and redirects alike, so nothing it adds is ever stored.
func (rh *respHeaders) apply(h http.Header, ex *exchange) {
	for _, k := range rh.remove {
		delete(h, k)
	}
	https := ex.r.TLS != nil
	for _, a := range rh.set {
		if a.httpsOnly && !https {
			continue // RFC 6797 §7.2: HSTS over plain HTTP is ignored, and must not be sent
		}
		if !a.override && len(h[a.name]) > 0 {
			continue
		}
		h.Set(a.name, a.value)
	}
	if c := rh.cors; c != nil && !rh.answersPreflight(ex.r) {
		if ao := rh.allowOrigin(ex.r.Header.Get("Origin")); ao != "" && (c.OriginOverride || h.Get("Access-Control-Allow-Origin") == "") {
			h.Set("Access-Control-Allow-Origin", ao)
			if ao != "*" {
				addVary(h, "Origin")
			}
			if c.AllowCredentials {
				h.Set("Access-Control-Allow-Credentials", "true")
			}
			if len(c.ExposeHeaders) > 0 {
				h.Set("Access-Control-Expose-Headers", strings.Join(c.ExposeHeaders, ", "))
			}
		}
	}
	if rh.timing && (rh.sampling >= 100 || rand.Float64()*100 < rh.sampling) {
		h.Add("Server-Timing", ex.serverTiming())
	}
}

// serverTiming is the Server-Timing value with the edge's own timings, in
// CloudFront's metric names plus the cache lookup: cdn-cache-hit/miss/
// refresh, cdn-pop, cdn-rid, cdn-cache-lookup, cdn-upstream-connect (a new
// origin connection only) and cdn-upstream-fbl (origin first byte).
// Called with ex.mu not held.
func (ex *exchange) serverTiming() string {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	var b strings.Builder
	switch ex.result {
	case accesslog.ResultHit:
		b.WriteString("cdn-cache-hit,")
	case accesslog.ResultRefreshHit:
		b.WriteString("cdn-cache-refresh,")
	case accesslog.ResultMiss:
		b.WriteString("cdn-cache-miss,")
	}
	b.WriteString(`cdn-pop;desc="` + ex.st.cfg.Edge.Location + `",cdn-rid;desc="` + ex.id + `"`)
	dur := func(name string, d time.Duration) {
		b.WriteString("," + name + ";dur=" + strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', -1, 64))
	}
	if ex.timing.lookup > 0 {
		dur("cdn-cache-lookup", ex.timing.lookup)
	}
	if ex.timing.connect > 0 {
		dur("cdn-upstream-connect", ex.timing.connect)
	}
	if ex.timing.firstByte > 0 {
		dur("cdn-upstream-fbl", ex.timing.firstByte)
	}
	return b.String()
}

// edgeTimings are what Server-Timing reports; zero when not measured.
type edgeTimings struct {
	lookup    time.Duration // the cache's answer, or until it asked the origin
	connect   time.Duration // TCP and TLS to the origin, a new connection only
	firstByte time.Duration // origin request sent to its first response byte
}
