package l4

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/gopool"
	"github.com/gotthard-proxy/gotthard/internal/idle"
)

const (
	// copyBufSize is the buffer of a direction that cannot splice (TLS on a side, or
	// a platform without splice).
	copyBufSize = 32 << 10
	// spliceChunk is the most one splice(2) call moves before the direction counts its
	// bytes: a call moves what is queued on the source, up to this.
	spliceChunk = 1 << 20
	// parkAfter is how long a direction that splices waits, on its goroutine, for its
	// next bytes before it parks (see [flow]): long enough that a request's reply, or
	// the next message of a busy exchange, finds the goroutine still there (no hand-over,
	// no system call of the poller's), short enough that an idle connection soon holds
	// none.
	parkAfter = 50 * time.Millisecond
	// detachAfter is how long both halves of a connection stay parked before its
	// sockets are detached from the runtime's poller (see detach): attaching them again
	// costs about 20 system calls, which a connection that pauses briefly should not
	// pay; and a connection that goes quiet right after its set-up, the most common
	// idle one, should soon hold as little as it can.
	detachAfter = 50 * time.Millisecond
)

// The states of a half.
const (
	halfRunning = iota // on a goroutine: copying, or waiting in the runtime's poller
	halfParked         // in the service's poller, without a goroutine
	halfDone           // ended: its source's end carried, or failed, or cut
)

// flow copies bytes both ways between a client and its peer, one [half] per
// direction.
//
// Each half runs on a goroutine while it has bytes to move. Where both directions
// splice and the service has a poller (Linux), a half that has waited parkAfter
// without bytes "parks": its source socket is in the poller's epoll set and its
// goroutine ends; when the source becomes readable (bytes, its end, or an error) the
// poller starts a goroutine that resumes the copy. A connection whose two halves are
// parked holds no goroutine; the poller's sweep ends it at the idle timeout, a timer at
// the total timeout, and the service's Close reaches it through [flow.kill].
//
// A parked connection is reduced to its flow (which lives in its conn, with the
// Session: one allocation per connection) and its two slots in the poller: no
// closure, no buffer, and once detached no net.Conn either.
type flow struct {
	cfg        *copyCfg
	total      int64 // the total timeout's time, in unix nanoseconds; 0: none
	client, up net.Conn
	// clientW, if not nil, is where bytes to the client are written instead of client:
	// the socket under a passthrough client's connection, which replays the peeked
	// hello on reads only, so that the peer-to-client direction can splice.
	clientW net.Conn
	// own is the connection the flow copies for.
	own owner
	// counts counts the bytes copied to the peer and to the client.
	counts *[2]atomic.Int64

	last atomic.Int64 // unix nanoseconds of the last byte counted either way

	// Under attachMu: the detached state (see detach), attachFailed and detached below.
	attachMu sync.Mutex

	mu     sync.Mutex
	halves [2]half        // to the peer, to the client
	timers [3]*time.Timer // total timeout, watch, detach
	live   int32          // halves not done
	dead   bool           // killed: no half parks any more
	// detached: under attachMu (see detach).
	detached bool
	// canDetach: the sockets leave the runtime's poller while both halves are parked
	// (detach_linux.go). Set by start.
	canDetach bool
	// attachFailed: under attachMu: attaching failed, or the flow was killed detached:
	// no copy. (Here rather than beside attachMu: in the padding after the flags, it
	// keeps a connection's allocation within its size class.)
	attachFailed bool
}

// copyCfg is what the flows of a service share.
type copyCfg struct {
	idle time.Duration // <= 0: none
	bufs *sync.Pool    // *[]byte of copyBufSize, for the flows that cannot splice
	// poll parks the halves of a flow whose both directions splice; nil: never park.
	poll *idle.Poller[*half]
	// gos runs the halves that need a goroutine of their own; nil: a new one each.
	gos *gopool.Pool[gopool.Func, struct{}]
}

// goRun runs f on a goroutine of c.gos, or a new one without.
func (c *copyCfg) goRun(f func()) {
	if c.gos != nil {
		c.gos.Go(f)
		return
	}
	go f()
}

// owner is the connection a [flow] copies for.
type owner interface {
	// abort closes both sockets, recording err as the cause if it is the first.
	abort(err error)
	// ended is called once, on the goroutine of the last half to end, with the error
	// that ended the flow (nil when both ends were carried).
	ended(err error)
	// setConns tells the connection which sockets are its own now (see detach).
	setConns(client, up net.Conn)
}

// half is one direction of a [flow]: it copies its source to its destination (see
// src and dst). It is the flow's part in the service's poller (idle.Conn) while it
// parks.
type half struct {
	f    *flow
	err  error // what ended it; under f.mu
	poll idle.Handle

	// quiet tells whether the half found the connection idle (nothing counted for
	// idle) at its last read deadline, or is parked or done, and counted nothing since.
	quiet atomic.Bool

	down     bool  // the peer-to-client half; immutable
	parkable bool  // both directions splice and the flow has a poller
	state    uint8 // under f.mu
	woke     bool  // the poller saw its source readable while it was not parked; under f.mu
	// closeDst: the half's end is carried by closing dst (see endsFlow).
	closeDst bool
}

// other returns the flow's other half.
func (h *half) other() *half {
	if h.down {
		return &h.f.halves[0]
	}
	return &h.f.halves[1]
}

// index returns the half's index in its flow's halves and counts.
func (h *half) index() int {
	if h.down {
		return 1
	}
	return 0
}

// src returns the socket the half reads: the client's, or the peer's. (It changes
// only while the half is parked, when the flow detaches or attaches its sockets.)
func (h *half) src() net.Conn {
	if h.down {
		return h.f.up
	}
	return h.f.client
}

// dst returns the socket the half writes to.
func (h *half) dst() net.Conn {
	switch {
	case !h.down:
		return h.f.up
	case h.f.clientW != nil:
		return h.f.clientW
	}
	return h.f.client
}

// name names the half's direction, for errors.
func (h *half) name() string {
	if h.down {
		return "peer to client"
	}
	return "client to peer"
}

// start starts the copy: the client-to-peer half on the calling goroutine, which
// returns when that half is done or parks, the other on a new one. f.own.ended is
// called when both are done. The bytes copied to the peer are counted in counts[0],
// those to the client in counts[1].
func (f *flow) start(counts *[2]atomic.Int64) {
	f.counts = counts
	f.last.Store(time.Now().UnixNano())
	toC := f.client
	if f.clientW != nil {
		toC = f.clientW
	}
	total := f.deadline()
	if !total.IsZero() {
		toC.SetWriteDeadline(total)
		f.up.SetWriteDeadline(total)
	}
	up, down := &f.halves[0], &f.halves[1]
	f.mu.Lock() // (kill may look at the halves from now on)
	*up = half{f: f}
	*down = half{f: f, down: true}
	park := f.cfg.poll != nil && spliceable(f.up, f.client) && spliceable(toC, f.up)
	up.parkable, down.parkable = park, park
	f.canDetach = park && f.detachable()
	f.live = 2
	if !total.IsZero() {
		// A parked connection has no deadline of its own to meet.
		f.timers[0] = time.AfterFunc(time.Until(total), func() { f.cut(ErrTotalTimeout) })
	}
	f.mu.Unlock()
	f.cfg.goRun(down.run)
	up.run()
}

// deadline returns the total timeout's time, or the zero time.
func (f *flow) deadline() time.Time {
	if f.total == 0 {
		return time.Time{}
	}
	return time.Unix(0, f.total)
}

// cut ends the flow with err: both sockets are closed, which ends the running
// halves, and the parked ones end at once.
func (f *flow) cut(err error) {
	f.own.abort(err)
	f.kill(err)
}

// kill ends the parked halves with err, and keeps running ones from parking: the
// caller closed both sockets, so those fail by themselves.
func (f *flow) kill(err error) {
	var taken [2]*half
	f.mu.Lock()
	f.dead = true
	for i := range f.halves {
		if h := &f.halves[i]; h.state == halfParked {
			h.state = halfDone
			taken[i] = h
		}
	}
	f.mu.Unlock()
	f.closeSockets()
	for _, h := range taken {
		if h != nil {
			f.halfDone(h, err)
		}
	}
}

// run runs the half on the current goroutine until it is done or parks.
func (h *half) run() {
	for {
		err, park := error(nil), false
		if err = h.f.attach(); err == nil {
			err, park = h.copy()
		}
		if !park {
			h.f.mu.Lock()
			h.state = halfDone
			h.f.mu.Unlock()
			h.f.halfDone(h, err)
			return
		}
		if h.park() {
			return
		}
	}
}

// halfDone records that h (whose state is halfDone) ended with err; it ends the flow
// when h is the last half, cuts it when err is not nil, and otherwise watches the
// other half.
func (f *flow) halfDone(h *half, err error) {
	h.quiet.Store(true) // a direction that is done is quiet for good
	f.mu.Lock()
	h.err = err
	f.live--
	last := f.live == 0
	f.mu.Unlock()
	switch {
	case last:
		f.finish()
	case err != nil:
		f.cut(err)
	default:
		f.watch()
	}
}

// finish ends the flow once both halves are done.
func (f *flow) finish() {
	f.mu.Lock()
	for _, t := range f.timers {
		if t != nil {
			t.Stop()
		}
	}
	f.mu.Unlock()
	up, down := &f.halves[0], &f.halves[1]
	if f.cfg.poll != nil {
		f.cfg.poll.Forget(up)
		f.cfg.poll.Forget(down)
	}
	for _, h := range []*half{up, down} {
		if h.closeDst {
			h.dst().Close()
		}
	}
	// The first failure is the cause: the other direction then fails on the closed
	// sockets. A direction that failed on its own deadline is the cause too.
	err := up.err
	switch {
	case up.err != nil && down.err != nil:
		if isClosed(up.err) && !isClosed(down.err) {
			err = down.err
		}
	case up.err == nil:
		err = down.err
	}
	f.own.ended(err)
}

// watch guards the other half once one is done: a half blocked writing to a receiver
// that does not read meets no read deadline, so the flow is cut when no byte was
// counted for 2×idle (a half that reads counts its bytes at least every idle). A timer
// does it, so that a half-closed connection whose other half parks holds no goroutine.
func (f *flow) watch() {
	if f.cfg.idle <= 0 {
		return
	}
	check := func() {
		f.mu.Lock()
		if f.live == 0 {
			f.mu.Unlock()
			return
		}
		wait := time.Until(time.Unix(0, f.last.Load()).Add(2 * f.cfg.idle))
		if wait > 0 {
			f.timers[1].Reset(wait)
		}
		f.mu.Unlock()
		if wait <= 0 {
			f.cut(ErrIdleTimeout)
		}
	}
	f.mu.Lock()
	if f.live > 0 {
		f.timers[1] = time.AfterFunc(2*f.cfg.idle, check)
	}
	f.mu.Unlock()
}

// copy copies src to dst until src's end, which it carries to dst with CloseWrite; it
// returns nil then, or the error that ended the copy; or park, when the half has
// waited parkAfter for bytes and may park.
func (h *half) copy() (err error, park bool) {
	f, dst, src := h.f, h.dst(), h.src()
	var chunk func() (int64, bool, error)
	if spliceable(dst, src) {
		var err error
		if chunk, err = spliceChunker(dst, src); err != nil {
			return fmt.Errorf("l4: %s: %w", h.name(), err), false
		}
	} else {
		bp := f.cfg.bufs.Get().(*[]byte)
		defer f.cfg.bufs.Put(bp)
		buf := *bp
		chunk = func() (int64, bool, error) {
			n, err := src.Read(buf)
			if n > 0 {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return 0, false, werr
				}
			}
			if err == io.EOF {
				return int64(n), true, nil
			}
			return int64(n), false, err
		}
	}
	arm := func(now time.Time) {
		want := time.Time{}
		if f.cfg.idle > 0 {
			want = now.Add(f.cfg.idle)
		}
		if h.parkable && (want.IsZero() || now.Add(parkAfter).Before(want)) {
			want = now.Add(parkAfter)
		}
		if total := f.deadline(); !total.IsZero() && (want.IsZero() || total.Before(want)) {
			want = total
		}
		src.SetReadDeadline(want)
	}
	start := time.Now()
	moved := start // when this half last moved bytes, or started
	arm(start)
	for {
		n, eof, err := chunk()
		if n > 0 {
			h.f.counts[h.index()].Add(n)
			now := time.Now()
			f.last.Store(now.UnixNano())
			moved = now
			h.quiet.Store(false)
		}
		if eof {
			if h.endsFlow() {
				// The other direction is done: the flow ends now, and closing dst (in
				// finish) sends its FIN: its reads took every byte, so no reset. No
				// shutdown(2).
				h.closeDst = true
				return nil, false
			}
			if cw, ok := dst.(interface{ CloseWrite() error }); ok {
				if err := cw.CloseWrite(); err != nil && !isClosed(err) {
					return fmt.Errorf("l4: %s: close write: %w", h.name(), err), false
				}
			}
			return nil, false
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("l4: %s: %w", h.name(), err), false
		}
		now := time.Now()
		if f.total != 0 && now.UnixNano() >= f.total {
			return ErrTotalTimeout, false
		}
		if n == 0 && h.parkable && now.Sub(moved) >= parkAfter {
			src.SetReadDeadline(time.Time{}) // no timer left behind
			return nil, true
		}
		if n == 0 && f.cfg.idle > 0 {
			// Nothing to read now. The other direction counts the bytes it moves only
			// once written, so it may be in the middle of a write: the connection is
			// idle when nothing was counted for idle and the other direction found it
			// so too at its own last deadline, or when nothing was counted for 2×idle
			// (the other direction blocked writing to a receiver that does not read).
			since := now.Sub(time.Unix(0, f.last.Load()))
			if since >= f.cfg.idle && h.other().quiet.Load() || since >= 2*f.cfg.idle {
				return ErrIdleTimeout, false
			}
			h.quiet.Store(since >= f.cfg.idle)
		}
		arm(now)
	}
}

// endsFlow reports whether h's end ends the flow, and closing its plain TCP
// destination carries that end as well as CloseWrite would: the other half is done.
// (A TLS destination needs its close_notify, which closing the socket under it does
// not send.)
func (h *half) endsFlow() bool {
	if _, ok := h.dst().(*net.TCPConn); !ok {
		return false
	}
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	return h.other().state == halfDone
}

// isClosed reports whether err is the error of a use of a closed socket: what the
// other direction sees after abort closed both.
func isClosed(err error) bool { return errors.Is(err, net.ErrClosed) }
