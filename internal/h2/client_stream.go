package h2

import (
	"fmt"
	"io"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// ClientStream is one request and its response on a [ClientConn]. The request side
// ([ClientStream.WriteData], [ClientStream.WriteTrailers]) and the response side
// ([ClientStream.ReadHead], [ClientStream.ReadBody], [ClientStream.Read],
// [ClientStream.Trailers]) may be used on two goroutines at once, but the methods of one
// side must not be called concurrently with each other. [ClientStream.Cancel] may be
// called from any goroutine until Close is called; Close must be called once, when both
// sides are done with the stream, and nothing of the stream may be used once it was
// called: not its methods, not Cancel (a timer of the caller's that may still call
// Cancel must be stopped, or guarded by a lock of the caller's, first), not the fields
// or body pieces it returned.
//
// # Reuse
//
// Close gives the stream back to its connection, which hands it to a later
// [ClientConn.NewStream] (a connection keeps at most a few such streams, and drops them
// with itself). The stream's state belongs to the connection's read loop only while
// the stream is in the connection's table (from NewStream until it ends or is reset):
// frames that arrive later for its id (late DATA, HEADERS or RST_STREAM after a reset)
// find no stream and are dropped, so a stream given back is never reached by them. The
// head and trailer fields the stream returned are backed by slices it reuses, but the
// strings in them are not: a caller may keep the strings past Close, not the slices.
type ClientStream struct {
	cc         *ClientConn
	id         uint32
	rwake      chan struct{} // a head, body or the end arrived
	sendWindow               // guarded by cc.mu but for wwake

	// Guarded by cc.mu.
	gone       bool  // removed from the connection (ended or failed)
	err        error // why the stream failed
	localDone  bool  // END_STREAM sent
	remoteDone bool  // END_STREAM received
	eof        bool  // the response is complete
	headDone   bool  // the final head arrived
	headEnds   bool  // with END_STREAM
	status     int
	head       []Field
	trailers   []Field
	interim    []interimHead
	recvBody   // the response body received, not yet read
	bodyBuf    [4][]byte

	// Owned by the response side.
	cur []byte // the chunk ReadBody handed out, returned to the pool on the next call
	off int    // what Read consumed of cur

	// Guarded by cc.wmu.
	rstSent bool // RST_STREAM sent or received: no more frames
}

// interimHead is a 1xx response head.
type interimHead struct {
	status int
	fields []Field
}

// maxFreeClientStreams bounds the streams a connection keeps for reuse (see ClientStream).
const maxFreeClientStreams = 16

// newStreamLocked returns a stream with the next id: one given back by Close, reset, or
// a new one. cc.mu is held; the caller sets rstSent under cc.wmu.
func (cc *ClientConn) newStreamLocked() *ClientStream {
	var st *ClientStream
	if n := len(cc.free); n > 0 {
		st = cc.free[n-1]
		cc.free[n-1] = nil
		cc.free = cc.free[:n-1]
		rwake, wwake := st.rwake, st.wwake
		head, trailers, interim := st.head[:0], st.trailers[:0], st.interim[:0]
		*st = ClientStream{cc: cc, rwake: rwake, sendWindow: sendWindow{wwake: wwake}, head: head, trailers: trailers, interim: interim}
		drain(rwake)
		drain(wwake)
	} else {
		st = &ClientStream{cc: cc, rwake: make(chan struct{}, 1), sendWindow: sendWindow{wwake: make(chan struct{}, 1)}}
	}
	st.id = cc.nextID
	cc.nextID += 2
	st.sendWin = cc.peerInitWin
	st.recvWin = int64(cc.opts.StreamWindowSize)
	st.body = st.bodyBuf[:0]
	return st
}

// drain empties a wake-up channel.
func drain(ch chan struct{}) {
	select {
	case <-ch:
	default:
	}
}

// closeStreamLocked removes st from the connection; err, if not nil, is why it failed.
// cc.mu is held.
func (cc *ClientConn) closeStreamLocked(st *ClientStream, err error) {
	if st.gone {
		return
	}
	st.gone = true
	if err != nil && st.err == nil {
		st.err = err
	}
	delete(cc.streams, st.id)
	cc.open.Add(-1)
	if len(cc.streams) == 0 {
		cc.idleSince = time.Now()
		if cc.goAway {
			// The last stream of a connection going away: the read loop ends.
			_ = cc.nc.Close()
		} else {
			cc.idleTimer.Reset(idleRelease)
		}
	}
	poke(st.rwake)
	poke(st.wwake)
}

// remoteDoneLocked notes the peer's END_STREAM. cc.mu is held.
func (cc *ClientConn) remoteDoneLocked(st *ClientStream) {
	st.remoteDone = true
	if st.localDone {
		cc.closeStreamLocked(st, nil)
	}
}

// ID returns the stream identifier.
func (st *ClientStream) ID() uint32 { return st.id }

// ReadHead waits for the final response head and returns its status and fields, valid
// until Close. Interim (1xx) heads that come first are passed to on1xx, if not nil, on
// the caller's goroutine, their fields valid during the call. The error wraps
// [ErrUnprocessed] when the peer did not process the request.
func (st *ClientStream) ReadHead(on1xx func(status int, fields []Field)) (int, []Field, error) {
	status, fields, err, _ := st.readHead(on1xx, true)
	return status, fields, err
}

// ReadHeadNow is ReadHead without the wait for the final head: ok is false if it has
// not arrived yet (interim heads that did were passed to on1xx). A caller that waits
// for other things too waits for [ClientStream.Wake] and calls it again.
func (st *ClientStream) ReadHeadNow(on1xx func(status int, fields []Field)) (status int, fields []Field, err error, ok bool) {
	return st.readHead(on1xx, false)
}

// Wake returns a channel that receives when the response side may have something new
// (a head, body, the end or a failure): the wait of a caller of
// [ClientStream.ReadHeadNow] or [ClientStream.ReadBodyNow]. Wake-ups may be spurious.
// It belongs to the response side: one goroutine at a time reads from it.
func (st *ClientStream) Wake() <-chan struct{} { return st.rwake }

func (st *ClientStream) readHead(on1xx func(status int, fields []Field), wait bool) (int, []Field, error, bool) {
	cc := st.cc
	cc.mu.Lock()
	for {
		if len(st.interim) > 0 {
			h := st.interim[0]
			st.interim = st.interim[1:]
			cc.mu.Unlock()
			if on1xx != nil {
				on1xx(h.status, h.fields)
			}
			cc.mu.Lock()
			continue
		}
		if st.err != nil {
			err := st.err
			cc.mu.Unlock()
			return 0, nil, err, true
		}
		if st.headDone {
			status, head := st.status, st.head
			cc.mu.Unlock()
			return status, head, nil, true
		}
		if st.gone {
			cc.mu.Unlock()
			return 0, nil, ErrConnClosed, true
		}
		cc.mu.Unlock()
		if !wait {
			return 0, nil, nil, false
		}
		<-st.rwake
		cc.mu.Lock()
	}
}

// HeadEndsStream reports whether the final head ended the response (it has no body).
// It is meaningful once ReadHead returned.
func (st *ClientStream) HeadEndsStream() bool {
	st.cc.mu.Lock()
	defer st.cc.mu.Unlock()
	return st.headEnds
}

// ReadBody returns the next piece of the response body, and io.EOF after the last. The
// piece is valid until the next call of ReadBody or Read, or Close. Flow-control
// credit goes back to the peer as pieces are read, in batches of half a window.
func (st *ClientStream) ReadBody() ([]byte, error) {
	b, err, _ := st.readBody(true)
	return b, err
}

// ReadBodyNow is ReadBody without the wait: ok is false if no piece, end or failure is
// at hand yet (see [ClientStream.Wake]).
func (st *ClientStream) ReadBodyNow() (b []byte, err error, ok bool) {
	return st.readBody(false)
}

func (st *ClientStream) readBody(wait bool) ([]byte, error, bool) {
	cc := st.cc
	if st.cur != nil {
		cc.pool.Put(st.cur)
		st.cur, st.off = nil, 0
	}
	cc.mu.Lock()
	for {
		if st.err != nil {
			err := st.err
			cc.mu.Unlock()
			return nil, err, true
		}
		if len(st.body) > 0 {
			b, sc := st.popLocked(!st.remoteDone, int64(cc.opts.StreamWindowSize)/2)
			err := cc.creditConnLocked(int64(len(b)))
			cc.mu.Unlock()
			if err == nil && sc > 0 {
				_ = cc.writeWindowUpdate(st.id, sc) // (a failure ends the connection; seen next)
			}
			st.cur = b
			return b, nil, true
		}
		if st.eof {
			cc.mu.Unlock()
			return nil, io.EOF, true
		}
		if st.gone {
			cc.mu.Unlock()
			return nil, ErrConnClosed, true
		}
		cc.mu.Unlock()
		if !wait {
			return nil, nil, false
		}
		<-st.rwake
		cc.mu.Lock()
	}
}

// Read reads the response body into p, as io.Reader asks.
func (st *ClientStream) Read(p []byte) (int, error) {
	if st.cur == nil || st.off == len(st.cur) {
		off := 0
		b, err := st.ReadBody()
		if err != nil {
			return 0, err
		}
		st.cur, st.off = b, off
	}
	n := copy(p, st.cur[st.off:])
	st.off += n
	return n, nil
}

// Trailers returns the response trailers once the body was read to its end (io.EOF);
// nil if there were none. They are valid until Close.
func (st *ClientStream) Trailers() []Field {
	st.cc.mu.Lock()
	defer st.cc.mu.Unlock()
	if !st.eof {
		return nil
	}
	return st.trailers
}

// WriteData sends p as request body, ending the request if end is set, and waits for
// the peer's flow-control windows as long as needed: a caller that must not wait
// forever calls Cancel from a timer. A write on a stream the peer reset returns a
// [*ResetError], or [ErrStreamDone] if the peer had answered in full before it reset the
// stream (it wants no more body, RFC 9113 §8.1; the response stands).
func (st *ClientStream) WriteData(p []byte, end bool) error {
	return sendData(st, p, end)
}

// takeWindow waits until some of want bytes may be sent and takes up to want bytes of
// the stream and connection send windows, at most one frame's worth.
func (st *ClientStream) takeWindow(want int) (int, error) {
	cc := st.cc
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for {
		if err := st.writeErrLocked(); err != nil {
			return 0, err
		}
		if want == 0 {
			return 0, nil
		}
		if n := st.takeLocked(want, &cc.sendWin); n > 0 {
			return n, nil
		}
		st.waitWin = true
		cc.mu.Unlock()
		<-st.wwake
		cc.mu.Lock()
		st.waitWin = false
	}
}

// writeErrLocked returns why the request side may not write. cc.mu is held.
func (st *ClientStream) writeErrLocked() error {
	switch {
	case st.err != nil:
		return st.err
	case st.localDone:
		return ErrStreamDone
	case st.gone:
		return ErrConnClosed
	}
	return nil
}

func (st *ClientStream) writeData(p []byte, end bool) error {
	cc := st.cc
	cc.wmu.Lock()
	defer cc.wmu.Unlock()
	if err := st.waitSpaceLocked(); err != nil {
		return err
	}
	var flags http2.Flags
	if end {
		flags = http2.FlagDataEndStream
	}
	cc.ensureLocked()
	cc.wdata = append(appendFrameHeader(cc.wdata, len(p), http2.FrameData, flags, st.id), p...)
	cc.kickWriter()
	return nil
}

// waitSpaceLocked waits until the stream buffer has room, the stream was reset or the
// connection failed. cc.wmu is held.
func (st *ClientStream) waitSpaceLocked() error {
	cc := st.cc
	for len(cc.wdata) >= maxStreamBuffered && cc.werr == nil && !st.rstSent {
		cc.wcond.Wait()
	}
	if cc.werr != nil {
		return fmt.Errorf("%w: %w", ErrConnClosed, cc.werr)
	}
	if st.rstSent {
		cc.mu.Lock()
		err := st.err
		cc.mu.Unlock()
		if err == nil {
			err = ErrCanceled
		}
		return err
	}
	return nil
}

// WriteTrailers ends the request with trailers (lowercase names, none
// connection-specific).
func (st *ClientStream) WriteTrailers(fields []Field) error {
	cc := st.cc
	cc.mu.Lock()
	err := st.writeErrLocked()
	cc.mu.Unlock()
	if err != nil {
		return err
	}
	cc.wmu.Lock()
	if err := st.waitSpaceLocked(); err != nil {
		cc.wmu.Unlock()
		return err
	}
	cc.hbuf.Reset()
	for _, f := range fields {
		_ = cc.henc.WriteField(hpack.HeaderField{Name: f.Name, Value: f.Value})
	}
	cc.queueHeaderBlockLocked(st.id, true)
	cc.wmu.Unlock()
	st.endLocal()
	return nil
}

// endLocal notes that the request is complete.
func (st *ClientStream) endLocal() {
	cc := st.cc
	cc.mu.Lock()
	st.localDone = true
	if st.remoteDone {
		cc.closeStreamLocked(st, nil)
	}
	cc.mu.Unlock()
}

// Cancel resets the stream with CANCEL if it is still open; the waits of both sides end
// with [ErrCanceled]. It must not be called once Close was.
func (st *ClientStream) Cancel() {
	cc := st.cc
	cc.mu.Lock()
	if st.gone {
		cc.mu.Unlock()
		return
	}
	cc.closeStreamLocked(st, ErrCanceled)
	cc.mu.Unlock()
	_ = cc.writeRSTStream(st.id, st, http2.ErrCodeCancel)
}

// Close ends the stream: one still open is reset with CANCEL; the response body not
// read is dropped and its flow-control credit returned. The stream goes back to its
// connection for reuse: it must not be used afterwards (see [ClientStream]).
func (st *ClientStream) Close() {
	cc := st.cc
	st.Cancel()
	if st.cur != nil {
		cc.pool.Put(st.cur)
		st.cur, st.off = nil, 0
	}
	cc.mu.Lock()
	if n := st.dropLocked(cc.pool); n > 0 && cc.err == nil {
		_ = cc.creditConnLocked(n)
	}
	if len(cc.free) < maxFreeClientStreams && cc.err == nil {
		cc.free = append(cc.free, st)
	}
	cc.mu.Unlock()
}
