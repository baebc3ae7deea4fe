package reuseport

import (
	"fmt"
	"net"
	"os"
)

// Inherit returns a second listener on ln's socket (a duplicate of its file
// descriptor). A reload that changes what a listener does, but not its
// address, serves from the inherited socket and then shuts the old
// listener down: closing the old descriptor leaves the socket open, so the
// connections queued on it are accepted by the new listener instead of
// being reset, as they would be on a separate SO_REUSEPORT socket.
func Inherit(ln net.Listener) (net.Listener, error) {
	f, ok := ln.(interface{ File() (*os.File, error) })
	if !ok {
		return nil, fmt.Errorf("inherit listener %s: %T has no file descriptor", ln.Addr(), ln)
	}
	file, err := f.File()
	if err != nil {
		return nil, fmt.Errorf("inherit listener %s: %w", ln.Addr(), err)
	}
	defer file.Close() // FileListener holds its own duplicate
	nl, err := net.FileListener(file)
	if err != nil {
		return nil, fmt.Errorf("inherit listener %s: %w", ln.Addr(), err)
	}
	return nl, nil
}

// SameAddress reports whether a listener bound at addr is the one a config
// asks for with host and port: the same port, and the same IP or both
// unspecified. Port 0 (any free port) never matches, since it asks for a
// new socket.
func SameAddress(addr net.Addr, host string, port int) bool {
	ta, ok := addr.(*net.TCPAddr)
	if !ok || port == 0 || ta.Port != port {
		return false
	}
	if host == "" {
		return ta.IP.IsUnspecified()
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.Equal(ta.IP)
}
