package h2

import (
	"bytes"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// heldHandlers is a handler that counts the handlers running at once and holds each
// until release, whatever the client does meanwhile.
type heldHandlers struct {
	running, peak, started atomic.Int32
	gate                   chan struct{}
	once                   sync.Once
}

func newHeldHandlers() *heldHandlers { return &heldHandlers{gate: make(chan struct{})} }

func (h *heldHandlers) serve(st *Stream) {
	n := h.running.Add(1)
	for p := h.peak.Load(); n > p && !h.peak.CompareAndSwap(p, n); p = h.peak.Load() {
	}
	h.started.Add(1)
	<-h.gate
	h.running.Add(-1)
	if st.WriteHeaders(200, nil, true) != nil {
		return // reset by the client
	}
}

func (h *heldHandlers) release() { h.once.Do(func() { close(h.gate) }) }

// TestResetStreamKeepsHandlerPlace checks that a stream the client reset keeps its
// place among MaxConcurrentStreams until its handler returns: the next request head
// waits, unread, instead of starting one more handler (CVE-2023-44487).
func TestResetStreamKeepsHandlerPlace(t *testing.T) {
	h := newHeldHandlers()
	srv := startServer(t, Options{MaxConcurrentStreams: 1}, h.serve, nil)
	t.Cleanup(h.release) // before the server's cleanup, which waits for the handlers
	c := dialRaw(t, srv.addr())
	l := c.readAll()
	if err := c.open(1, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the first handler", func() bool { return h.running.Load() == 1 })
	if err := c.fr.WriteRSTStream(1, http2.ErrCodeCancel); err != nil {
		t.Fatal(err)
	}
	// The client has no open stream now and may open one; its handler must wait.
	if err := c.open(3, true); err != nil {
		t.Fatal(err)
	}
	if err := c.fr.WritePing(false, [8]byte{1}); err != nil {
		t.Fatal(err)
	}
	// While the reset stream's handler runs the connection reads nothing more, so the
	// PING stays unanswered (without the fix it is answered at once, and stream 3's
	// handler runs beside stream 1's).
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		acked := l.pingAcks > 0
		l.mu.Unlock()
		if acked || h.peak.Load() > 1 {
			t.Fatalf("PING answered (%v) or %d handlers at once while a reset stream's handler ran", acked, h.peak.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.release()
	waitFor(t, 5*time.Second, "the PING answered and stream 3 served", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.pingAcks == 1 && len(l.statuses) == 1
	})
	if p := h.peak.Load(); p != 1 {
		t.Errorf("%d handlers ran at once, want 1", p)
	}
}

// TestResetBeforeStartRunsNoHandler sends request heads each followed at once by
// RST_STREAM, in one write, as the rapid reset attack does: no handler runs for them,
// and each counts as a reset.
func TestResetBeforeStartRunsNoHandler(t *testing.T) {
	var started atomic.Int32
	srv := startServer(t, Options{}, func(st *Stream) {
		started.Add(1)
		echoHandler(st)
	}, nil)
	c := dialRaw(t, srv.addr())
	l := c.readAll()
	var buf bytes.Buffer
	fr := http2.NewFramer(&buf, nil)
	const pairs = 40
	for i := range pairs {
		id := uint32(2*i + 1)
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.requestBlock(), EndStream: true, EndHeaders: true})
		fr.WriteRSTStream(id, http2.ErrCodeCancel)
	}
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 2*pairs + 1, BlockFragment: c.requestBlock(), EndStream: true, EndHeaders: true})
	if _, err := c.nc.Write(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the last stream served", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.statuses) == 1
	})
	// A read may end between a HEADERS frame and its RST_STREAM; then that stream's
	// handler starts (and is cut). Most must not.
	if n := started.Load(); n > 3 {
		t.Errorf("%d handlers started for %d streams reset before they began", n, pairs)
	}
}

// TestLimitSharedByConns checks that Options.Limit bounds the handlers of all the
// connections that share it, refusing the extra streams with REFUSED_STREAM.
func TestLimitSharedByConns(t *testing.T) {
	h := newHeldHandlers()
	lim := NewLimit(1)
	srv := startServer(t, Options{Limit: lim}, h.serve, nil)
	t.Cleanup(h.release)
	a := dialRaw(t, srv.addr())
	la := a.readAll()
	if err := a.open(1, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the first handler", func() bool { return h.running.Load() == 1 })
	b := dialRaw(t, srv.addr())
	lb := b.readAll()
	if err := b.open(1, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "REFUSED_STREAM on the second connection", func() bool { return lb.resets(http2.ErrCodeRefusedStream) == 1 })
	h.release()
	waitFor(t, 5*time.Second, "the first stream served", func() bool {
		la.mu.Lock()
		defer la.mu.Unlock()
		return len(la.statuses) == 1
	})
	waitFor(t, 5*time.Second, "the place given back", func() bool { return lim.InFlight() == 0 })
	if err := b.open(3, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the second connection served", func() bool {
		lb.mu.Lock()
		defer lb.mu.Unlock()
		return len(lb.statuses) == 1
	})
}

// TestSetOnAbortAfterReset checks that SetOnAbort called after the client reset the
// stream calls its function at once: the handler may register it late.
func TestSetOnAbortAfterReset(t *testing.T) {
	var mu sync.Mutex
	called := make(chan struct{})
	srv := startServer(t, Options{}, func(st *Stream) {
		<-st.Done() // reset by the client
		st.SetOnAbort(func() {
			mu.Lock()
			defer mu.Unlock()
			close(called)
		})
		st.SetOnAbort(nil)
	}, nil)
	c := dialRaw(t, srv.addr())
	c.readAll()
	if err := c.open(1, true); err != nil {
		t.Fatal(err)
	}
	if err := c.fr.WritePing(false, [8]byte{}); err != nil { // keeps HEADERS and RST_STREAM apart
		t.Fatal(err)
	}
	if err := c.fr.WriteRSTStream(1, http2.ErrCodeCancel); err != nil {
		t.Fatal(err)
	}
	select {
	case <-called:
	case <-time.After(5 * time.Second):
		t.Fatal("the abort function was not called for a stream reset before SetOnAbort")
	}
}
