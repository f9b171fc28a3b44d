package acceptretry

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

func acceptError(errno syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
}

func TestBackoff(t *testing.T) {
	var b Backoff
	want := []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond}
	for i, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENOBUFS, syscall.ENOMEM} {
		wait, ok := b.Failed(acceptError(errno))
		if !ok || wait != want[i] {
			t.Fatalf("after %v: wait %v, %v; want %v, true", errno, wait, ok, want[i])
		}
	}
	for range 20 {
		b.Failed(acceptError(syscall.ENFILE))
	}
	if wait, _ := b.Failed(errors.New("any")); wait != time.Second {
		t.Fatalf("a long run of errors waits %v; want at most a second", wait)
	}
	b.Accepted()
	if wait, _ := b.Failed(acceptError(syscall.EMFILE)); wait != 5*time.Millisecond {
		t.Fatalf("after an accept: wait %v; want 5ms again", wait)
	}
}

// A closed listener's error ends the loop, as net returns it.
func TestClosedListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	_, err = ln.Accept()
	var b Backoff
	if _, ok := b.Failed(err); ok {
		t.Fatalf("Accept on a closed listener (%v): the loop goes on", err)
	}
	if _, ok := b.Failed(fmt.Errorf("wrapped: %w", net.ErrClosed)); ok {
		t.Fatal("a wrapped net.ErrClosed: the loop goes on")
	}
}
