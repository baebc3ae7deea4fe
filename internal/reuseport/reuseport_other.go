//go:build !unix

package reuseport

import "syscall"

func control(_, _ string, _ syscall.RawConn) error { return nil }
