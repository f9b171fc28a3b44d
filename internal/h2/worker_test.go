package h2

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// goroutineID returns the id of the calling goroutine, from its stack's first line.
func goroutineID() string {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	return string(b[:bytes.IndexByte(b, ' ')])
}

// workersWaiting counts the goroutines of c parked in nextStream (a stack trace shows
// the receiver's address).
func workersWaiting(c *Conn) int {
	buf := make([]byte, 1<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), fmt.Sprintf("h2.(*Conn).nextStream(%p", c))
}

// TestHandlerGoroutineReused checks that a stream that starts while others of its
// connection run is handed a waiting handler goroutine, and that waiting goroutines
// end once the connection has been quiet for workerLinger.
func TestHandlerGoroutineReused(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	holding := make(chan struct{})
	h := func(st *Stream) {
		if st.Request().Path == "/hold" {
			close(holding)
			<-release
		}
		if st.WriteHeaders(200, nil, false) != nil {
			return
		}
		_ = st.WriteData([]byte(goroutineID()), true)
	}
	srv := startServer(t, Options{}, h, nil)
	t.Cleanup(unblock) // (runs before the server's: a failed test must not leave /hold waiting)
	c, scheme := h2Client(t, false)
	base := scheme + "://" + srv.addr()
	held := make(chan error, 1)
	go func() {
		resp, err := c.Get(base + "/hold")
		if err == nil {
			resp.Body.Close()
		}
		held <- err
	}()
	// (Requests started before the client's connection is up may each dial one.)
	select {
	case <-holding:
	case <-time.After(5 * time.Second):
		t.Fatal("/hold did not arrive")
	}
	get := func() string {
		t.Helper()
		resp, err := c.Get(base + "/id")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	first := get()
	srv.mu.Lock()
	n := len(srv.conn)
	var conn *Conn
	for c := range srv.conn {
		conn = c
	}
	srv.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d connections, want the client's one", n)
	}
	for i := range 5 {
		// (The client may have the response before the handler's goroutine is back.)
		waitFor(t, 5*time.Second, "a handler goroutine waiting", func() bool { return workersWaiting(conn) == 1 })
		if id := get(); id != first {
			t.Fatalf("stream %d ran on goroutine %s, want the waiting one, %s", i+2, id, first)
		}
	}
	unblock()
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	// The connection is quiet (and open): the waiting goroutines end after workerLinger.
	start := time.Now()
	waitFor(t, workerLinger+5*time.Second, "the waiting handler goroutines to end", func() bool { return workersWaiting(conn) == 0 })
	if waited := time.Since(start); waited < workerLinger/2 {
		t.Errorf("the waiting goroutines ended after %v, before workerLinger (%v)", waited, workerLinger)
	}
	if _, err := strconv.Atoi(first); err != nil {
		t.Fatalf("goroutine id %q", first)
	}
}
