package testnet

import (
	"errors"
	"net"
	"syscall"
	"testing"
)

// TestDeadAddr: connections to the address are refused, and nothing can listen on it
// while the test runs.
func TestDeadAddr(t *testing.T) {
	addr := DeadAddr(t)
	for range 3 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			t.Fatal("a connection to the dead address was accepted")
		} else if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial: %v, want connection refused", err)
		}
	}
	if ln, err := net.Listen("tcp", addr); err == nil {
		ln.Close()
		t.Fatal("another listener took the dead address")
	}
}
