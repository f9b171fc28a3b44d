//go:build !linux

package netio

import (
	"io"
	"net"
)

// Wrap returns nc: raw system calls are used on Linux only.
func Wrap(nc net.Conn) io.ReadWriter { return nc }
