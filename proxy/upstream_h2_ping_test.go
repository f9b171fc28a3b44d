package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/h2"
)

// blackholeRelay forwards TCP connections to an address until it is told to swallow
// what the connections open so far carry, both ways, without closing them: a peer
// that vanished (a crash, a middlebox that forgot the flow) as the client sees it.
// Connections opened later are forwarded.
type blackholeRelay struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []*relayConn
}

type relayConn struct {
	a, b   net.Conn
	frozen atomic.Bool
}

func startBlackholeRelay(t *testing.T, to string) *blackholeRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &blackholeRelay{ln: ln}
	t.Cleanup(func() {
		ln.Close()
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, c := range r.conns {
			c.a.Close()
			c.b.Close()
		}
	})
	go func() {
		for {
			a, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", to)
			if err != nil {
				a.Close()
				continue
			}
			c := &relayConn{a: a, b: b}
			r.mu.Lock()
			r.conns = append(r.conns, c)
			r.mu.Unlock()
			go c.pipe(a, b)
			go c.pipe(b, a)
		}
	}()
	return r
}

func (c *relayConn) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !c.frozen.Load() {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

// freeze swallows the traffic of the connections opened so far.
func (r *blackholeRelay) freeze() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		c.frozen.Store(true)
	}
}

func (r *blackholeRelay) addr() string { return r.ln.Addr().String() }

// h2Get opens a stream for a GET of / on set and reads its response whole, within
// ctx; it returns whether the stream went on a connection the set had already.
func h2Get(ctx context.Context, set *h2Conns, authority string) (bool, error) {
	st, reused, err := set.stream(ctx, &h2.ClientRequest{Method: "GET", Scheme: "http",
		Authority: authority, Path: "/", EndStream: true}, 0, nil)
	if err != nil {
		return false, err
	}
	defer func() {
		st.Close()
		set.releaseStream()
	}()
	stop := context.AfterFunc(ctx, st.Cancel)
	defer stop()
	if _, _, err := st.ReadHead(nil); err != nil {
		return reused, err
	}
	_, err = io.Copy(io.Discard, st)
	return reused, err
}

func newQuietH2Conns(addr string, quiet, timeout time.Duration) *h2Conns {
	return newH2Conns(&Peer{Address: addr}, h2Options{connect: 5 * time.Second, idle: time.Minute,
		pingQuiet: quiet, pingTimeout: timeout}, nil, h2.NewBufPool(0))
}

// A connection that sat quiet is PINGed before its next stream: a live peer answers and
// the connection is used again.
func TestH2ConnsPingQuietAlive(t *testing.T) {
	origin, _ := startH2OriginWith(t, false, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	set := newQuietH2Conns(origin, 50*time.Millisecond, 5*time.Second)
	defer set.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := h2Get(ctx, set, origin); err != nil {
		t.Fatal(err)
	}
	cc := set.conns[0]
	time.Sleep(100 * time.Millisecond)
	reused, err := h2Get(ctx, set, origin)
	if err != nil || !reused {
		t.Fatalf("after a quiet spell: reused %v, err %v; want the connection used again", reused, err)
	}
	if len(set.conns) != 1 || set.conns[0] != cc {
		t.Fatalf("the set has %d connections; want the first one alone", len(set.conns))
	}
}

// A connection whose peer vanished while it sat quiet does not answer the PING: it is
// closed and the request goes on a new connection, instead of waiting on the dead one
// for its read timeout.
func TestH2ConnsPingQuietDead(t *testing.T) {
	origin, _ := startH2OriginWith(t, false, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	relay := startBlackholeRelay(t, origin)
	set := newQuietH2Conns(relay.addr(), 50*time.Millisecond, 200*time.Millisecond)
	defer set.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := h2Get(ctx, set, origin); err != nil {
		t.Fatal(err)
	}
	dead := set.conns[0]
	relay.freeze()
	time.Sleep(100 * time.Millisecond)
	reused, err := h2Get(ctx, set, origin)
	if err != nil || reused {
		t.Fatalf("after the peer vanished: reused %v, err %v; want a new connection", reused, err)
	}
	select {
	case <-dead.Done():
	default:
		t.Fatal("the connection that did not answer is still open")
	}
	// Without the PING the same request waits on the dead connection.
	set2 := newQuietH2Conns(relay.addr(), -1, 0)
	defer set2.CloseIdleConnections()
	if _, err := h2Get(ctx, set2, origin); err != nil {
		t.Fatal(err)
	}
	relay.freeze()
	short, cancel2 := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel2()
	if reused, err := h2Get(short, set2, origin); !reused || err == nil {
		t.Fatalf("without PINGs: reused %v, err %v; want the dead connection, and no answer", reused, err)
	}
}

// A request that ends while its PING is out returns its own error, and leaves the
// connection to the next request's check.
func TestH2ConnsPingCanceled(t *testing.T) {
	origin, _ := startH2OriginWith(t, false, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	relay := startBlackholeRelay(t, origin)
	set := newQuietH2Conns(relay.addr(), 50*time.Millisecond, 5*time.Second)
	defer set.CloseIdleConnections()
	if _, err := h2Get(context.Background(), set, origin); err != nil {
		t.Fatal(err)
	}
	relay.freeze()
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := h2Get(ctx, set, origin); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the request's deadline", err)
	}
	select {
	case <-set.conns[0].Done():
		t.Fatal("the request's own end closed the connection")
	default:
	}
}

// The pool's sweep closes an HTTP/2 connection idle for its idle timeout, while the
// peer's entry stays (for three idle timeouts): no request has to come for it to close.
func TestH2ConnsSweptWhenIdle(t *testing.T) {
	origin, _ := startH2OriginWith(t, false, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	peer := &Peer{Address: origin, Protocol: ProtoHTTP2}
	svc, _ := newTestService[*testCtx](t, fixedProxy{peer: peer}, ServiceOptions{})
	addr := startProxy(t, svc)
	if resp, _ := getBody(t, testClient(t), "http://"+addr+"/"); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	h := svc.pool.lookup(peer.key())
	h.mu.Lock()
	set, _ := h.h2.transports[0].tr.(*h2Conns)
	h.mu.Unlock()
	if set == nil {
		t.Fatal("no HTTP/2 connection set for the peer")
	}
	set.mu.Lock()
	cc := set.conns[0]
	set.mu.Unlock()
	waitUntil(t, "the request's stream to end", func() bool { _, _, idle := cc.Quiet(); return idle })
	svc.pool.sweep(time.Now().Add(59 * time.Second))
	select {
	case <-cc.Done():
		t.Fatal("closed before its idle timeout (60s)")
	default:
	}
	svc.pool.sweep(time.Now().Add(61 * time.Second))
	select {
	case <-cc.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("an idle connection outlived its idle timeout at the sweep")
	}
	if st := svc.PoolStats(); st.Peers != 1 {
		t.Fatalf("%d peers after the sweep, want the entry kept", st.Peers)
	}
}
