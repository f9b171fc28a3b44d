//go:build linux

package idle

import (
	"errors"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/testnet"
)

// testConn is a connection as the poller sees it, on a real socket: parked or not,
// and ended once.
type testConn struct {
	h      Handle
	nc     net.Conn
	parked atomic.Bool
	woken  time.Time // set by Wake, read after the dispatch
	ended  chan struct{}
}

func (c *testConn) IdleHandle() *Handle { return &c.h }
func (c *testConn) NetConn() net.Conn   { return c.nc }
func (c *testConn) Unpark() bool        { return c.parked.CompareAndSwap(true, false) }
func (c *testConn) End()                { c.nc.Close(); close(c.ended) }

func (c *testConn) Wake(now time.Time) bool {
	if c.parked.CompareAndSwap(true, false) {
		c.woken = now
		return true
	}
	return false
}

// newTestConn returns the server end of a loopback TCP connection as a testConn, and
// the client end.
func newTestConn(t *testing.T) (*testConn, net.Conn) {
	client, server := testnet.Pair(t)
	return &testConn{nc: server, ended: make(chan struct{})}, client
}

// runPoller returns a running poller whose clocks the test drives, closed at the
// test's end; it dispatches on the channel it returns.
func runPoller(t *testing.T, o Options[*testConn]) (*Poller[*testConn], chan *testConn) {
	t.Helper()
	dispatched := make(chan *testConn, 16)
	o.Dispatch = func(c *testConn) { dispatched <- c }
	o.ManualClocks = true
	p := New(o)
	if p == nil {
		t.Fatal("no poller")
	}
	go p.Run()
	t.Cleanup(p.Close)
	return p, dispatched
}

// park registers c and parks it, as its owner does once it is idle.
func park(t *testing.T, p *Poller[*testConn], c *testConn) {
	t.Helper()
	if !p.Register(c) {
		t.Fatal("not registered")
	}
	p.Parked(&c.h)
	c.parked.Store(true)
}

// A parked connection is handed to Dispatch when its client sends, with the time the
// poller saw it; registered again, it is not registered twice; taken out of the set
// and put back, it wakes as before; forgotten, it leaves the set.
func TestRegisterWake(t *testing.T) {
	p, dispatched := runPoller(t, Options[*testConn]{})
	c, client := newTestConn(t)
	park(t, p, c)
	if !p.Register(c) || len(p.Conns()) != 1 {
		t.Fatalf("registered twice: %d connections", len(p.Conns()))
	}
	before := time.Now()
	client.Write([]byte("GET"))
	select {
	case got := <-dispatched:
		if got != c {
			t.Fatal("another connection dispatched")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not dispatched")
	}
	if c.woken.Before(before) || c.woken.After(time.Now()) {
		t.Fatalf("woken at %v, input sent at %v", c.woken, before)
	}
	// The owner reads the input and parks it again.
	if n, err := c.nc.Read(make([]byte, 8)); n != 3 || err != nil {
		t.Fatalf("read %d, %v", n, err)
	}
	c.parked.Store(true)
	client.Write([]byte("x"))
	select {
	case <-dispatched:
	case <-time.After(5 * time.Second):
		t.Fatal("not dispatched a second time")
	}
	c.nc.Read(make([]byte, 8))

	// Out of the set (as while served hot) and back in it, it wakes as before.
	if !p.Unregister(c) || p.Unregister(c) || len(p.Conns()) != 0 {
		t.Fatalf("unregistered: %d connections", len(p.Conns()))
	}
	if !p.Register(c) || len(p.Conns()) != 1 {
		t.Fatal("not registered again")
	}
	c.parked.Store(true)
	client.Write([]byte("z"))
	select {
	case <-dispatched:
	case <-time.After(5 * time.Second):
		t.Fatal("not dispatched after registering again")
	}
	p.Forget(c)
	if len(p.Conns()) != 0 {
		t.Fatal("forgotten connection still in the set")
	}
}

// The sweep closes a connection parked for the keep-alive timeout: wait ticks after
// the one it was parked at it is open, the next ends it; one that is not parked (its
// owner serves it) is left alone.
func TestSweep(t *testing.T) {
	p, _ := runPoller(t, Options[*testConn]{KeepaliveTimeout: 300 * time.Millisecond})
	period, wait := p.SweepPeriod()
	if period*time.Duration(wait) < 300*time.Millisecond {
		t.Fatalf("%d ticks of %v: before the keep-alive timeout", wait, period)
	}
	old, _ := newTestConn(t)
	busy, _ := newTestConn(t)
	park(t, p, old)
	park(t, p, busy)
	busy.parked.Store(false) // woken: its owner serves it
	for range wait {
		p.TickSweep()
	}
	select {
	case <-old.ended:
		t.Fatalf("ended after %d ticks, want %d", wait, wait+1)
	default:
	}
	p.TickSweep()
	select {
	case <-old.ended:
	default:
		t.Fatalf("not ended after %d ticks", wait+1)
	}
	select {
	case <-busy.ended:
		t.Fatal("a connection that was not parked was ended")
	default:
	}
	if _, wait := (&Poller[*testConn]{}).SweepPeriod(); wait < 60 {
		t.Fatalf("default keep-alive: %d ticks", wait)
	}
}

// The hot clock ends a hot wait HotWait ticks after it began, not before, by moving
// the socket's read deadline into the past; a wait claimed to serve input is not
// ended, and starts again with HotRewait.
func TestHotKick(t *testing.T) {
	p, _ := runPoller(t, Options[*testConn]{})
	c, _ := newTestConn(t)
	if !p.Register(c) || !p.Unregister(c) {
		t.Fatal("not registered")
	}
	if !p.HotJoin(c) || !c.h.HotWaiting() {
		t.Fatal("not hot")
	}
	read := make(chan error, 1)
	go func() {
		_, err := c.nc.Read(make([]byte, 1))
		read <- err
	}()
	for range HotWait - 1 {
		p.TickHot()
	}
	if !c.h.HotWaiting() {
		t.Fatalf("wait ended after %d ticks, want %d", HotWait-1, HotWait)
	}
	if idle := p.TickHot(); idle {
		t.Fatal("no hot connection")
	}
	select {
	case err := <-read:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the hot clock did not end the read")
	}
	if c.h.HotWaiting() || !p.HotLeave(c) {
		t.Fatal("HotLeave: not ended by the clock")
	}
	if !p.TickHot() {
		t.Fatal("a connection still hot after HotLeave")
	}

	// Claimed: the clock leaves it alone until it waits again.
	c.nc.SetReadDeadline(time.Time{})
	if !p.HotJoin(c) || !c.h.HotClaim() || c.h.HotClaim() {
		t.Fatal("claim")
	}
	for range 2 * HotWait {
		p.TickHot()
	}
	p.HotRewait(&c.h)
	if !c.h.HotWaiting() {
		t.Fatal("not waiting after HotRewait")
	}
	p.KickAll()
	if c.h.HotWaiting() || !p.HotLeave(c) {
		t.Fatal("KickAll did not end the wait")
	}
}

// HotJoin checks the bound where it is enforced: a worker that found room may lose it
// to another before it joins, and then must not join.
func TestHotJoinBounded(t *testing.T) {
	p, _ := runPoller(t, Options[*testConn]{})
	p.SetMaxHot(1)
	a, _ := newTestConn(t)
	b, _ := newTestConn(t)
	if !p.HotRoom(0) {
		t.Fatal("no room with no connection hot")
	}
	if !p.HotJoin(a) {
		t.Fatal("the first connection could not join")
	}
	if p.HotJoin(b) {
		t.Fatal("a second connection joined, bound 1")
	}
	p.HotLeave(a)
	if !p.HotJoin(b) {
		t.Fatal("no room after the first connection left")
	}
	p.HotLeave(b)
}

// TestHotTime checks the clock of hot requests against time.Now: its wall and
// monotonic readings, from a base the hot clock read long ago, and that it moves.
func TestHotTime(t *testing.T) {
	p, _ := runPoller(t, Options[*testConn]{})
	before := time.Now()
	stale := before.Add(-time.Minute) // as if the hot clock had not ticked for a minute
	p.hotBase.Store(&stale)
	got := p.HotTime()
	after := time.Now()
	if got.Before(before) || got.After(after) {
		t.Fatalf("HotTime %v, want within [%v, %v]", got, before, after)
	}
	// The wall reading alone (Round(0) drops the monotonic one) agrees too, within
	// what the wall clock may drift from the monotonic one in a test's time.
	if d := after.Round(0).Sub(got.Round(0)); d < -time.Millisecond || d > time.Second {
		t.Fatalf("HotTime's wall clock is %v behind time.Now's", d)
	}
	if next := p.HotTime(); next.Before(got) {
		t.Fatalf("HotTime went back: %v after %v", next, got)
	}
	// A tick of the hot clock reads the base anew.
	p.TickHot()
	if b := *p.hotBase.Load(); b.Before(after) {
		t.Fatalf("hot clock base %v after a tick, before %v", b, after)
	}
}

// TestHotRoom checks who may be served hot: a request that came within the hot gap
// of the last response, while fewer than the bound of connections are hot; with a
// negative gap, none.
func TestHotRoom(t *testing.T) {
	p, _ := runPoller(t, Options[*testConn]{})
	if !p.HotRoom(hotGap - time.Millisecond) {
		t.Fatalf("no room for a request %v after the response", hotGap-time.Millisecond)
	}
	if p.HotRoom(hotGap) {
		t.Fatalf("room for a request %v after the response", hotGap)
	}
	p.SetMaxHot(1)
	c, _ := newTestConn(t)
	p.HotJoin(c)
	if p.HotRoom(0) {
		t.Fatal("room beyond the bound")
	}
	none, _ := runPoller(t, Options[*testConn]{HotGap: -1})
	if none.HotRoom(0) {
		t.Fatal("room with a negative hot gap")
	}
	var nilPoller *Poller[*testConn]
	if nilPoller.HotRoom(0) || nilPoller.Register(c) {
		t.Fatal("a nil poller has room")
	}
}
