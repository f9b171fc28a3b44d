package admin_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/testnet"
	"github.com/gotthard-proxy/gotthard/observe/admin"
)

// Accepts that fail for want of descriptors or kernel memory do not end Serve (which
// would shut the whole server down): the service logs them and accepts again.
func TestAcceptErrorsRetried(t *testing.T) {
	var mu sync.Mutex
	var logs strings.Builder
	h := slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil)
	svc, err := admin.New(admin.Options{Addr: "127.0.0.1:0", Logger: slog.New(h)})
	if err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := testnet.AcceptErrors(inner, syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM)
	done := make(chan error, 1)
	go func() { done <- svc.Serve([]net.Listener{ln}) }()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + inner.Addr().String() + "/healthz")
	if err != nil {
		t.Fatalf("after the failed accepts: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/healthz: %d", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := svc.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(logs.String(), "admin: accept failed; retrying"); n != 4 {
		t.Fatalf("%d retries logged, want 4:\n%s", n, logs.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
