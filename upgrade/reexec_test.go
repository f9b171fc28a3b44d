package upgrade

import (
	"context"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

const childEnv = "GOTTHARD_UPGRADE_TEST_CHILD"

// TestChildProcess is the new process of TestSpawn: it takes the listener over the
// inherited socket, says it serves, and answers one connection with "child".
func TestChildProcess(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		t.Skip("run by TestSpawn")
	}
	c, err := Inherited()
	if err != nil || c == nil {
		t.Fatalf("Inherited() = %v, %v", c, err)
	}
	if _, ok := os.LookupEnv(EnvFD); ok {
		t.Fatal(EnvFD + " still set")
	}
	h, err := Receive(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, _, ok := h.Take("tcp", "127.0.0.1:0")
	if !ok {
		t.Fatal("no tcp listener handed over")
	}
	defer ln.Close()
	if err := h.Serving(); err != nil {
		t.Fatal(err)
	}
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("child"))
	conn.Close()
}

func TestSpawn(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	child, err := Spawn(os.Args[0], []string{"-test.run=^TestChildProcess$", "-test.v"}, append(os.Environ(), childEnv+"=1"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pid, err := Send(ctx, child.Conn, []Listener{{Network: "tcp", Address: "127.0.0.1:0", File: f}})
	if err != nil {
		child.Abandon()
		t.Fatal(err)
	}
	if pid != child.PID() {
		t.Errorf("serving answer from pid %d, child is %d", pid, child.PID())
	}
	// The old process stops accepting; the child answers.
	l.Close()
	c, err := net.DialTimeout("tcp", l.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	b, _ := io.ReadAll(c)
	c.Close()
	if string(b) != "child" {
		t.Fatalf("read %q from the listener, want the child's answer", b)
	}
	child.Abandon() // waits for it; it has exited after answering
}

// TestSpawnChildDies: a new process that exits before serving fails the hand-over.
func TestSpawnChildDies(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	child, err := Spawn("/bin/true", nil, os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	defer child.Abandon()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := Send(ctx, child.Conn, []Listener{{Network: "tcp", Address: "127.0.0.1:0", File: f}}); err == nil {
		t.Fatal("Send succeeded to a process that exited")
	}
}
