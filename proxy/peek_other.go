//go:build !linux

package proxy

import "syscall"

// peekByte reports a byte ready; without a non-blocking peek the reader simply blocks.
func peekByte(uintptr, *[1]byte) (int, syscall.Errno) { return 1, 0 }
