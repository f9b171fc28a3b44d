package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// listen starts one of s's handlers on a loopback port and returns its address; the
// sink is shut down when the test ends.
func listen(t *testing.T, s *sink, handle func(net.Conn) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.start(ln, handle)
	t.Cleanup(func() { s.shutdown([]net.Listener{ln}) })
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c.(*net.TCPConn)
}

func TestCount(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
	}{{"empty", 0}, {"one byte", 1}, {"several reads", 3<<20 + 7}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSink(64, 64)
			c := dial(t, listen(t, s, s.count))
			if _, err := c.Write(bytes.Repeat([]byte{'x'}, tc.n)); err != nil {
				t.Fatal(err)
			}
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(c)
			if err != nil {
				t.Fatal(err)
			}
			if want := strconv.Itoa(tc.n) + "\n"; string(got) != want {
				t.Fatalf("reply %q, want %q", got, want)
			}
		})
	}
}

func TestRR(t *testing.T) {
	s := newSink(10, 20)
	c := dial(t, listen(t, s, s.rr))
	if _, err := c.Write([]byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c) // the sink closes after its reply
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Repeat("r", 20); string(got) != want {
		t.Fatalf("reply %q, want %q", got, want)
	}
	if n := s.errs.Load(); n != 0 {
		t.Fatalf("%d errors", n)
	}
}

func TestRRShortRequest(t *testing.T) {
	s := newSink(10, 20)
	c := dial(t, listen(t, s, s.rr))
	c.Write([]byte("0123"))
	c.CloseWrite()
	// The sink counts the error before it closes the connection, so the end of
	// the reply is the event to wait for.
	got, _ := io.ReadAll(c)
	if len(got) != 0 {
		t.Fatalf("a short request got a reply %q", got)
	}
	if s.errs.Load() != 1 {
		t.Fatalf("errors %d, want 1", s.errs.Load())
	}
}

func TestEchoHoldsUntilShutdown(t *testing.T) {
	s := newSink(64, 64)
	c := dial(t, listen(t, s, s.echo))
	br := bufio.NewReader(c)
	for _, msg := range []string{"a", "hello"} {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(br, got); err != nil {
			t.Fatal(err)
		}
		if string(got) != msg {
			t.Fatalf("echo %q, want %q", got, msg)
		}
	}
	// Still open: a read waits until the deadline.
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := br.ReadByte(); !isTimeout(err) {
		t.Fatalf("read on an idle echo connection: %v, want a timeout", err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
