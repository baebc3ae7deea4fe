// Package reuseport binds listening sockets with SO_REUSEPORT, so that a
// second process (a new binary during a rolling restart) or a re-bound
// listener of a reload can listen on the same address while the old one
// drains. The kernel spreads new connections over every socket bound to
// the address; connections still queued on a socket when it closes are
// reset, which is why the old process stops accepting only once the new
// one serves (see the README, "Reload and upgrades").
package reuseport

import "net"

// ListenConfig is a net.ListenConfig whose sockets set SO_REUSEPORT where
// the platform has it.
func ListenConfig() *net.ListenConfig {
	return &net.ListenConfig{Control: control}
}
