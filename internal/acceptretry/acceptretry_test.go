package acceptretry

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/testnet"
)

func acceptError(errno syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
}

func TestBackoff(t *testing.T) {
	var b Backoff
	want := []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond}
	for i, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENOBUFS, syscall.ENOMEM} {
		wait, ok := b.failed(acceptError(errno))
		if !ok || wait != want[i] {
			t.Fatalf("after %v: wait %v, %v; want %v, true", errno, wait, ok, want[i])
		}
	}
	for range 20 {
		b.failed(acceptError(syscall.ENFILE))
	}
	if wait, _ := b.failed(errors.New("any")); wait != time.Second {
		t.Fatalf("a long run of errors waits %v; want at most a second", wait)
	}
	b.Reset()
	if wait, _ := b.failed(acceptError(syscall.EMFILE)); wait != 5*time.Millisecond {
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
	if _, ok := b.failed(err); ok {
		t.Fatalf("Accept on a closed listener (%v): the loop goes on", err)
	}
	if _, ok := b.failed(fmt.Errorf("wrapped: %w", net.ErrClosed)); ok {
		t.Fatal("a wrapped net.ErrClosed: the loop goes on")
	}
}

// The listener retries failed accepts inside Accept, and a Close ends its wait.
func TestListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil))
	ln := Listener(testnet.AcceptErrors(inner, syscall.EMFILE, syscall.ENOBUFS), log, "test")
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatalf("Accept after two failures: %v", err)
	}
	s.Close()
	if n := strings.Count(logs.String(), "test: accept failed; retrying"); n != 2 {
		t.Fatalf("%d retries logged, want 2:\n%s", n, logs.String())
	}

	// Failures that go on: the wait reaches a second; Close ends it.
	errnos := make([]syscall.Errno, 20)
	for i := range errnos {
		errnos[i] = syscall.ENOMEM
	}
	inner2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln2 := Listener(testnet.AcceptErrors(inner2, errnos...), slog.New(slog.DiscardHandler), "test")
	done := make(chan error, 1)
	go func() {
		_, err := ln2.Accept()
		done <- err
	}()
	time.Sleep(300 * time.Millisecond) // into the backoff
	ln2.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end Accept's wait")
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// Next and Reset are the policy for a loop that is not an accept loop.
func TestNextReset(t *testing.T) {
	var b Backoff
	var got []time.Duration
	for range 10 {
		got = append(got, b.Next())
	}
	want := []time.Duration{5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("waits %v; want %v ms", got, want)
		}
	}
	b.Reset()
	if wait := b.Next(); wait != 5*time.Millisecond {
		t.Fatalf("after Reset: wait %v; want 5ms", wait)
	}
}

// Wait waits out its time, or ends at once when stop is closed.
func TestWait(t *testing.T) {
	start := time.Now()
	if !Wait(20*time.Millisecond, nil) {
		t.Fatal("Wait with no stop reported false")
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Fatalf("Wait(20ms) returned after %v", d)
	}
	stop := make(chan struct{})
	time.AfterFunc(20*time.Millisecond, func() { close(stop) })
	start = time.Now()
	if Wait(time.Hour, stop) {
		t.Fatal("Wait ended by stop reported true")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Wait ended %v after stop", d)
	}
}
