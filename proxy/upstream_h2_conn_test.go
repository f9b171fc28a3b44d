package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/gotthard-proxy/gotthard/internal/h2"
)

// A peer that resets a streamed request before answering has the HTTP/2 client's stream
// reset with its code, not ended with NO_ERROR as if the client had sent too much.
func TestH2PeerResetMirrored(t *testing.T) {
	origin, _ := startH2OriginWith(t, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b [1]byte
		io.ReadFull(r.Body, b[:])   // the body has begun
		panic(http.ErrAbortHandler) // RST_STREAM(INTERNAL_ERROR), no answer
	}))
	svc, logs := newTestService[*testCtx](t, fixedProxy{peer: &Peer{Address: origin, Protocol: ProtoHTTP2}}, ServiceOptions{})
	addr := startProxy(t, svc)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cc, err := h2.NewClientConn(ctx, nc, h2.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	st, err := cc.NewStream(&h2.ClientRequest{Method: "POST", Scheme: "http", Authority: "a", Path: "/up"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.WriteData([]byte("some of the body"), false); err != nil {
		t.Fatal(err)
	}
	stop := context.AfterFunc(ctx, st.Cancel)
	defer stop()
	_, _, err = st.ReadHead(nil)
	var re *h2.ResetError
	if !errors.As(err, &re) || !re.Remote || re.Code != http2.ErrCodeInternal {
		t.Fatalf("got %v, want the peer's INTERNAL_ERROR\n%s", err, logs)
	}
}

// The connections of a set dropped with its peer's pool state close, busy ones as their
// last stream ends.
func TestH2ConnsClosedWhenDropped(t *testing.T) {
	release := make(chan struct{})
	origin, _ := startH2OriginWith(t, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/wait" {
			<-release
		}
	}))
	set := newH2Conns(&Peer{Address: origin}, h2Options{connect: 5 * time.Second, idle: time.Minute}, nil, h2.NewBufPool(0))
	get := func(path string) error {
		st, _, err := set.stream(context.Background(), &h2.ClientRequest{Method: "GET", Scheme: "http",
			Authority: origin, Path: path, EndStream: true}, 0, nil)
		if err != nil {
			return err
		}
		defer func() {
			st.Close()
			set.releaseStream()
		}()
		if _, _, err := st.ReadHead(nil); err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, st)
		return err
	}
	if err := get("/"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- get("/wait") }()
	waitUntil(t, "the request on its connection", func() bool {
		set.mu.Lock()
		defer set.mu.Unlock()
		return len(set.conns) == 1 && set.conns[0].Streams() == 1
	})
	cc := set.conns[0]
	set.CloseIdleConnections()
	select {
	case <-cc.Done():
		t.Fatal("a busy connection was closed")
	default:
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	select {
	case <-cc.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the connection outlived its set")
	}
	if err := get("/"); !errors.Is(err, errServiceClosed) {
		t.Fatalf("a request on a dropped set: %v", err)
	}
}
