// Package adminhttp holds what the admin listeners of both tiers share: a
// Guard (a bearer token for every state-changing call, and for reads unless
// the listener is on loopback; a Host check against DNS rebinding; for
// state-changing calls a JSON content type and no browser cross-site
// request, so that a web page a colleague opens cannot purge a cache or
// reload a config), Go runtime metrics in Prometheus text format, and
// net/http/pprof.
package adminhttp

import (
	"crypto/subtle"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/edgegate/edgegate/internal/hostname"
)

// Guard is the policy of one admin listener.
type Guard struct {
	// Token is the bearer token ("Authorization: Bearer TOKEN"). Empty
	// means no call that changes state is accepted at all, and reads only
	// on a loopback listener.
	Token string
	// Loopback says the listener is bound to a loopback address only: reads
	// need no token there.
	Loopback bool
	// Open lists paths anyone who reaches the listener may GET (health
	// checks of load balancers and container engines carry no token).
	Open []string
	// Private lists path prefixes that need the token even for reads on
	// loopback: profiles and the config are not for every local user.
	Private []string
}

// IsLoopbackListen reports whether a listen address (HOST:PORT) binds only
// loopback: 127.0.0.0/8, ::1 or localhost. ":9901" binds every address.
func IsLoopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Wrap returns h behind the guard.
func (g Guard) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hostAllowed(r.Host) {
			// A name in Host means the browser resolved some domain to this
			// listener: DNS rebinding, or a proxy we were not told about.
			http.Error(w, "admin: Host must be an IP address or localhost", http.StatusMisdirectedRequest)
			return
		}
		read := r.Method == http.MethodGet || r.Method == http.MethodHead
		if read && g.isOpen(r.URL.Path) {
			h.ServeHTTP(w, r)
			return
		}
		if !read {
			if reason := crossSite(r); reason != "" {
				http.Error(w, "admin: cross-site request refused: "+reason, http.StatusForbidden)
				return
			}
		}
		if !read || !g.Loopback || g.isPrivate(r.URL.Path) {
			if g.Token == "" {
				http.Error(w, "admin: set admin.token in the config to use this call here", http.StatusForbidden)
				return
			}
			if !g.tokenOK(r) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="edgegate admin"`)
				http.Error(w, "admin: missing or wrong bearer token (Authorization: Bearer TOKEN)", http.StatusUnauthorized)
				return
			}
		}
		if !read && r.Method != http.MethodDelete {
			mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || mt != "application/json" {
				// A browser can send text/plain or a form cross-site without
				// a preflight; it cannot send application/json.
				http.Error(w, "admin: Content-Type must be application/json", http.StatusUnsupportedMediaType)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

func (g Guard) isOpen(path string) bool {
	for _, p := range g.Open {
		if p == path {
			return true
		}
	}
	return false
}

func (g Guard) isPrivate(path string) bool {
	for _, p := range g.Private {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

func (g Guard) tokenOK(r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(g.Token)) == 1
}

// hostAllowed accepts an IP literal or localhost, with or without a port.
func hostAllowed(hostport string) bool {
	host := strings.Trim(hostname.WithoutPort(hostport), "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	return net.ParseIP(host) != nil
}

// crossSite explains why a state-changing request comes from a browser on
// another site, "" when it does not: Sec-Fetch-Site (sent by every current
// browser) other than same-origin or none, or an Origin header that is not
// the admin listener itself.
func crossSite(r *http.Request) string {
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "same-origin", "none":
	default:
		return "Sec-Fetch-Site: " + site
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || o == "null" || !strings.EqualFold(u.Host, r.Host) {
			return "Origin: " + o
		}
	}
	return ""
}
