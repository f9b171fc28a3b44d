package testnet

import (
	"errors"
	"net"
	"syscall"
	"testing"
)

func TestAcceptErrors(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	ln := AcceptErrors(inner, syscall.EMFILE, syscall.ENOBUFS)
	for _, want := range []syscall.Errno{syscall.EMFILE, syscall.ENOBUFS} {
		if _, err := ln.Accept(); !errors.Is(err, want) {
			t.Fatalf("got %v, want %v", err, want)
		}
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatalf("after the errors: %v", err)
	}
	s.Close()
}
