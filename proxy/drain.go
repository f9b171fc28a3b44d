package proxy

import (
	"encoding/binary"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/h1"
)

// The drain of long-lived streams: WebSockets, CONNECT tunnels and gRPC calls can last
// for hours, and would hold a graceful shutdown or upgrade until its timeout cut them.
// Service.CloseStreams ends them early, each the way its protocol allows.

// wsCloseWait bounds the WebSocket closing handshake that CloseStreams starts: once it
// has passed, the tunnel is closed whether or not both sides answered.
const wsCloseWait = time.Second

// drainPoll is how often a draining WebSocket tunnel tries to put its close frames in,
// when its streams are quiet (a busy stream puts them in itself at its next frame
// boundary).
const drainPoll = 10 * time.Millisecond

// drainer is a long-lived stream that CloseStreams ends. drainStream must not block,
// may be called more than once, and from any goroutine.
type drainer interface{ drainStream() }

// drainSet holds the long-lived streams of one client connection's requests (one at a
// time over HTTP/1.x, any number over HTTP/2). Its methods are safe for concurrent use.
type drainSet struct {
	mu sync.Mutex
	m  map[drainer]struct{}
}

// add records d; if the service's streams are being closed already, it drains d at
// once.
func (ds *drainSet) add(d drainer, closing *atomic.Bool) {
	ds.mu.Lock()
	if ds.m == nil {
		ds.m = make(map[drainer]struct{})
	}
	ds.m[d] = struct{}{}
	ds.mu.Unlock()
	if closing.Load() {
		d.drainStream()
	}
}

// remove forgets d.
func (ds *drainSet) remove(d drainer) {
	ds.mu.Lock()
	delete(ds.m, d)
	ds.mu.Unlock()
}

// drainAll drains every stream in the set.
func (ds *drainSet) drainAll() {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	for d := range ds.m {
		d.drainStream()
	}
}

// CloseStreams ends the long-lived streams still open on the service, so that a drain
// ([Service.Shutdown]) can end before its deadline; a server calls it a grace period
// after the signal to stop, while Shutdown runs. It does not wait for them to end:
// Shutdown does. Plain HTTP requests are left alone, to finish within Shutdown's
// context. Each kind of stream ends as its protocol allows:
//
//   - A WebSocket (an HTTP/1.1 Upgrade, or RFC 8441 over HTTP/2 on either side): the
//     client gets a close frame with status 1001 (Going Away) and the peer a masked one,
//     each put between two frames of the bytes relayed its way, never inside one; the
//     frames either side sends after that are not relayed. Once both sides have answered
//     with their close frame, or after a second, the tunnel is closed.
//   - A CONNECT tunnel (see [ServiceOptions.AllowConnect]) is closed both ways, with a
//     log line at Debug level.
//   - A gRPC call (a POST whose Content-Type is application/grpc..., the calls of the
//     gRPC-web bridge included) whose response has started ends after the message
//     being relayed, with trailers "grpc-status: 14" (UNAVAILABLE) and
//     "grpc-message: server shutting down" where the client's protocol carries
//     trailers (HTTP/2, or a chunked HTTP/1.1 response); one whose response has not
//     started is answered 200 with those fields in the head (trailers-only). A call
//     not ended 200ms after CloseStreams has its upstream side cut then (a waiting
//     call ends so); a response then inside a message, or one that cannot carry
//     trailers, is cut short as any response whose peer failed: an HTTP/2 stream is
//     reset, an HTTP/1.x connection closed.
//
// The requests it ends run Logging with an error that wraps [ErrShutdown]. Once
// Shutdown or Close has begun, streams that open after CloseStreams are ended as they
// open. It is safe to call at any time, more than once, and after Close; called before
// Shutdown, it ends the streams open then and no others.
func (s *Service[C]) CloseStreams() {
	s.mu.Lock()
	if s.closing.Load() {
		s.streamsClosing.Store(true)
	}
	conns := make([]*conn[C], 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.drains.drainAll()
	}
}

// wsDir is one direction of a WebSocket tunnel: the frames from one side, relayed to
// the other. Its relaying goroutine (pipe) and the tunnel's watchdog share it: mu
// orders their writes to the destination and guards the fields.
type wsDir struct {
	mu       sync.Mutex
	fr       wsFrames
	masked   bool // the destination is the peer: the proxy's frames are masked
	injected bool // the proxy's close frame went out
	// done is set (under mu) once the source sent its close frame: the closing
	// handshake of this direction is over.
	done atomic.Bool
}

// closed reports whether the destination got a close frame: the proxy's, or the
// source's own.
func (d *wsDir) closed() bool { return d.injected || d.fr.sawClose }

// relay writes p, read from the source, to dst. While the tunnel drains (draining), it
// stops at the next frame boundary to put the proxy's close frame in, and drops what the
// source sends after it (that side's answer to the proxy's close, at most), following
// the frames still to see the source's close. Called with d.mu held.
func (d *wsDir) relay(dst io.Writer, p []byte, draining bool) error {
	var err error
	switch {
	case !draining:
		d.fr.feed(p, false)
		_, err = dst.Write(p)
	case d.closed():
		d.fr.feed(p, false)
	default:
		k := d.fr.feed(p, true)
		if k > 0 {
			_, err = dst.Write(p[:k])
		}
		if err == nil && d.fr.boundary() && !d.closed() {
			d.injected = true
			err = writeWSClose(dst, d.masked)
		}
		d.fr.feed(p[k:], false)
	}
	if d.fr.sawClose {
		d.done.Store(true)
	}
	return err
}

// tryClose puts the proxy's close frame in from the watchdog, if no relay is under way
// and the stream is at a frame boundary; wait bounds the write.
func (d *wsDir) tryClose(dst tunnelEnd, wait time.Duration) {
	if d.done.Load() || !d.mu.TryLock() {
		return
	}
	defer d.mu.Unlock()
	if d.closed() || !d.fr.boundary() {
		return
	}
	d.injected = true
	dst.SetWriteDeadline(time.Now().Add(wait))
	writeWSClose(dst, d.masked) // a failure shows in the relaying, or the tunnel is cut at the end
}

// grpcDrainWait is how long a gRPC call that CloseStreams ends may go on to reach the
// end of the message it is relaying before its upstream side is cut: a stream that is
// sending ends between two messages, one that is waiting is cut at once after it.
const grpcDrainWait = 200 * time.Millisecond

// grpcDrainMessage is the grpc-message of the calls CloseStreams ends.
const grpcDrainMessage = "server shutting down"

// grpcMsgs follows the length-prefixed messages of a gRPC body (a flag byte and a
// 4-byte big-endian length, then the message) as it is written to the client, so that
// a call ended by CloseStreams ends between two messages. It is not safe for concurrent
// use.
type grpcMsgs struct {
	left uint32  // bytes of the current message still to come
	hn   int     // prefix bytes of the next message seen so far
	hdr  [5]byte // those prefix bytes
}

// boundary reports whether the bytes seen so far end between two messages.
func (g *grpcMsgs) boundary() bool { return g.left == 0 && g.hn == 0 }

// feed follows the messages through p and returns how many of its bytes it took: all
// of them, or, if stop is set, those up to the first message boundary (0 if the body
// is at one already).
func (g *grpcMsgs) feed(p []byte, stop bool) int {
	i := 0
	for i < len(p) {
		if g.left > 0 {
			k := uint32(min(uint64(len(p)-i), uint64(g.left)))
			g.left -= k
			i += int(k)
			continue
		}
		if stop && g.hn == 0 {
			return i
		}
		g.hdr[g.hn] = p[i]
		g.hn++
		i++
		if g.hn == len(g.hdr) {
			g.left = binary.BigEndian.Uint32(g.hdr[1:])
			g.hn = 0
		}
	}
	return i
}

// grpcCall reports whether the session's request is a gRPC call, which CloseStreams
// ends (a POST first: the common requests pay no field lookup).
func grpcCall(sess *Session) bool { return sess.req.Method == "POST" && isGRPC(&sess.req) }

// proxyGRPC is proxy for a gRPC call: the call is one of the connection's long-lived
// streams while it runs (see CloseStreams).
func (c *conn[C]) proxyGRPC(ctx contextT, ex *exchange[C], cc C) error {
	ex.grpcDrains = &c.drains
	if _, h1 := ex.sess.transport().(*h1down); h1 {
		ex.grpcUp = &c.up // an HTTP/1.x connection's one upstream connection in use
	}
	c.drains.add(ex, &c.svc.streamsClosing)
	defer c.drains.remove(ex)
	return c.proxy(ctx, ex, cc)
}

// drainStream marks the call as ended by CloseStreams: its response stops at the next
// message boundary (see sendResponse), and its upstream side is cut after
// grpcDrainWait. It runs on CloseStreams' goroutine, under the connection's drainSet
// lock; the cut runs on a timer's, under the same lock, and only if the call is still
// the exchange's and still in the set (it leaves the set as its proxying ends).
func (ex *exchange[C]) drainStream() {
	if ex.drained.Swap(true) {
		return
	}
	ds := ex.grpcDrains
	time.AfterFunc(grpcDrainWait, func() {
		ds.mu.Lock()
		defer ds.mu.Unlock()
		if _, ok := ds.m[ex]; ok && ex.drained.Load() {
			ex.cutForDrain()
		}
	})
}

// cutForDrain cuts the upstream side of a drained call: the connection or HTTP/2
// attempt in use, and any that setUpstream records later.
func (ex *exchange[C]) cutForDrain() {
	ex.abortMu.Lock()
	defer ex.abortMu.Unlock()
	ex.drainCut.Store(true)
	if ex.upNC != nil {
		ex.upNC.SetDeadline(aLongTimeAgo)
	}
	if ex.upCancel != nil {
		ex.upCancel()
	}
	if ex.grpcUp != nil {
		if uc := ex.grpcUp.Load(); uc != nil {
			uc.nc.SetDeadline(aLongTimeAgo)
		}
	}
}

// endDrainedGRPC answers a gRPC call that CloseStreams ended: UNAVAILABLE, in a
// trailers-only response if none started, or in the trailers of the one under way if it
// stopped between two messages and the client's protocol carries trailers; otherwise
// the stream or connection is closed (an HTTP/2 stream is reset), as for any response
// cut short.
func (c *conn[C]) endDrainedGRPC(ex *exchange[C]) {
	sess := &ex.sess
	h := &sess.scratchHeader
	h.Reset()
	h.Header.Set("Grpc-Status", "14") // UNAVAILABLE
	h.Header.Set("Grpc-Message", grpcDrainMessage)
	if !sess.respStarted {
		h.Status = 200
		h.Header.Set("Content-Type", "application/grpc")
		sess.ds.writeTimeout(time.Now(), durOr(c.svc.opts.SendTimeout, 60*time.Second))
		if err := sess.writeWhole(h, nil, ""); err != nil {
			sess.closeAfter = true
			return
		}
		sess.noteGRPCStatus(&h.Header)
		return
	}
	sess.closeAfter = true
	if !ex.grpcMsgs.boundary() {
		return
	}
	if d, ok := sess.ds.(*h1down); ok && d.kind != h1.BodyChunked {
		return // no trailers in this framing
	}
	sess.ds.writeTimeout(time.Now(), durOr(c.svc.opts.SendTimeout, 60*time.Second))
	if sess.ds.finish(&h.Header) == nil && sess.ds.flush() == nil {
		sess.noteGRPCStatus(&h.Header)
	}
}
