package proxy

import (
	"errors"
	"io"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/h2"
	"github.com/gotthard-proxy/gotthard/internal/hop"
	"github.com/gotthard-proxy/gotthard/message"
)

// exchangeH2Conns runs one attempt to an HTTP/2 peer on the service's own client
// connections (see h2Attempt). Every phase runs on the request's goroutine. Without a
// body to stream (none, or one buffered), that goroutine sends the request and reads
// the response itself; a request the peer did not process (GOAWAY, REFUSED_STREAM) is
// sent again on another stream. A streamed body goes up through the attempt's feeder
// (h2Streamed).
func (c *conn[C]) exchangeH2Conns(ctx contextT, ex *exchange[C], cc C, peer *Peer, set *h2Conns, up *message.RequestHeader) *Error {
	sess := &ex.sess
	o := &peer.Options
	a := getAttempt[C](set)
	a.c, a.ex, a.ctx, a.cc = c, ex, ctx, cc
	a.readWait = o.readTimeout()
	defer a.release()
	if e := a.buildHead(peer, up); e != nil {
		return e
	}
	if !ex.setUpstream(nil, a.abortFn) {
		return clientGoneError(errClientGone)
	}
	if o.TotalTimeout > 0 {
		a.armTotal(o.TotalTimeout)
	}
	streamed := sess.reqBodyKind != 0 && !sess.bodyBuffered
	if streamed {
		if err := sess.send100(); err != nil {
			return err.(*Error)
		}
		sess.bodyRead = true
	}
	var body []byte
	if sess.bodyBuffered {
		body = sess.body // (sent again as it is if the peer did not process it)
	}
	connected := false
	for i := 0; ; i++ {
		a.head.EndStream = !streamed && len(body) == 0
		st, reused, err := set.stream(ctx, &a.head, o.TotalTimeout, a.setDialFn)
		if err != nil {
			if connected { // a resend found no stream
				return a.streamError(err)
			}
			// (A dial cut as the client left is the client's doing: see proxy.)
			return h2ConnectError(ex, err)
		}
		a.st = st
		if !a.setStream(st) {
			return a.streamError(h2.ErrCanceled)
		}
		if !connected {
			// The stream makes the attempt connected: ConnectedToUpstream runs now; an
			// error from it ends the attempt.
			connected = true
			if err := c.h2Connected(ctx, sess, cc, peer, reused); err != nil {
				return asError(err, InternalError, Internal)
			}
		}
		ex.requestSent = true
		// The wait for the answer is bounded by the read timeout.
		a.armRead()
		if streamed {
			return c.h2Streamed(a)
		}
		var status int
		var fields []h2.Field
		if len(body) > h2InlineBody {
			status, fields, err = a.sendBuffered(body)
		} else {
			if len(body) > 0 {
				_ = st.WriteData(body, true) // (a failure: the response says why)
			}
			status, fields, err = st.ReadHead(a.on1xxFn)
			a.stopRead()
		}
		if err == nil {
			return c.h2Respond(a, status, fields)
		}
		a.stopFeeder()
		a.setStream(nil)
		st.Close()
		a.st = nil
		if !errors.Is(err, h2.ErrUnprocessed) || i >= maxUnprocessedResends || a.cutWhy() != cutNone {
			return a.streamError(err)
		}
	}
}

// h2InlineBody is the largest buffered request body that the request goroutine writes
// to an HTTP/2 peer itself before it waits for the answer: the least window a peer
// gives a stream is far larger. A larger one goes up through the feeder while the
// request goroutine waits for the answer, which a peer may send before it has read the
// body (and then let the body's window run out): that early answer is relayed rather
// than waited out to the read timeout.
const h2InlineBody = 16 << 10

// sendBuffered writes a buffered request body through the feeder while it waits for the
// response head.
func (a *h2Attempt[C]) sendBuffered(body []byte) (int, []h2.Field, error) {
	a.settles = false
	a.pumping, a.ended = true, true // (nothing is read from the client: the body is whole)
	go a.feedFn()
	a.writing = true
	a.ask <- h2Ask{op: opWrite, b: body, end: true}
	return a.nextHead()
}

// h2Connected counts the connection of an attempt to an HTTP/2 peer as new or reused
// and runs ConnectedToUpstream.
func (c *conn[C]) h2Connected(ctx contextT, sess *Session, cc C, peer *Peer, reused bool) error {
	s := c.svc
	sess.reused = reused
	sess.timing.UpstreamConnected = time.Now()
	if reused {
		s.pool.reused.Add(1)
	} else {
		s.pool.newConns.Add(1)
	}
	return s.app.ConnectedToUpstream(ctx, sess, cc, peer, reused)
}

// h2Respond passes the peer's response, whose head arrived, through the response phases
// to the client.
func (c *conn[C]) h2Respond(a *h2Attempt[C], status int, fields []h2.Field) *Error {
	ex := a.ex
	sess := &ex.sess
	a.settle()
	ex.gotResponseByte = true
	sess.timing.UpstreamResponse = time.Now()
	sess.upstreamStatus = status
	ended := a.st.HeadEndsStream()
	a.responseHead(status, fields, ended)
	a.eof = ended
	e := c.respond(a.ctx, ex, a.cc, a)
	if e != nil && a.err != nil {
		return a.err // the request body failed, which cut the response short
	}
	return e
}

// h2Streamed runs the attempt of a request whose body streams from the client: the
// feeder reads it and writes it to the stream, a piece at a time, while the request
// goroutine filters each piece (RequestBodyFilter) and waits for the response. The peer
// may answer before the body ends (an early answer, a gRPC bidirectional stream): the
// response's phases then run while the body still goes up, each read of the response
// body handling what the body needs meanwhile.
func (c *conn[C]) h2Streamed(a *h2Attempt[C]) *Error {
	sess := &a.ex.sess
	_, down2 := sess.transport().(*h2down)
	a.settles = !down2
	a.pumping = true
	go a.feedFn()
	status, fields, err := a.nextHead()
	if err != nil {
		if a.err != nil {
			return a.err
		}
		mirrorReset(sess, err)
		return a.streamError(err)
	}
	return c.h2Respond(a, status, fields)
}

// nextHead waits for the response head while the body streams; the read timeout (armed)
// counts from the last piece sent.
func (a *h2Attempt[C]) nextHead() (int, []h2.Field, error) {
	for {
		a.pull()
		status, fields, err, ok := a.st.ReadHeadNow(a.on1xxFn)
		if ok {
			a.stopRead()
			return status, fields, err
		}
		a.wait()
	}
}

// next reads the next piece of the response body while the body streams, each wait
// bounded by the read timeout, counted from the last piece sent.
func (a *h2Attempt[C]) next() ([]byte, error) {
	a.armRead()
	defer a.stopRead()
	for {
		a.pull()
		b, err, ok := a.st.ReadBodyNow()
		if ok {
			return b, err
		}
		a.wait()
	}
}

// wait waits until the response side may have news, or the feeder reports (which it
// handles).
func (a *h2Attempt[C]) wait() {
	select {
	case <-a.st.Wake():
	case g := <-a.got:
		a.onGot(g, true)
	}
}

// settle waits, if the client's body is read through a reader the phases may use, for
// a read in progress to end, and passes its piece on: the response's phases run next.
func (a *h2Attempt[C]) settle() {
	for a.pumping && a.settles && a.reading {
		a.onGot(<-a.got, false)
	}
}

// pull asks the feeder for the next piece of the client's body, if it is idle and more
// is to come.
func (a *h2Attempt[C]) pull() {
	if a.pumping && !a.reading && !a.writing && !a.ended {
		a.reading = true
		a.ask <- h2Ask{op: opRead}
	}
}

// onGot handles the feeder's report: a piece read is filtered and handed back to be
// written (pull: a piece the filter holds back makes it ask for the next one); a write
// done lets the next piece come.
func (a *h2Attempt[C]) onGot(g h2Got, pull bool) {
	if a.reading {
		a.reading = false
		a.filter(g, pull)
		return
	}
	a.writing = false
	if g.err != nil {
		a.ended = true // the stream ended: the response says why
		return
	}
	if a.readArmed {
		a.armRead() // the wait counts from the last piece sent
	}
	if pull {
		a.pull()
	}
}

// filter runs RequestBodyFilter on a piece of the client's body and hands the result
// to the feeder to write; at the end, with the client's trailers.
func (a *h2Attempt[C]) filter(g h2Got, pull bool) {
	sess := &a.ex.sess
	sess.received(g.b)
	if a.ended {
		return
	}
	if g.err != nil && g.err != io.EOF {
		a.fail(clientReadError(g.err))
		return
	}
	end := g.err == io.EOF
	if len(g.b) == 0 && !end {
		if pull {
			a.pull()
		}
		return
	}
	out, err := a.c.requestBodyFilters(a.ctx, a.ex, a.cc, g.b, end)
	if err != nil {
		a.fail(asError(err, InternalError, Internal))
		return
	}
	var trailers []h2.Field
	if end {
		a.ended = true
		// Neither ex.trl nor the request's arena: the response, which may be on its way
		// meanwhile, uses those.
		a.trl.Reset()
		sess.ds.trailers(&a.trl, &a.trlArena)
		for _, f := range a.trl.Fields() {
			if !hop.Field(f.Name) {
				a.trlOut = append(a.trlOut, h2.Field{Name: lowerField(f.Name, &a.trlArena), Value: f.Value})
			}
		}
		trailers = a.trlOut
	} else if len(out) == 0 {
		if pull {
			a.pull()
		}
		return
	}
	a.writing = true
	a.ask <- h2Ask{op: opWrite, b: out, end: end, trailers: trailers}
}

// fail ends the body with e and resets the stream: the peer learns that the request
// failed, and the attempt ends with e.
func (a *h2Attempt[C]) fail(e *Error) {
	a.err, a.ended = e, true
	a.ex.sess.closeAfter = true // the client's side of the connection is in doubt
	a.st.Cancel()
}

// feed is the feeder goroutine: it does what the request goroutine asks, one task at a
// time. It touches nothing of the session but the downstream's read side and the
// minimum body rate (sess.rate), and reads sess.bytesReceived, which the request
// goroutine updates before it asks for the next piece.
func (a *h2Attempt[C]) feed() {
	sess := &a.ex.sess
	d := sess.ds
	for t := range a.ask {
		switch t.op {
		case opStop:
			a.fed <- struct{}{}
			return
		case opRead:
			if d.willWait() { // the read waits on the client
				now := time.Now()
				d.readTimeout(now, sess.rate.wait(now, sess.bodyTimeout, sess.bytesReceived))
			}
			b, err := d.readBody()
			a.got <- h2Got{b: b, err: sess.rate.end(err)}
		case opWrite:
			a.got <- h2Got{err: a.write(t)}
		}
	}
}

// write writes a piece of the request body to the stream, on the feeder; the piece may
// alias the client's read buffer, which stays put until the next read.
func (a *h2Attempt[C]) write(t h2Ask) error {
	last := t.end && len(t.trailers) == 0
	if len(t.b) > 0 || last {
		if err := a.st.WriteData(t.b, last); err != nil {
			return err
		}
	}
	if len(t.trailers) > 0 {
		return a.st.WriteTrailers(t.trailers)
	}
	return nil
}

// stopFeeder ends the feeder and waits for it, as the attempt ends: a read waiting on
// the client is cut short (and the client's connection not reused), a write waiting for
// the peer's window ends with the stream, which is reset.
func (a *h2Attempt[C]) stopFeeder() {
	if !a.pumping {
		return
	}
	sess := &a.ex.sess
	if a.reading {
		var g h2Got
		select {
		case g = <-a.got:
		default:
			sess.ds.abortRead()
			sess.closeAfter = true
			g = <-a.got
		}
		a.reading = false
		sess.received(g.b)
	}
	if a.writing {
		a.st.Cancel()
		<-a.got
		a.writing = false
	}
	a.ask <- h2Ask{op: opStop}
	<-a.fed
	a.pumping = false
}
