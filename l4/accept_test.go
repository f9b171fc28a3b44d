package l4

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/testnet"
)

// Accepts that fail as they do on a loaded machine (out of descriptors, out of kernel
// memory) pause the endpoint; it accepts again after them, each logged once.
func TestAcceptErrorsRetried(t *testing.T) {
	l := &logs{}
	svc, err := NewService("test", newTestApp(&Peer{Address: backend(t, echo)}), ServiceOptions{Logger: slog.New(l)})
	if err != nil {
		t.Fatal(err)
	}
	svc.AddTCP("127.0.0.1:0")
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errnos := []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM}
	done := make(chan error, 1)
	go func() { done <- svc.Serve([]net.Listener{testnet.AcceptErrors(inner, errnos...)}) }()
	t.Cleanup(func() {
		svc.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	c, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "ping"); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
		t.Fatalf("after the failed accepts: %q, %v\n%s", got, err, strings.Join(l.lines(), "\n"))
	}
	n := 0
	for _, line := range l.lines() {
		if strings.Contains(line, "accept failed; retrying") {
			n++
		}
	}
	if n != len(errnos) {
		t.Fatalf("%d retries logged, want %d:\n%s", n, len(errnos), strings.Join(l.lines(), "\n"))
	}
}
