// Package hostname handles the host part of a Host header or an address:
// one place for dropping a port, so that every tier reads "host:port",
// "[v6]:port" and a bare name the same way.
package hostname

import (
	"net"
	"strings"
)

// WithoutPort is hostport without its port, with an IPv6 literal's
// brackets dropped as net.SplitHostPort drops them; hostport as it is when
// it has no port. A name without a colon is returned without calling
// SplitHostPort, which would allocate an error to say there is no port:
// this runs on every request.
func WithoutPort(hostport string) string {
	if !strings.Contains(hostport, ":") {
		return hostport
	}
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}
