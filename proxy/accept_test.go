package proxy

import (
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/testnet"
)

// Accepts that fail as they do on a loaded machine (out of descriptors, out of kernel
// memory) pause the listener; it accepts again after them, each logged once.
func TestAcceptErrorsRetried(t *testing.T) {
	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	svc, logs := newTestService[*testCtx](t, fixedProxy{peer: &Peer{Address: origin}}, ServiceOptions{})
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errnos := []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM}
	ln := testnet.AcceptErrors(inner, errnos...)
	done := make(chan error, 1)
	go func() { done <- svc.Serve([]net.Listener{ln}) }()
	t.Cleanup(func() {
		svc.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + inner.Addr().String() + "/")
	if err != nil {
		t.Fatalf("after the failed accepts: %v\n%s", err, logs)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if n := strings.Count(logs.String(), "accept failed; retrying"); n != len(errnos) {
		t.Fatalf("%d retries logged, want %d:\n%s", n, len(errnos), logs)
	}
}
