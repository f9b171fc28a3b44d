//go:build !linux

package proxyproto

import "syscall"

// canPeek reports false: connections are read one byte at a time.
func canPeek(syscall.RawConn) bool { return false }

func peek(uintptr, []byte) (int, error) { return 0, syscall.ENOTSUP }

func peerClosed(uintptr) bool { return true }
