package proxy

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/gotthard-proxy/gotthard/message"
	"github.com/gotthard-proxy/gotthard/observe"
)

// The feeding of observers (ServiceOptions.Observers): the events of a request, of its
// attempts and of connections, in the order package observe documents. A service
// without observers pays a nil check per event: its exchanges have no obsState.

// observers is a service's observers, fixed when it is made.
type observers struct {
	all  []observe.Observer
	conn []observe.ConnObserver // those of all that see connections
	// For each request event, the indexes in all of the observers that use it (see
	// observe.EventFilter), in order.
	start, attemptStart, upstreamReq, attemptEnd, end []int
	// events holds each observer's events, and union is their union.
	events []observe.Events
	union  observe.Events
}

// attemptEvents are the events of an attempt.
const attemptEvents = observe.EventAttemptStart | observe.EventUpstreamRequest | observe.EventAttemptEnd

func newObservers(all []observe.Observer) observers {
	o := observers{all: append([]observe.Observer(nil), all...)}
	for i, x := range o.all {
		if co, ok := x.(observe.ConnObserver); ok {
			o.conn = append(o.conn, co)
		}
		ev := observe.AllEvents
		if f, ok := x.(observe.EventFilter); ok {
			ev = f.ObservedEvents() & observe.AllEvents
		}
		o.events = append(o.events, ev)
		o.union |= ev
		for _, e := range [...]struct {
			bit  observe.Events
			list *[]int
		}{
			{observe.EventRequestStart, &o.start}, {observe.EventAttemptStart, &o.attemptStart},
			{observe.EventUpstreamRequest, &o.upstreamReq}, {observe.EventAttemptEnd, &o.attemptEnd},
			{observe.EventRequestEnd, &o.end},
		} {
			if ev&e.bit != 0 {
				*e.list = append(*e.list, i)
			}
		}
	}
	return o
}

// obsState is what an exchange keeps for its observers. It belongs to the request's
// goroutine. The fields every event reads first and the observers' slots (inline for a
// service of up to inlineSlots observers) come first, on one or two cache lines: each
// event touches them, and the state of a connection's exchange is often out of the
// cache by its next request.
type obsState struct {
	// need is the events of the request some observer still needs: the union of
	// their events less what each skips.
	need    observe.Events
	open    bool // an attempt began and has not ended
	full    bool // the open (or last) attempt is followed whole: some observer needs its events
	ended   bool // RequestEnd was sent (a panic in an observer's must not send it again)
	skipped bool // some slot's skip is not 0
	slots   []obsSlot
	inline  [inlineSlots]obsSlot
	req     observe.Request
	att     observe.Attempt
	// Without observers of the attempt's events (full false), an attempt has no times
	// of its own: the session's connection times when it began tell which are its
	// (see lastAttempt).
	prevConnected, prevResponse time.Time
	panic                       any // what a phase panicked with, and where
	stack                       []byte
}

// obsSlot is what one observer keeps of a request: its Request.Data, its
// Attempt.Data and its Request.Skip.
type obsSlot struct {
	req, att any
	skip     observe.Events
}

// inlineSlots is how many observers' slots an obsState holds without an allocation of
// their own (a service with metrics, an access log and tracing has three).
const inlineSlots = 3

func newObsState(n int) *obsState {
	o := new(obsState)
	if n <= inlineSlots {
		o.slots = o.inline[:n]
	} else {
		o.slots = make([]obsSlot, n)
	}
	return o
}

// reset readies the state for the exchange's next request. req and att need no
// clearing: observeStart and observeAttemptStart write them whole, and observeEnd sets
// every field of req marked "at RequestEnd". The slots' att is cleared when an attempt
// starts; their req when RequestEnd was sent, or here if it was not.
func (o *obsState) reset() {
	if !o.ended {
		o.clearReq()
	}
	o.open, o.ended = false, false
	o.panic, o.stack = nil, nil
}

// clearReq and clearAtt set each slot's req or att to nil, writing only those that
// are not (most observers keep none).
func (o *obsState) clearReq() {
	for i := range o.slots {
		if o.slots[i].req != nil {
			o.slots[i].req = nil
		}
	}
}

func (o *obsState) clearAtt() {
	for i := range o.slots {
		if o.slots[i].att != nil {
			o.slots[i].att = nil
		}
	}
}

// observeStart tells the observers the request began.
func (c *conn[C]) observeStart(ex *exchange[C]) {
	o := ex.obs
	if o == nil {
		return
	}
	sess := &ex.sess
	r := &o.req
	// Field by field rather than a composite literal, which would build the whole
	// Request and copy it: the fields set at RequestEnd are all set there.
	r.Service, r.Proto, r.Scheme = c.svc.name, protoName(sess.req.Version), c.scheme()
	r.Method, r.Target, r.Host = sess.req.Method, sess.req.Target, sess.req.Host()
	r.Client, r.Header, r.Upgrade, r.Start = c.clientS, &sess.req.Header, sess.upgrade, sess.timing.Start
	r.Attempts = 0
	obs := &c.svc.obs
	if o.skipped {
		for i := range o.slots {
			o.slots[i].skip = 0
		}
		o.skipped = false
	}
	o.need = obs.union
	for _, i := range obs.start {
		sl := &o.slots[i]
		r.Data = sl.req
		obs.all[i].RequestStart(r)
		sl.req = r.Data
		if r.Skip != 0 {
			sl.skip, r.Skip, o.skipped = r.Skip, 0, true
		}
	}
	r.Data = nil
	if o.skipped {
		o.setNeed(obs)
	}
}

// setNeed computes o.need again, after an observer skipped events.
func (o *obsState) setNeed(obs *observers) {
	o.need = 0
	for i, ev := range obs.events {
		o.need |= ev &^ o.slots[i].skip
	}
}

// protoName names the protocol of a request of version v for observers: "" for none
// (a refused head: see refuseHead).
func protoName(v message.Version) string {
	if v == 0 {
		return ""
	}
	return v.String()
}

// attemptClock returns the time an attempt begins its work, for the attempt that
// observeAttemptStart announced: the time it gave the observers as the attempt's
// Start, or the clock's, which becomes the Start if it had none (no observer sees
// AttemptStart). The attempt calls it once, before it connects.
func (c *conn[C]) attemptClock(ex *exchange[C]) time.Time {
	o := ex.obs
	if o == nil || !o.open || !o.full {
		return ex.sess.clock()
	}
	if o.att.Start.IsZero() {
		o.att.Start = ex.sess.clock()
	}
	return o.att.Start
}

// observeAttemptStart tells the observers an attempt on peer began.
func (c *conn[C]) observeAttemptStart(ex *exchange[C], peer *Peer) {
	o := ex.obs
	if o == nil {
		return
	}
	if o.need&attemptEvents == 0 {
		o.open, o.full = true, false
		o.req.Attempts++
		o.prevConnected, o.prevResponse = ex.sess.timing.UpstreamConnected, ex.sess.timing.UpstreamResponse
		return
	}
	a := &o.att
	*a = observe.Attempt{N: ex.sess.retries, Peer: peer.Address, TLS: peer.TLS != nil}
	if peer.TLS != nil {
		a.Name = peer.TLS.ServerName
	}
	o.clearAtt()
	o.open, o.full = true, true
	o.req.Attempts++
	if o.need&observe.EventAttemptStart == 0 {
		// No observer sees the start: the attempt reads the clock when it begins its
		// work, for itself and for a.Start (see attemptClock).
		return
	}
	a.Start = ex.sess.clock()
	o.attemptEvent(&c.svc.obs, c.svc.obs.attemptStart, observe.EventAttemptStart, observe.Observer.AttemptStart)
}

// attemptEvent calls ev, the event bit, on the observers of obs whose indexes are in
// use and that do not skip it, with each one's own Data of the request and of the
// attempt and its Skip in place.
func (o *obsState) attemptEvent(obs *observers, use []int, bit observe.Events, ev func(observe.Observer, *observe.Request, *observe.Attempt)) {
	skipped := false
	for _, i := range use {
		sl := &o.slots[i]
		sk := sl.skip
		if sk&bit != 0 {
			continue
		}
		o.req.Data, o.att.Data, o.req.Skip = sl.req, sl.att, sk
		ev(obs.all[i], &o.req, &o.att)
		sl.req, sl.att = o.req.Data, o.att.Data
		if o.req.Skip != sk {
			sl.skip, skipped, o.skipped = o.req.Skip, true, true
		}
	}
	o.req.Data, o.att.Data, o.req.Skip = nil, nil, 0
	if skipped {
		o.setNeed(obs)
	}
}

// observeUpstreamRequest hands the observers the head built for the peer, spoken in
// proto.
func (c *conn[C]) observeUpstreamRequest(ex *exchange[C], up *message.RequestHeader, proto string) {
	o := ex.obs
	if o == nil || !o.open || !o.full || o.need&observe.EventUpstreamRequest == 0 {
		return
	}
	o.att.Proto = proto
	o.attemptEvent(&c.svc.obs, c.svc.obs.upstreamReq, observe.EventUpstreamRequest, func(ob observe.Observer, r *observe.Request, a *observe.Attempt) {
		ob.UpstreamRequest(r, a, &up.Header)
	})
}

// observeAttemptEnd tells the observers the open attempt ended with err (nil: its
// response was relayed).
func (c *conn[C]) observeAttemptEnd(ex *exchange[C], err *Error) {
	o := ex.obs
	if o == nil || !o.open {
		return
	}
	sess := &ex.sess
	if !o.full {
		o.lastAttempt(sess)
		return
	}
	if o.need&(observe.EventAttemptEnd|observe.EventRequestEnd) == 0 {
		o.open = false // nobody needs how it ended
		return
	}
	a := &o.att
	if t := sess.timing.End; !t.IsZero() && !a.Start.IsZero() && !t.Before(a.Start) {
		// This attempt's response was relayed and its connection went idle then: that
		// is when the attempt ended, and no clock needs reading.
		a.End = t
	} else {
		a.End = sess.clock()
	}
	if a.Start.IsZero() { // it ended before it began its work (see attemptClock)
		a.Start = a.End
	}
	// (The session's connection fields may still be an earlier attempt's: this one's
	// are those set since it began.)
	if t := sess.timing.UpstreamConnected; !t.Before(a.Start) {
		a.Connected, a.Reused = t, sess.reused
	}
	if t := sess.timing.UpstreamResponse; !t.Before(a.Start) {
		a.FirstByte = t
		a.Status = sess.upstreamStatus
	}
	if err != nil {
		a.Err, a.ErrType = err, err.Type.String()
	}
	o.endAttempt(&c.svc.obs, sess, nil)
}

// lastAttempt ends the open attempt when no observer sees attempts: it keeps what
// RequestEnd reports of the last attempt, the session's connection times that changed
// since it began (an attempt that failed to connect leaves an earlier one's).
func (o *obsState) lastAttempt(sess *Session) {
	o.open = false
	a := &o.att
	a.Connected, a.Reused, a.FirstByte = time.Time{}, false, time.Time{}
	// (!= on purpose: the same stored value, not the same instant.)
	if t := sess.timing.UpstreamConnected; t != o.prevConnected {
		a.Connected, a.Reused = t, sess.reused
	}
	if t := sess.timing.UpstreamResponse; t != o.prevResponse {
		a.FirstByte = t
	}
}

// endAttempt sends AttemptEnd for the open attempt, if any; err, if not nil, is why it
// ends (a request that ends while its attempt is open).
func (o *obsState) endAttempt(obs *observers, sess *Session, err error) {
	if !o.open {
		return
	}
	if !o.full {
		o.lastAttempt(sess)
		return
	}
	o.open = false
	if o.need&(observe.EventAttemptEnd|observe.EventRequestEnd) == 0 {
		return // nobody needs how it ended
	}
	a := &o.att
	if a.End.IsZero() {
		a.End = sess.clock()
	}
	if a.Start.IsZero() { // (see observeAttemptEnd)
		a.Start = a.End
	}
	if err != nil && a.Err == nil {
		a.Err = err
		a.ErrType, _ = errKind(err)
	}
	o.attemptEvent(obs, obs.attemptEnd, observe.EventAttemptEnd, observe.Observer.AttemptEnd)
}

// errKind names err's type and side as proxy.Error does, or "" if it is not one.
func errKind(err error) (typ, source string) {
	if err == nil { // (errors.As would allocate e even for nil)
		return "", ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Type.String(), e.Source.String()
	}
	return "", ""
}

// observeEnd tells the observers the request ended with err, before Logging.
func (c *conn[C]) observeEnd(ex *exchange[C], err error) {
	o := ex.obs
	if o == nil || o.ended {
		return
	}
	o.ended = true
	if o.need&(observe.EventAttemptEnd|observe.EventRequestEnd) == 0 {
		o.clearReq() // every observer skipped the request's end
		return
	}
	// A panic here is logged as one in Logging is: the response is out, so the
	// connection may go on.
	defer recoverObserver(c.svc.log)
	sess := &ex.sess
	o.endAttempt(&c.svc.obs, sess, err)
	r := &o.req
	r.End = sess.timing.End
	r.Status = sess.status
	r.GRPCStatus, r.GRPC = sess.grpcStatus, sess.grpcStatusSet
	r.Upstream = ""
	if sess.peer != nil {
		r.Upstream = sess.peer.Address
	}
	r.UpstreamStatus = sess.upstreamStatus
	r.Cache = ""
	if sess.cacheStatus != CacheOff {
		r.Cache = sess.cacheStatus.String()
	}
	if r.Attempts > 0 { // the last attempt's (o.att is an earlier request's otherwise)
		r.Reused, r.Connected, r.FirstByte = o.att.Reused, o.att.Connected, o.att.FirstByte
	} else {
		r.Reused, r.Connected, r.FirstByte = false, time.Time{}, time.Time{}
	}
	r.BytesSent, r.BytesReceived = sess.bytesSent, sess.bytesReceived
	r.Err = err
	r.ErrType, r.ErrSource = errKind(err)
	r.Panic, r.Stack = o.panic, o.stack
	all := c.svc.obs.all
	for _, i := range c.svc.obs.end {
		sl := &o.slots[i]
		if sl.skip&observe.EventRequestEnd != 0 {
			continue
		}
		r.Data, r.Skip = sl.req, sl.skip
		all[i].RequestEnd(r)
	}
	o.clearReq()
	r.Data, r.Skip = nil, 0
}

// connObs is what a client connection keeps for the observers that see connections;
// nil when none does. It belongs to the connection's goroutine (end may run on another,
// once the connection's own is gone).
type connObs struct {
	c        observe.Conn
	data     []any
	h2Served atomic.Int64 // the HTTP/2 streams served (they run at once)
}

// observeConnOpen tells the connection observers a client connected.
func (c *conn[C]) observeConnOpen() {
	obs := c.svc.obs.conn
	if len(obs) == 0 {
		return
	}
	co := &connObs{data: make([]any, len(obs))}
	co.c = observe.Conn{Service: c.svc.name, Remote: c.nc.RemoteAddr().String(),
		Local: c.nc.LocalAddr().String(), Start: time.Now()}
	c.obs = co
	co.each(c.svc.log, obs, observe.ConnObserver.ConnOpen)
}

// observeHandshake tells the connection observers the TLS handshake that began at start
// ended, with state cs or the error err.
func (c *conn[C]) observeHandshake(start time.Time, cs *tls.ConnectionState, err error) {
	co := c.obs
	if co == nil {
		return
	}
	co.c.Handshake = time.Since(start)
	co.c.TLS, co.c.Err = cs, err
	co.each(c.svc.log, c.svc.obs.conn, observe.ConnObserver.ConnTLS)
}

// observeConnClose tells the connection observers the connection closed.
func (c *conn[C]) observeConnClose() {
	co := c.obs
	if co == nil {
		return
	}
	c.obs = nil
	switch {
	case c.h2c.Load() != nil:
		co.c.Proto = "HTTP/2"
		co.c.Requests = int(co.h2Served.Load())
	case c.served > 0:
		co.c.Proto = "HTTP/1.1"
		co.c.Requests = c.served
	}
	co.each(c.svc.log, c.svc.obs.conn, observe.ConnObserver.ConnClose)
}

// each calls ev on every observer in turn; a panic in one is logged and ends the
// event, not the connection.
func (co *connObs) each(log *slog.Logger, obs []observe.ConnObserver, ev func(observe.ConnObserver, *observe.Conn)) {
	defer recoverObserver(log)
	for i, o := range obs {
		co.c.Data = co.data[i]
		ev(o, &co.c)
		co.data[i] = co.c.Data
	}
	co.c.Data = nil
}

// observeUpstreamConn tells the pool's connection observers about a new connection to
// peer: dialled from start, connected at connected (zero if the dial failed), its TLS
// handshake taking hs, with state cs, or failed with err.
func (p *connPool) observeUpstreamConn(peer *Peer, start, connected time.Time, hs time.Duration, cs *tls.ConnectionState, err error) {
	if len(p.connObs) == 0 {
		return
	}
	oc := &observe.Conn{Service: p.service, Upstream: true, Remote: peer.Address, Start: start,
		Connected: connected, Handshake: hs, TLS: cs, Err: err}
	defer recoverObserver(p.log)
	for _, o := range p.connObs {
		oc.Data = nil
		o.UpstreamConn(oc)
	}
}

// recoverObserver logs a panic in an observer's RequestEnd or connection events: a bug
// in it, which must not end the process or the connection. (One at a request's other
// events ends the request as a panic in a phase does.)
func recoverObserver(log *slog.Logger) {
	if p := recover(); p != nil {
		log.Error("panic in an observer", "err", p, "stack", string(debug.Stack()))
	}
}
