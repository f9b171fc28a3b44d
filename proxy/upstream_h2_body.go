package proxy

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/arena"
	"github.com/gotthard-proxy/gotthard/message"
)

// The request body to an HTTP/2 peer through net/http's Transport (a TLS peer with
// ProtoHTTP2IfOffered; on the proxy's own client, see h2Attempt). net/http reads a
// request's body on a goroutine of its own, and it reads the response while the body still goes up (an early answer, a
// gRPC bidirectional stream), but the phases of one request never run at the same time
// and all run on the request's goroutine. So, for a body streamed from the client, the
// request goroutine runs RequestBodyFilter and hands the filtered pieces to net/http's
// goroutine, which only copies them (h2ReqBody); what blocks (the read of the client's
// body, RoundTrip and the reads of the response body) runs on two goroutines of the
// attempt's, which the request goroutine waits on together (h2Pump.next).

// h2Pump carries a request body streamed from the client to an HTTP/2 peer, for one
// attempt. Its goroutines are the feeder (feed), which reads the client's body when
// asked, and the upstream goroutine (roundTrip), which runs RoundTrip and then reads the
// response body when asked; each does one thing at a time and reports it on a channel.
// The request goroutine asks, runs the phases on what comes back and forwards the
// hooks net/http calls on its own goroutines (call). finish stops them all.
type h2Pump[C any] struct {
	// Set before the goroutines start, then read only.
	c       *conn[C]
	ex      *exchange[C]
	ctx     contextT
	cc      C
	req     *http.Request
	cancel  context.CancelFunc // ends the attempt
	timeout time.Duration      // the peer's read timeout
	body    *h2ReqBody         // what net/http reads
	settles bool               // the client's body is read through a reader the phases may use (HTTP/1.x)

	// Owned by the request goroutine.
	wanted  bool           // net/http waits for the next piece
	reading bool           // the feeder is reading the client's body
	ended   bool           // no more of the body goes up: all of it went, or it failed
	err     *Error         // the body's failure (a client read or RequestBodyFilter)
	timer   *time.Timer    // bounds each wait for the peer; reset by each piece sent
	expired bool           // the timer cut a wait for the peer
	resp    *http.Response // once RoundTrip returned it

	// Between the goroutines.
	read  chan struct{} // request goroutine → feeder: read a piece (closed: stop)
	got   chan h2Read   // feeder → request goroutine: the piece read
	upBuf chan []byte   // request goroutine → upstream goroutine: read the response body into this (closed: stop)
	up    chan h2Up     // upstream goroutine → request goroutine: RoundTrip's result, then each read's
	calls chan func()   // net/http's hooks → request goroutine: run this
	ran   chan struct{} // request goroutine → hook: done
	quit  chan struct{} // closed when the request goroutine stops running calls
	wg    sync.WaitGroup
}

// h2Read is a piece of the client's body, as the downstream's readBody returned it: it
// is valid until the next read.
type h2Read struct {
	b   []byte
	err error
}

// h2Up is what the upstream goroutine reports: RoundTrip's result, then each read of the
// response body (n bytes into the buffer given).
type h2Up struct {
	resp *http.Response
	n    int
	err  error
}

// newH2Pump makes the pump of an attempt; its caller sets req (whose Body is p.body) and
// starts it.
func newH2Pump[C any](c *conn[C], ex *exchange[C], ctx contextT, cc C, cancel context.CancelFunc, timeout time.Duration) *h2Pump[C] {
	_, h2 := ex.sess.transport().(*h2down)
	p := &h2Pump[C]{c: c, ex: ex, ctx: ctx, cc: cc, cancel: cancel, timeout: timeout,
		body: &h2ReqBody{
			want: make(chan struct{}, 1),
			data: make(chan h2Piece, 1),
			done: make(chan struct{}),
		},
		settles: !h2,
		timer:   time.NewTimer(timeout),
		read:    make(chan struct{}, 1),
		got:     make(chan h2Read, 1),
		upBuf:   make(chan []byte, 1),
		up:      make(chan h2Up, 1),
		calls:   make(chan func()),
		ran:     make(chan struct{}, 1),
		quit:    make(chan struct{}),
	}
	p.timer.Stop()
	return p
}

// start starts the feeder and the upstream goroutine, which sends p.req with tr.
func (p *h2Pump[C]) start(tr http.RoundTripper) {
	p.wg.Add(2)
	go p.feed()
	go p.roundTrip(tr)
}

// feed reads the client's body, a piece when asked, on the feeder goroutine. It touches
// nothing of the session but the downstream's read side and the minimum body rate
// (sess.rate), and reads sess.bytesReceived, which the request goroutine updates before
// it asks for the next piece.
func (p *h2Pump[C]) feed() {
	defer p.wg.Done()
	sess := &p.ex.sess
	d := sess.ds
	for range p.read {
		if d.willWait() { // the read waits on the client
			t := time.Now()
			d.readTimeout(t, sess.rate.wait(t, sess.bodyTimeout, sess.bytesReceived))
		}
		b, err := d.readBody()
		p.got <- h2Read{b, sess.rate.end(err)}
	}
}

// roundTrip sends the request and then reads the response body, a read when asked, on
// the upstream goroutine.
func (p *h2Pump[C]) roundTrip(tr http.RoundTripper) {
	defer p.wg.Done()
	resp, err := tr.RoundTrip(p.req)
	p.up <- h2Up{resp: resp, err: err}
	if err != nil {
		return
	}
	for buf := range p.upBuf {
		n, err := resp.Body.Read(buf)
		p.up <- h2Up{n: n, err: err}
	}
}

// call runs f on the request goroutine, for a hook net/http calls on its goroutine, and
// returns when f is done, or at once if the attempt is over.
func (p *h2Pump[C]) call(f func()) {
	select {
	case p.calls <- f:
		select {
		case <-p.ran:
		case <-p.quit:
		}
	case <-p.quit:
	}
}

// next waits for the upstream goroutine's next report, running meanwhile what the
// request body and net/http's hooks need, on the request goroutine. Each wait is bounded
// by the read timeout, counted from the last piece of body sent.
func (p *h2Pump[C]) next() h2Up {
	p.timer.Reset(p.timeout)
	for {
		select {
		case u := <-p.up:
			p.timer.Stop()
			return u
		case <-p.body.want:
			p.wanted = true
			p.pull()
		case r := <-p.got:
			p.reading = false
			if p.filter(r, true) {
				p.timer.Reset(p.timeout)
			}
		case f := <-p.calls:
			f()
			p.ran <- struct{}{}
		case <-p.timer.C:
			p.expired = true
			p.cancel()
			if p.resp != nil {
				// net/http misses the cancel while it waits for the peer's flow-control
				// window to send the body; closing the response body resets the stream.
				p.resp.Body.Close()
			}
		}
	}
}

// settle waits, if the client's body is read through a reader the phases may use, for
// a read in progress to end, and passes its piece on: the response's phases run next.
func (p *h2Pump[C]) settle() {
	for p.settles && p.reading {
		select {
		case r := <-p.got:
			p.reading = false
			p.filter(r, false)
		case f := <-p.calls:
			f()
			p.ran <- struct{}{}
		}
	}
}

// readResponse reads the response body into buf on the upstream goroutine while the
// request body still streams; ok is false once it no longer does (the caller reads
// itself).
func (p *h2Pump[C]) readResponse(buf []byte) (n int, err error, ok bool) {
	if p.ended {
		return 0, nil, false
	}
	p.upBuf <- buf
	u := p.next()
	if u.err != nil && u.err != io.EOF && p.expired {
		u.err = peerReadTimeout(u.err)
	}
	return u.n, u.err, true
}

// pull asks the feeder for the next piece of the client's body, if net/http waits for
// one.
func (p *h2Pump[C]) pull() {
	if p.wanted && !p.reading && !p.ended {
		p.reading = true
		p.read <- struct{}{}
	}
}

// filter runs RequestBodyFilter on a piece of the client's body and hands the result to
// net/http; it reports whether a piece went. A piece the filter holds back makes it ask
// for the next one, if more is to come (and pull allows).
func (p *h2Pump[C]) filter(r h2Read, pull bool) (sent bool) {
	sess := &p.ex.sess
	sess.received(r.b)
	if p.ended {
		return false
	}
	if r.err != nil && r.err != io.EOF {
		p.fail(clientReadError(r.err))
		return false
	}
	end := r.err == io.EOF
	if len(r.b) == 0 && !end {
		if pull {
			p.pull()
		}
		return false
	}
	out, err := p.c.requestBodyFilters(p.ctx, p.ex, p.cc, r.b, end)
	if err != nil {
		p.fail(asError(err, InternalError, Internal))
		return false
	}
	if end {
		p.ended = true
		// Neither ex.trl nor the request's arena: the response, which may be on its way
		// meanwhile, uses those.
		var trl message.Header
		var a arena.Arena
		sess.ds.trailers(&trl, &a)
		for _, f := range trl.Fields() {
			p.req.Trailer.Add(f.Name, f.Value)
		}
	} else if len(out) == 0 {
		if pull {
			p.pull()
		}
		return false
	}
	p.wanted = false
	p.body.data <- h2Piece{b: out, end: end}
	return true
}

// fail ends the body with e, which net/http gets from its next read (and resets the
// stream).
func (p *h2Pump[C]) fail(e *Error) {
	p.err, p.ended = e, true
	p.ex.sess.closeAfter = true // the client's side of the connection is in doubt
	if p.wanted {
		p.wanted = false
		p.body.data <- h2Piece{err: e}
	}
}

// finish ends the attempt's goroutines and waits for them, on the request goroutine as
// the attempt ends (even by a panic in a phase): net/http reads no more of the body, a
// read waiting on the client is cut short (and the client's connection not reused), the
// response body is closed and the attempt cancelled, so that nothing touches the session
// after the request. (The response body must be closed after the request body is
// stopped: net/http's Close waits for its goroutine that reads the request body.)
func (p *h2Pump[C]) finish() {
	sess := &p.ex.sess
	close(p.quit)
	p.body.stop()
	close(p.read)
	if p.reading {
		var r h2Read
		select {
		case r = <-p.got:
		default:
			sess.ds.abortRead()
			sess.closeAfter = true
			r = <-p.got
		}
		p.reading = false
		sess.received(r.b)
	}
	if p.resp != nil {
		p.resp.Body.Close()
	}
	p.cancel()
	close(p.upBuf)
	p.wg.Wait()
	select {
	case u := <-p.up: // RoundTrip's result, if a panic came first
		if u.resp != nil {
			u.resp.Body.Close()
		}
	default:
	}
	p.timer.Stop()
}

// h2Piece is a piece of the request body for net/http: b (which may alias the client's
// read buffer, valid until the piece is read), the end, or an error.
type h2Piece struct {
	b   []byte
	end bool
	err error
}

// h2ReqBody is a streamed request body as net/http reads it, on its goroutine: Read asks
// the request goroutine for a piece (want) and copies what it hands over (data). It runs
// no phase and touches nothing of the session.
type h2ReqBody struct {
	want chan struct{} // Read → request goroutine: hand the next piece
	data chan h2Piece  // request goroutine → Read: one piece per want
	done chan struct{} // closed by stop

	// Guarded by mu, held while copying, so that stop waits for a copy in progress.
	mu      sync.Mutex
	pending []byte
	eof     bool
	err     error
	stopped bool
}

func (b *h2ReqBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.pending) == 0 && !b.eof && b.err == nil && !b.stopped {
		b.mu.Unlock()
		var pc h2Piece
		select {
		case b.want <- struct{}{}:
			select {
			case pc = <-b.data:
			case <-b.done:
			}
		case <-b.done:
		}
		b.mu.Lock()
		b.pending, b.eof, b.err = pc.b, pc.end, pc.err
	}
	switch {
	case b.stopped:
		return 0, io.ErrClosedPipe
	case len(b.pending) > 0:
		n := copy(p, b.pending)
		b.pending = b.pending[n:]
		return n, nil
	case b.err != nil:
		return 0, b.err
	}
	return 0, io.EOF
}

// Close does nothing: net/http may close the body and still send it, unread, on another
// connection; stop ends it.
func (b *h2ReqBody) Close() error { return nil }

// stop ends the body for good, once a copy in progress is done: the pieces alias the
// client's buffer, which serves the next request.
func (b *h2ReqBody) stop() {
	b.mu.Lock()
	b.stopped = true
	b.mu.Unlock()
	close(b.done)
}

// h2BufBody is a buffered request body (Session.BufferRequestBody) as net/http reads it,
// on its goroutine; each send of the request reads a copy of its own. The copies share a
// guard that the request goroutine stops as the attempt ends, since the session's buffer
// then serves the next request.
type h2BufBody struct {
	g *h2Guard
	b []byte
}

// h2Guard stops reads of a buffered body: mu is held while copying.
type h2Guard struct {
	mu      sync.Mutex
	stopped bool
}

func (g *h2Guard) stop() {
	g.mu.Lock()
	g.stopped = true
	g.mu.Unlock()
}

func (b *h2BufBody) Read(p []byte) (int, error) {
	b.g.mu.Lock()
	defer b.g.mu.Unlock()
	if b.g.stopped {
		return 0, io.ErrClosedPipe
	}
	if len(b.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, b.b)
	b.b = b.b[n:]
	return n, nil
}

func (b *h2BufBody) Close() error { return nil }
