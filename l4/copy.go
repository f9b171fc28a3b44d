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
	// costs about 40 system calls, which a connection that pauses briefly should not pay.
	detachAfter = 250 * time.Millisecond
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
type flow struct {
	idle       time.Duration // <= 0: none
	total      int64         // the total timeout's time, in unix nanoseconds; 0: none
	client, up net.Conn
	// clientW, if not nil, is where bytes to the client are written instead of client:
	// the socket under a passthrough client's connection, which replays the peeked
	// hello on reads only, so that the peer-to-client direction can splice.
	clientW net.Conn
	bufs    *sync.Pool
	// abort closes both sockets, recording err as the cause if it is the first.
	abort func(error)
	// poll parks the halves of a flow whose both directions splice; nil: never park.
	poll *idle.Poller[*half]
	// end is called once, on the goroutine of the last half to end, with the error
	// that ended the flow (nil when both ends were carried).
	end func(error)

	last atomic.Int64 // unix nanoseconds of the last byte counted either way

	// setConns, if not nil, tells the connection which sockets are its own now (see
	// detach).
	setConns func(client, up net.Conn)

	// Under attachMu: the detached state (see detach).
	attachMu  sync.Mutex
	attachErr error // attaching failed, or the flow was killed detached: no copy

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
}

// half is one direction of a [flow]: it copies src to dst. It is the flow's part in
// the service's poller (idle.Conn) while it parks.
type half struct {
	f        *flow
	dst, src net.Conn
	count    *atomic.Int64
	err      error // what ended it; under f.mu
	poll     idle.Handle

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

// name names the half's direction, for errors.
func (h *half) name() string {
	if h.down {
		return "peer to client"
	}
	return "client to peer"
}

// start starts the copy: the client-to-peer half on the calling goroutine, which
// returns when that half is done or parks, the other on a new one. f.end is called
// when both are done.
func (f *flow) start(toUp, toClient *atomic.Int64) {
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
	*up = half{f: f, dst: f.up, src: f.client, count: toUp}
	*down = half{f: f, dst: toC, src: f.up, count: toClient, down: true}
	park := f.poll != nil && spliceable(up.dst, up.src) && spliceable(down.dst, down.src)
	up.parkable, down.parkable = park, park
	f.canDetach = park && f.detachable()
	f.live = 2
	if !total.IsZero() {
		// A parked connection has no deadline of its own to meet.
		f.timers[0] = time.AfterFunc(time.Until(total), func() { f.cut(ErrTotalTimeout) })
	}
	f.mu.Unlock()
	go down.run()
	up.run()
}

// run copies src to dst until the end of src, which it carries to dst with
// CloseWrite, or a failure; or until it parks, leaving its goroutine.
func (f *flow) run(toUp, toClient *atomic.Int64) error {
	ended := make(chan error, 1)
	f.end = func(err error) { ended <- err }
	f.start(toUp, toClient)
	return <-ended
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
	f.abort(err)
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
	if f.poll != nil {
		f.poll.Forget(up)
		f.poll.Forget(down)
	}
	for _, h := range []*half{up, down} {
		if h.closeDst {
			h.dst.Close()
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
	f.end(err)
}

// watch guards the other half once one is done: a half blocked writing to a receiver
// that does not read meets no read deadline, so the flow is cut when no byte was
// counted for 2×idle (a half that reads counts its bytes at least every idle). A timer
// does it, so that a half-closed connection whose other half parks holds no goroutine.
func (f *flow) watch() {
	if f.idle <= 0 {
		return
	}
	check := func() {
		f.mu.Lock()
		if f.live == 0 {
			f.mu.Unlock()
			return
		}
		wait := time.Until(time.Unix(0, f.last.Load()).Add(2 * f.idle))
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
		f.timers[1] = time.AfterFunc(2*f.idle, check)
	}
	f.mu.Unlock()
}

// copy copies src to dst until src's end, which it carries to dst with CloseWrite; it
// returns nil then, or the error that ended the copy; or park, when the half has
// waited parkAfter for bytes and may park.
func (h *half) copy() (err error, park bool) {
	f, dst, src := h.f, h.dst, h.src
	var chunk func() (int64, bool, error)
	if spliceable(dst, src) {
		var err error
		if chunk, err = spliceChunker(dst, src); err != nil {
			return fmt.Errorf("l4: %s: %w", h.name(), err), false
		}
	} else {
		bp := f.bufs.Get().(*[]byte)
		defer f.bufs.Put(bp)
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
		if f.idle > 0 {
			want = now.Add(f.idle)
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
			h.count.Add(n)
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
		if n == 0 && f.idle > 0 {
			// Nothing to read now. The other direction counts the bytes it moves only
			// once written, so it may be in the middle of a write: the connection is
			// idle when nothing was counted for idle and the other direction found it
			// so too at its own last deadline, or when nothing was counted for 2×idle
			// (the other direction blocked writing to a receiver that does not read).
			since := now.Sub(time.Unix(0, f.last.Load()))
			if since >= f.idle && h.other().quiet.Load() || since >= 2*f.idle {
				return ErrIdleTimeout, false
			}
			h.quiet.Store(since >= f.idle)
		}
		arm(now)
	}
}

// endsFlow reports whether h's end ends the flow, and closing its plain TCP
// destination carries that end as well as CloseWrite would: the other half is done.
// (A TLS destination needs its close_notify, which closing the socket under it does
// not send.)
func (h *half) endsFlow() bool {
	if _, ok := h.dst.(*net.TCPConn); !ok {
		return false
	}
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	return h.other().state == halfDone
}

// isClosed reports whether err is the error of a use of a closed socket: what the
// other direction sees after abort closed both.
func isClosed(err error) bool { return errors.Is(err, net.ErrClosed) }
