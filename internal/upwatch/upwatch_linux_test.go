//go:build linux

package upwatch

import (
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/testnet"
)

func rawConn(t *testing.T, nc net.Conn) syscall.RawConn {
	t.Helper()
	rc, err := nc.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

// waitFor waits until cond holds, for at most 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !cond(); runtime.Gosched() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestPeek checks that a Peeker tells an idle socket, one with bytes waiting (which it
// leaves there) and one whose peer closed it.
func TestPeek(t *testing.T) {
	client, server := testnet.Pair(t)
	var p Peeker
	p.Init(rawConn(t, client))
	if got := p.Peek(); got != Empty {
		t.Fatalf("idle socket: Peek = %d, want Empty", got)
	}
	if _, err := server.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Data", func() bool { return p.Peek() == Data })
	if got := p.Peek(); got != Data {
		t.Fatalf("Peek took the byte: second Peek = %d, want Data", got)
	}
	var b [1]byte
	if n, err := client.Read(b[:]); n != 1 || b[0] != 'x' {
		t.Fatalf("Read after Peek = %d %q, %v; want the byte peeked at", n, b[:n], err)
	}
	if got := p.Peek(); got != Empty {
		t.Fatalf("after the read: Peek = %d, want Empty", got)
	}
	server.Close()
	waitFor(t, "Closed", func() bool { return p.Peek() == Closed })
}

// TestClientClosed checks that ClientClosed sees the peer's FIN, also while bytes it
// sent before are unread.
func TestClientClosed(t *testing.T) {
	client, server := testnet.Pair(t)
	rc := rawConn(t, server)
	if ClientClosed(rc) {
		t.Fatal("ClientClosed on an open connection")
	}
	if _, err := client.Write([]byte("unread")); err != nil {
		t.Fatal(err)
	}
	client.Close()
	waitFor(t, "ClientClosed", func() bool { return ClientClosed(rc) })
}

type closedConn struct{ closed chan bool }

func (c *closedConn) PeerClosed(drained func() bool) {
	select {
	case c.closed <- drained():
	default:
	}
}

// TestWatcher checks that a Watcher tells a watched connection its peer closed it, and
// that nothing but the close was left to read; and that Stop ends Run.
func TestWatcher(t *testing.T) {
	w := New()
	if w == nil {
		t.Fatal("New returned nil on Linux")
	}
	done := make(chan struct{})
	go func() { defer close(done); w.Run() }()
	defer func() {
		w.Stop()
		<-done
		w.Release()
	}()

	client, server := testnet.Pair(t)
	c := &closedConn{closed: make(chan bool, 1)}
	fd, ok := w.Add(rawConn(t, client), c)
	if !ok || fd <= 0 {
		t.Fatalf("Add = %d, %v; want the socket watched", fd, ok)
	}
	server.Close()
	select {
	case drained := <-c.closed:
		if !drained {
			t.Error("drained reported bytes left on a socket that received none")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the peer's close was not told")
	}
	w.Remove(fd, c)
}

// TestReleaseTwice: a second Release (a service closed twice) must not close the
// descriptor numbers the first one freed, which others may hold by then.
func TestReleaseTwice(t *testing.T) {
	w := New()
	if w == nil {
		t.Skip("no epoll")
	}
	w.Stop()
	w.Release()
	// Take the freed numbers (the lowest free ones) for descriptors of our own.
	var mine []int
	for range 3 {
		var p [2]int
		if err := syscall.Pipe(p[:]); err != nil {
			t.Fatal(err)
		}
		mine = append(mine, p[0], p[1])
	}
	defer func() {
		for _, fd := range mine {
			syscall.Close(fd)
		}
	}()
	w.Release()
	for _, fd := range mine {
		if _, err := fcntl(fd, syscall.F_GETFD); err != nil {
			t.Fatalf("descriptor %d closed by a second Release: %v", fd, err)
		}
	}
}

func fcntl(fd, cmd int) (int, error) {
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), uintptr(cmd), 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
