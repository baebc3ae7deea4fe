package edge

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/edgegate/edgegate/internal/yamlconf"
	"go.yaml.in/yaml/v3"
)

// ResponseHeadersPolicy is CloudFront's response headers policy on a
// behavior: headers the edge adds to, or removes from, every response it
// sends the viewer (errors, redirects and cached hits included). Written as
// one of the managed policies' names or as a mapping.
type ResponseHeadersPolicy struct {
	// Managed is the managed policy's name when the policy was written as
	// one; empty for a custom policy.
	Managed string `yaml:"-"`
	// CORS adds the CORS headers to responses to cross-origin requests and,
	// with allow_methods, answers preflight OPTIONS requests at the edge.
	CORS *CORSConfig `yaml:"cors"`
	// SecurityHeaders are the well-known security headers.
	SecurityHeaders SecurityHeaders `yaml:"security_headers"`
	// CustomHeaders are added as written.
	CustomHeaders []CustomHeader `yaml:"custom_headers"`
	// RemoveHeaders are taken out of the origin's (or the cache's) response.
	RemoveHeaders []string `yaml:"remove_headers"`
	// ServerTiming adds a Server-Timing header with the edge's timings.
	ServerTiming ServerTiming `yaml:"server_timing"`
}

// CORSConfig is the CORS part of a response headers policy.
type CORSConfig struct {
	// AllowOrigins are the origins (https://app.example.com) allowed, or "*".
	AllowOrigins []string `yaml:"allow_origins"`
	// AllowMethods are the methods a preflight allows, or ALL; preflights
	// are answered at the edge only when set.
	AllowMethods []string `yaml:"allow_methods"`
	// AllowHeaders are the request headers a preflight allows, or "*".
	AllowHeaders []string `yaml:"allow_headers"`
	// ExposeHeaders are the response headers scripts may read, or "*".
	ExposeHeaders []string `yaml:"expose_headers"`
	// AllowCredentials sends Access-Control-Allow-Credentials: true.
	AllowCredentials bool `yaml:"allow_credentials"`
	// MaxAge is Access-Control-Max-Age of preflight answers.
	MaxAge yamlconf.Duration `yaml:"max_age"`
	// OriginOverride replaces CORS headers the origin sent; otherwise the
	// origin's win.
	OriginOverride bool `yaml:"origin_override"`
}

// SecurityHeaders are the security headers of a response headers policy;
// each is sent when present.
type SecurityHeaders struct {
	StrictTransportSecurity *HSTSHeader         `yaml:"strict_transport_security"`
	ContentTypeOptions      *ContentTypeOptions `yaml:"content_type_options"`
	FrameOptions            *ValueHeader        `yaml:"frame_options"`
	ReferrerPolicy          *ValueHeader        `yaml:"referrer_policy"`
	ContentSecurityPolicy   *ValueHeader        `yaml:"content_security_policy"`
	XSSProtection           *ValueHeader        `yaml:"xss_protection"`
}

// HSTSHeader is Strict-Transport-Security; it is sent over HTTPS only
// (RFC 6797 §7.2).
type HSTSHeader struct {
	MaxAge            yamlconf.Duration `yaml:"max_age"`
	IncludeSubdomains bool              `yaml:"include_subdomains"`
	Preload           bool              `yaml:"preload"`
	Override          bool              `yaml:"override"`
}

// ContentTypeOptions is X-Content-Type-Options: nosniff.
type ContentTypeOptions struct {
	Override bool `yaml:"override"`
}

// ValueHeader is a security header with its value.
type ValueHeader struct {
	Value    string `yaml:"value"`
	Override bool   `yaml:"override"`
}

// CustomHeader is a header a policy adds.
type CustomHeader struct {
	Header   string `yaml:"header"`
	Value    string `yaml:"value"`
	Override bool   `yaml:"override"`
}

// ServerTiming configures the Server-Timing header.
type ServerTiming struct {
	Enabled bool `yaml:"enabled"`
	// SamplingRate is the percentage (0 to 100) of responses that carry it;
	// 100 when enabled without one.
	SamplingRate *float64 `yaml:"sampling_rate"`
}

// Managed response headers policies, named as CloudFront names them.
const (
	RHPSimpleCORS                                = "SimpleCORS"
	RHPCORSWithPreflight                         = "CORS-With-Preflight"
	RHPSecurityHeadersPolicy                     = "SecurityHeadersPolicy"
	RHPCORSAndSecurityHeadersPolicy              = "CORS-and-SecurityHeadersPolicy"
	RHPCORSWithPreflightAndSecurityHeadersPolicy = "CORS-With-Preflight-and-SecurityHeadersPolicy"
)

const managedRHPNames = RHPSimpleCORS + ", " + RHPCORSWithPreflight + ", " + RHPSecurityHeadersPolicy + ", " +
	RHPCORSAndSecurityHeadersPolicy + ", " + RHPCORSWithPreflightAndSecurityHeadersPolicy

// managedRHP returns a managed policy with CloudFront's documented values
// (none of them overrides what the origin sends).
func managedRHP(name string) (ResponseHeadersPolicy, bool) {
	simple := &CORSConfig{AllowOrigins: []string{"*"}}
	preflight := &CORSConfig{AllowOrigins: []string{"*"}, AllowHeaders: []string{"*"}, ExposeHeaders: []string{"*"},
		AllowMethods: []string{"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"}}
	security := SecurityHeaders{
		StrictTransportSecurity: &HSTSHeader{MaxAge: yamlconf.Duration(31536000 * time.Second)},
		ContentTypeOptions:      &ContentTypeOptions{},
		FrameOptions:            &ValueHeader{Value: "SAMEORIGIN"},
		ReferrerPolicy:          &ValueHeader{Value: "strict-origin-when-cross-origin"},
		XSSProtection:           &ValueHeader{Value: "1; mode=block"},
	}
	p := ResponseHeadersPolicy{Managed: name}
	switch name {
	case RHPSimpleCORS:
		p.CORS = simple
	case RHPCORSWithPreflight:
		p.CORS = preflight
	case RHPSecurityHeadersPolicy:
		p.SecurityHeaders = security
	case RHPCORSAndSecurityHeadersPolicy:
		p.CORS, p.SecurityHeaders = simple, security
	case RHPCORSWithPreflightAndSecurityHeadersPolicy:
		p.CORS, p.SecurityHeaders = preflight, security
	default:
		return ResponseHeadersPolicy{}, false
	}
	return p, true
}

// UnmarshalYAML accepts a managed policy's name or a mapping.
func (p *ResponseHeadersPolicy) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		m, ok := managedRHP(n.Value)
		if !ok {
			return yamlconf.NewValueError(n, "%q is not a managed response headers policy (use %s, or a mapping with cors, security_headers, custom_headers, remove_headers, server_timing)",
				n.Value, managedRHPNames)
		}
		*p = m
		return nil
	}
	type plain ResponseHeadersPolicy
	var v plain
	if err := n.Decode(&v); err != nil {
		return err
	}
	*p = ResponseHeadersPolicy(v)
	return nil
}

// isZero reports a behavior without a response headers policy.
func (p *ResponseHeadersPolicy) isZero() bool {
	return p.CORS == nil && p.SecurityHeaders == (SecurityHeaders{}) && len(p.CustomHeaders) == 0 &&
		len(p.RemoveHeaders) == 0 && !p.ServerTiming.Enabled
}

var referrerPolicies = []string{"no-referrer", "no-referrer-when-downgrade", "origin", "origin-when-cross-origin",
	"same-origin", "strict-origin", "strict-origin-when-cross-origin", "unsafe-url"}

// unremovable are headers whose removal would break the response's framing
// or hide the edge's own headers, as CloudFront forbids removing them.
var unremovable = []string{"Content-Length", "Content-Encoding", "Content-Range", "Transfer-Encoding", "Connection",
	"Date", "Via", "X-Cache", "X-Edge-Location", "X-Edge-Request-Id", "Vary"}

// validateRHP reports a policy's problems at their places under rp.
func (c *Config) validateRHP(errs *yamlconf.Errors, rp string, p *ResponseHeadersPolicy) {
	add := func(path, format string, args ...any) { *errs = append(*errs, c.errorf(path, format, args...)) }
	if p.Managed != "" {
		return
	}
	if cors := p.CORS; cors != nil {
		cp := rp + ".cors"
		if len(cors.AllowOrigins) == 0 {
			add(cp+".allow_origins", "missing: the origins allowed (https://app.example.com) or \"*\"")
		}
		for k, o := range cors.AllowOrigins {
			if o == "*" {
				if cors.AllowCredentials {
					add(fmt.Sprintf("%s.allow_origins[%d]", cp, k), "\"*\" cannot be combined with allow_credentials: name the origins")
				}
				continue
			}
			if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" {
				add(fmt.Sprintf("%s.allow_origins[%d]", cp, k), "%q: use \"*\" or an origin such as https://app.example.com", o)
			}
		}
		for k, m := range cors.AllowMethods {
			if m != "ALL" && !slices.Contains(knownMethods, strings.ToUpper(m)) {
				add(fmt.Sprintf("%s.allow_methods[%d]", cp, k), "%q: use ALL or GET, HEAD, OPTIONS, PUT, POST, PATCH, DELETE", m)
			}
		}
		for _, l := range []struct {
			key   string
			names []string
		}{{"allow_headers", cors.AllowHeaders}, {"expose_headers", cors.ExposeHeaders}} {
			for k, h := range l.names {
				if h != "*" && !validHeaderName(h) {
					add(fmt.Sprintf("%s.%s[%d]", cp, l.key, k), "%q is not a header name", h)
				}
			}
		}
	}
	sh := p.SecurityHeaders
	sp := rp + ".security_headers"
	if h := sh.StrictTransportSecurity; h != nil && h.MaxAge.D() < time.Second {
		add(sp+".strict_transport_security.max_age", "missing: how long browsers keep to HTTPS, such as 8760h (one year)")
	}
	if h := sh.FrameOptions; h != nil && h.Value != "DENY" && h.Value != "SAMEORIGIN" {
		add(sp+".frame_options.value", "%q: use DENY or SAMEORIGIN", h.Value)
	}
	if h := sh.ReferrerPolicy; h != nil && !slices.Contains(referrerPolicies, h.Value) {
		add(sp+".referrer_policy.value", "%q: use one of %s", h.Value, strings.Join(referrerPolicies, ", "))
	}
	for _, v := range []struct {
		key string
		h   *ValueHeader
	}{{"content_security_policy", sh.ContentSecurityPolicy}, {"xss_protection", sh.XSSProtection}} {
		if v.h != nil && (v.h.Value == "" || strings.ContainsAny(v.h.Value, "\r\n")) {
			add(sp+"."+v.key+".value", "missing or not a single-line header value")
		}
	}
	for k, h := range p.CustomHeaders {
		hp := fmt.Sprintf("%s.custom_headers[%d]", rp, k)
		switch {
		case !validHeaderName(h.Header):
			add(hp+".header", "%q is not a header name", h.Header)
		case isHopByHop(h.Header) || slices.Contains(unremovable, http.CanonicalHeaderKey(h.Header)):
			add(hp+".header", "%s is the edge's to set", h.Header)
		}
		if strings.ContainsAny(h.Value, "\r\n") {
			add(hp+".value", "a header value is a single line")
		}
	}
	for k, h := range p.RemoveHeaders {
		hp := fmt.Sprintf("%s.remove_headers[%d]", rp, k)
		if !validHeaderName(h) {
			add(hp, "%q is not a header name", h)
		} else if isHopByHop(h) || slices.Contains(unremovable, http.CanonicalHeaderKey(h)) {
			add(hp, "%s cannot be removed", h)
		}
	}
	if r := p.ServerTiming.SamplingRate; r != nil && (*r < 0 || *r > 100) {
		add(rp+".server_timing.sampling_rate", "%v: use a percentage from 0 to 100", *r)
	}
}

// validHeaderName reports an RFC 9110 field name (a token).
func validHeaderName(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}
