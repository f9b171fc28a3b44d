package h2

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"golang.org/x/net/http2"
)

// Stream is one request and its response. The handler reads the request with
// [Stream.Request], [Stream.ReadBody] and [Stream.Trailers] and writes the response
// with [Stream.WriteHeaders], [Stream.WriteData] and [Stream.WriteTrailers]. Reading
// and writing may happen on two goroutines at once (a proxy copies both ways), but the
// reading methods must not be called concurrently with each other, nor the writing
// methods with each other. [Stream.ID], [Stream.Request], [Stream.Reset] and
// [Stream.Done] are safe for concurrent use.
type Stream struct {
	onAbort    func() // see SetOnAbort; c.mu guards it
	id         uint32
	c          *Conn
	req        Request
	fieldBuf   [8]Field
	rwake      chan struct{} // request body arrived, or the stream ended
	sendWindow               // guarded by c.mu but for wwake

	// Guarded by c.mu.
	done       chan struct{} // made by the first call of Done
	remoteDone bool          // the client ended its side (END_STREAM)
	localDone  bool          // we ended ours
	gone       bool          // closed or reset: removed from the connection
	err        error         // why the stream was reset, or ErrConnClosed
	recvBody                 // the request body received, not yet read
	bodyBuf    [4][]byte
	eof        bool
	trailers   []Field
	received   int64

	// Owned by the reading goroutine.
	cur []byte // chunk handed out by ReadBody, returned to the pool on the next call

	// Owned by the writing goroutine.
	wroteFinal bool
	ended      bool
	timer      *time.Timer

	// Guarded by c.wmu.
	rstSent bool  // RST_STREAM sent or received: no more frames
	rstErr  error // the reset, for writes that find rstSent
}

// newStream returns a stream for a request whose head is being read.
// c.mu is held.
func (c *Conn) newStream(id uint32) *Stream {
	var st *Stream
	if n := len(c.freeStreams); n > 0 {
		st = c.freeStreams[n-1]
		c.freeStreams[n-1] = nil
		c.freeStreams = c.freeStreams[:n-1]
		select {
		case <-st.rwake:
		default:
		}
		select {
		case <-st.wwake:
		default:
		}
		clear(st.fieldBuf[:])
		*st = Stream{c: c, rwake: st.rwake, sendWindow: sendWindow{wwake: st.wwake}, fieldBuf: st.fieldBuf,
			bodyBuf: st.bodyBuf, trailers: st.trailers[:0], timer: st.timer}
	} else {
		st = &Stream{c: c, rwake: make(chan struct{}, 1), sendWindow: sendWindow{wwake: make(chan struct{}, 1)}}
	}
	st.id = id
	st.req.ContentLength = -1
	st.req.Fields = st.fieldBuf[:0]
	st.body = st.bodyBuf[:0]
	return st
}

// startStream registers a stream whose request head is complete and starts its handler.
func (c *Conn) startStream(st *Stream, endStream bool) error {
	st.req.EndStream = endStream
	if c.resetFollows(st.id) {
		// Reset before it began (the rapid reset attack sends HEADERS and RST_STREAM
		// together): no handler is started, and the reset counts as one. (The client
		// reset it: later frames on it are errors, as on any closed stream.)
		if !c.resets.add(c.opts.RateWindow, c.opts.MaxResets) {
			return connErr(http2.ErrCodeEnhanceYourCalm, "too many stream resets")
		}
		return nil
	}
	c.useful.Add(1)
	c.mu.Lock()
	// A stream the client reset leaves c.streams at once but keeps its handler's place
	// until the handler returns: with every place taken by such handlers, wait for one
	// to return before reading on, so that resetting streams does not start more work
	// (the rapid reset attack, CVE-2023-44487). The handlers of reset streams do not
	// wait for the client, so the wait is short; streams the client still holds open
	// are never more than the limit (onHeaders refuses the extra ones).
	for c.handlers >= int(c.opts.MaxConcurrentStreams) {
		c.mu.Unlock()
		<-c.hfree
		if c.closing.Load() {
			return ErrConnClosed
		}
		c.mu.Lock()
	}
	if c.dead {
		c.mu.Unlock()
		return nil
	}
	if !c.opts.Limit.acquire() {
		// The service is busy: refused, not counted against this connection.
		c.noteResetLocked(st.id)
		c.mu.Unlock()
		return c.writeRST(st.id, nil, http2.ErrCodeRefusedStream)
	}
	c.handlers++
	st.sendWin = c.peerInitWin
	st.recvWin = c.recvInitWin
	st.remoteDone, st.eof = endStream, endStream
	c.streams[st.id] = st
	handOver := c.idleWorkers > 0
	if handOver {
		c.idleWorkers--
	}
	c.mu.Unlock()
	if handOver {
		c.next <- st // (a worker counted idle is waiting for exactly this)
		return nil
	}
	c.hwg.Add(1)
	go c.serveStreams(st)
	return nil
}

// maxIdleWorkers bounds the goroutines of a connection that wait for its next stream,
// and workerLinger how long each waits (see nextStream).
const (
	maxIdleWorkers = 16
	workerLinger   = time.Second
)

// serveStreams is a handler goroutine: it runs st's handler, then those of the streams
// the read loop hands it. Reusing the goroutine reuses its stack, which a proxy's
// handler grows past a new goroutine's: growing and copying it for every stream cost
// more than a tenth of the CPU of a proxied request.
func (c *Conn) serveStreams(st *Stream) {
	defer c.hwg.Done()
	var linger *time.Timer
	defer func() {
		if linger != nil {
			linger.Stop()
		}
	}()
	for st != nil {
		c.runHandler(st)
		st = c.nextStream(&linger)
	}
}

// nextStream waits for the read loop to hand the goroutine of a handler that returned
// another stream, and returns it; nil means the goroutine ends. At most maxIdleWorkers
// goroutines of a connection wait, each for workerLinger at most, so a connection that
// goes quiet soon keeps none; teardown sends the waiting ones away. *linger is the
// goroutine's timer, made at its first wait.
//
// The waiting goroutines are counted, not named: the read loop takes one from the
// count and sends on c.next, and whichever waiting goroutine receives it runs it. A
// goroutine whose wait ran out takes itself from the count, unless the count is zero:
// then every waiting goroutine has a send coming, this one too.
func (c *Conn) nextStream(linger **time.Timer) *Stream {
	c.mu.Lock()
	if c.dead || c.idleWorkers >= maxIdleWorkers {
		c.mu.Unlock()
		return nil
	}
	c.idleWorkers++
	c.mu.Unlock()
	if *linger == nil {
		*linger = time.NewTimer(workerLinger)
	} else {
		(*linger).Reset(workerLinger)
	}
	select {
	case st := <-c.next:
		(*linger).Stop()
		return st
	case <-(*linger).C:
	}
	c.mu.Lock()
	if c.idleWorkers > 0 {
		c.idleWorkers--
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	return <-c.next
}

// resetFollows reports whether the next frame, already read from the connection, is
// RST_STREAM for stream id, and if so consumes it. Only the read loop calls it.
func (c *Conn) resetFollows(id uint32) bool {
	const n = frameHeaderLen + 4
	if c.br.Buffered() < n {
		return false
	}
	p, err := c.br.Peek(n)
	if err != nil || p[0] != 0 || p[1] != 0 || p[2] != 4 || http2.FrameType(p[3]) != http2.FrameRSTStream ||
		binary.BigEndian.Uint32(p[5:])&0x7fffffff != id {
		return false
	}
	_, _ = c.br.Discard(n)
	return true
}

// frameHeaderLen is the length of a frame header (RFC 9113 §4.1).
const frameHeaderLen = 9

func (c *Conn) runHandler(st *Stream) {
	defer c.finishStream(st)
	defer func() {
		if v := recover(); v != nil {
			c.log.Error("h2: handler panic", "stream", st.id, "panic", fmt.Sprint(v))
		}
	}()
	c.handler(st)
}

// finishStream runs when the handler returns.
func (c *Conn) finishStream(st *Stream) {
	if st.cur != nil {
		c.pool.Put(st.cur)
		st.cur = nil
	}
	c.mu.Lock()
	var code http2.ErrCode
	reset := !st.gone
	if reset {
		code = http2.ErrCodeInternal
		if st.localDone {
			code = http2.ErrCodeNo // response complete: stop the request body (RFC 9113 §8.1)
		}
		c.closeStreamLocked(st, &ResetError{Code: code})
		c.noteResetLocked(st.id)
	}
	c.dropBodyLocked(st)
	if st.timer != nil {
		st.timer.Stop()
	}
	if reset {
		_ = c.writeRST(st.id, st, code)
	}
	// The stream is out of the map and its handler has returned: nothing refers to
	// it any more (the read loop touches streams only under c.mu), so it may be reused.
	if len(c.freeStreams) < maxFreeStreams {
		c.freeStreams = append(c.freeStreams, st)
	}
	c.handlers--
	c.mu.Unlock()
	c.opts.Limit.release()
	poke(c.hfree)
}

// maxFreeStreams is how many finished streams a connection keeps for reuse.
const maxFreeStreams = 4

// closeStreamLocked removes a stream from the connection: both sides ended (err nil),
// or it was reset or the connection died. c.mu is held.
func (c *Conn) closeStreamLocked(st *Stream, err error) {
	if st.gone {
		return
	}
	st.gone = true
	if err != nil {
		st.err = err
		c.dropBodyLocked(st)
		if st.onAbort != nil {
			st.onAbort()
		}
	}
	st.onAbort = nil
	delete(c.streams, st.id)
	if st.done != nil {
		close(st.done)
	}
	poke(st.rwake)
	poke(st.wwake)
	if len(c.streams) == 0 {
		c.becameIdleLocked()
	}
}

// dropBodyLocked frees the unread body of a stream and returns its connection credit.
// c.mu is held.
func (c *Conn) dropBodyLocked(st *Stream) {
	if n := st.dropLocked(c.pool); n > 0 && !c.dead {
		_ = c.creditConnLocked(n)
	}
}

// ID returns the stream identifier.
func (st *Stream) ID() uint32 { return st.id }

// Request returns the request head. It does not change while the handler runs; the
// handler must not change it either.
func (st *Stream) Request() *Request { return &st.req }

// ReadBody returns the next piece of the request body, and io.EOF after the last. The
// piece is valid until the next call of ReadBody or the handler's return. Flow-control
// credit goes back to the client (WINDOW_UPDATE for the stream and the connection) only
// as pieces are read, so a handler that reads slowly holds the client back instead of
// buffering. If the stream was reset the error is a [*ResetError]; if the connection
// ended, it wraps [ErrConnClosed].
func (st *Stream) ReadBody() ([]byte, error) {
	c := st.c
	if st.cur != nil {
		c.pool.Put(st.cur)
		st.cur = nil
	}
	c.mu.Lock()
	for {
		if len(st.body) > 0 {
			b, sc := st.popLocked(!st.remoteDone, min(int64(c.opts.InitialWindowSize), initialWindow)/2)
			err := c.creditConnLocked(int64(len(b)))
			c.mu.Unlock()
			if err == nil && sc > 0 {
				err = c.writeWindowUpdate(st.id, sc)
			}
			_ = err // a full control queue ends the connection; the handler sees it next
			st.cur = b
			return b, nil
		}
		if st.err != nil {
			err := st.err
			c.mu.Unlock()
			return nil, err
		}
		if st.eof {
			c.mu.Unlock()
			return nil, io.EOF
		}
		c.mu.Unlock()
		<-st.rwake
		c.mu.Lock()
	}
}

// Trailers returns the request trailers, once ReadBody has returned io.EOF; nil if the
// request had none.
func (st *Stream) Trailers() []Field {
	st.c.mu.Lock()
	defer st.c.mu.Unlock()
	if !st.eof {
		return nil
	}
	return st.trailers
}

// WriteHeaders writes the response head. A status under 200 is an interim (1xx)
// response, after which the final head follows; 101 is not allowed in HTTP/2. fields
// must follow the rules of [Request] (lowercase names, no connection-specific field);
// otherwise the error wraps [ErrInvalidResponse] and nothing is sent. With endStream
// the response has no body.
func (st *Stream) WriteHeaders(status int, fields []Field, endStream bool) error {
	switch {
	case st.ended:
		return ErrStreamDone
	case st.wroteFinal:
		return fmt.Errorf("%w: second final head", ErrInvalidResponse)
	case status < 100 || status > 999 || status == 101 || (status < 200 && endStream):
		return fmt.Errorf("%w: status %d", ErrInvalidResponse, status)
	case !checkResponseFields(fields):
		return fmt.Errorf("%w: invalid field", ErrInvalidResponse)
	}
	if err := st.checkOpen(); err != nil {
		return err
	}
	if err := st.c.writeHeaders(st, status, fields, endStream); err != nil {
		return err
	}
	if status >= 200 {
		st.wroteFinal = true
	}
	if endStream {
		st.endLocal()
	}
	return nil
}

// WriteTrailers ends the response with trailers (a HEADERS frame with END_STREAM),
// after its final head and body.
func (st *Stream) WriteTrailers(fields []Field) error {
	switch {
	case st.ended:
		return ErrStreamDone
	case !st.wroteFinal:
		return fmt.Errorf("%w: trailers before the head", ErrInvalidResponse)
	case !checkResponseFields(fields):
		return fmt.Errorf("%w: invalid field", ErrInvalidResponse)
	}
	if err := st.checkOpen(); err != nil {
		return err
	}
	if err := st.c.writeHeaders(st, 0, fields, true); err != nil {
		return err
	}
	st.endLocal()
	return nil
}

// WriteData writes response body data, ending the response with endStream. It splits
// p into DATA frames and waits for the client's flow-control windows, of the stream
// and of the connection, to let them go (a SETTINGS_INITIAL_WINDOW_SIZE change may make
// the window negative; the wait then lasts until it is positive again). p may be
// reused once WriteData returns. If the client keeps the window closed longer than
// [Options.WriteTimeout], the stream is reset and the error is [ErrWriteTimeout]; if
// the stream was reset, a [*ResetError]; if the connection ended, it wraps
// [ErrConnClosed].
func (st *Stream) WriteData(p []byte, endStream bool) error {
	switch {
	case st.ended:
		return ErrStreamDone
	case !st.wroteFinal:
		return fmt.Errorf("%w: body before the final head", ErrInvalidResponse)
	}
	return sendData(st, p, endStream)
}

// dataSender is a stream of either side, as sendData sees it.
type dataSender interface {
	// takeWindow waits until some of want bytes may be sent and takes up to want
	// bytes of the stream's and the connection's send windows, at most a frame's worth.
	takeWindow(want int) (int, error)
	// writeData queues one DATA frame of p, whose window was taken.
	writeData(p []byte, end bool) error
	// endLocal marks the stream's sending side done.
	endLocal()
}

// sendData sends p on st as DATA frames, each as large as the flow-control windows
// allow, the last one with END_STREAM if end is set.
func sendData(st dataSender, p []byte, end bool) error {
	for {
		n, err := st.takeWindow(len(p))
		if err != nil {
			return err
		}
		last := end && n == len(p)
		if n > 0 || last {
			if err := st.writeData(p[:n], last); err != nil {
				return err
			}
		}
		p = p[n:]
		if last {
			st.endLocal()
			return nil
		}
		if len(p) == 0 {
			return nil
		}
	}
}

// writeData queues one DATA frame of p (see dataSender).
func (st *Stream) writeData(p []byte, end bool) error { return st.c.writeData(st, p, end) }

// takeWindow waits until some of want bytes may be sent and takes up to want bytes of
// the stream and connection send windows, at most one frame's worth.
func (st *Stream) takeWindow(want int) (int, error) {
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if st.err != nil {
			return 0, st.err
		}
		if want == 0 {
			return 0, nil
		}
		if n := st.takeLocked(want, &c.sendWin); n > 0 {
			return n, nil
		}
		st.waitWin = true
		c.mu.Unlock()
		wt := c.opts.WriteTimeout
		if st.timer == nil {
			st.timer = time.NewTimer(wt)
		} else {
			st.timer.Reset(wt)
		}
		timedOut := false
		select {
		case <-st.wwake:
		case <-st.timer.C:
			timedOut = true
		}
		st.timer.Stop()
		c.mu.Lock()
		st.waitWin = false
		if timedOut && st.err == nil {
			c.mu.Unlock()
			st.Reset(http2.ErrCodeCancel)
			c.mu.Lock()
			return 0, ErrWriteTimeout
		}
	}
}

// checkOpen returns the error of a reset stream or dead connection.
func (st *Stream) checkOpen() error {
	st.c.mu.Lock()
	defer st.c.mu.Unlock()
	return st.err
}

// endLocal records that our side of the stream has ended.
func (st *Stream) endLocal() {
	st.ended = true
	c := st.c
	c.mu.Lock()
	st.localDone = true
	if st.remoteDone {
		c.closeStreamLocked(st, nil)
	}
	c.mu.Unlock()
}

// Reset resets the stream with RST_STREAM(code), abandoning the response and the rest
// of the request body. It does nothing if the stream has already ended.
func (st *Stream) Reset(code http2.ErrCode) {
	c := st.c
	c.mu.Lock()
	if st.gone {
		c.mu.Unlock()
		return
	}
	c.closeStreamLocked(st, &ResetError{Code: code})
	c.noteResetLocked(st.id)
	c.mu.Unlock()
	_ = c.writeRST(st.id, st, code)
}

// SetOnAbort registers f to be called once if the stream ends abnormally while the
// handler runs (the client reset it, or the connection ended), so that the handler can
// cut work in progress, such as a request to an upstream. If the stream has already
// ended so (a client may reset a stream before its handler has begun), f is called at
// once. f runs with the connection's lock held, usually on the connection's goroutine:
// it must be quick and must not call the Stream. Call SetOnAbort(nil) before the
// handler returns.
func (st *Stream) SetOnAbort(f func()) {
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.gone {
		if st.err != nil && f != nil {
			f()
		}
		return
	}
	st.onAbort = f
}

// Done returns a channel that is closed when the stream ends: both sides finished, a
// reset by either side, or the end of the connection.
func (st *Stream) Done() <-chan struct{} {
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.done == nil {
		if st.gone {
			return c.closedCh
		}
		st.done = make(chan struct{})
	}
	return st.done
}
