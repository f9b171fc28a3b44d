package l4

import (
	"crypto/tls"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/gotthard-proxy/gotthard/observe"
)

// The feeding of connection observers (ServiceOptions.Observers): ConnOpen when a client
// connection is accepted (after its PROXY protocol header), ConnTLS when the TLS
// handshake of an AddTLS endpoint ended, UpstreamConn for each connection to a peer
// (made or failed), ConnClose when the connection ended, before Logging. A service
// without observers pays a nil check per event.

// connObs is what a connection keeps for the observers; nil without. Its events run
// one after the other: on the connection's goroutine, and ConnClose on the goroutine
// that finishes the connection.
type connObs struct {
	c    observe.Conn
	data []any
	one  [1]any // data's room for one observer
}

// observeOpen tells the observers the client connected.
func (c *conn[C]) observeOpen() {
	obs := c.svc.opts.Observers
	if len(obs) == 0 {
		return
	}
	co := new(connObs)
	co.data = co.one[:]
	if len(obs) > 1 {
		co.data = make([]any, len(obs))
	}
	sess := &c.sess
	co.c = observe.Conn{Service: c.svc.name, Remote: sess.clientString(), Proto: "TCP", Start: sess.start}
	if sess.others == nil {
		co.c.Local = sess.local.String()
	} else if sess.others[1] != nil {
		co.c.Local = sess.others[1].String()
	}
	c.obs = co
	co.each(c.svc.log, obs, observe.ConnObserver.ConnOpen)
}

// observeHandshake tells the observers the client's TLS handshake, begun at start,
// ended with state cs or the error err.
func (c *conn[C]) observeHandshake(start time.Time, cs *tls.ConnectionState, err error) {
	co := c.obs
	if co == nil {
		return
	}
	co.c.Handshake, co.c.TLS, co.c.Err = time.Since(start), cs, err
	co.each(c.svc.log, c.svc.opts.Observers, observe.ConnObserver.ConnTLS)
	co.c.Err = nil
}

// observeUpstream tells the observers about a connection to peer: dialled from start,
// connected at t.connected (zero if the dial failed), its TLS handshake taking
// t.handshake, or failed with err.
func (c *conn[C]) observeUpstream(peer *Peer, start time.Time, t *dialTimes, err error) {
	co := c.obs
	if co == nil {
		return
	}
	oc := &observe.Conn{Service: c.svc.name, Upstream: true, Remote: peer.Address, Proto: "TCP",
		Start: start, Connected: t.connected, Handshake: t.handshake, TLS: t.tls, Err: err}
	defer recoverObserver(c.svc.log)
	for _, o := range c.svc.opts.Observers {
		o.UpstreamConn(oc)
	}
}

// observeClose tells the observers the connection ended.
func (c *conn[C]) observeClose() {
	co := c.obs
	if co == nil {
		return
	}
	c.obs = nil
	co.c.BytesReceived, co.c.BytesSent = c.sess.BytesToUpstream(), c.sess.BytesToClient()
	co.each(c.svc.log, c.svc.opts.Observers, observe.ConnObserver.ConnClose)
}

// each calls ev on every observer in turn, with its own Data; a panic in one is logged
// and ends the event, not the connection.
func (co *connObs) each(log *slog.Logger, obs []observe.ConnObserver, ev func(observe.ConnObserver, *observe.Conn)) {
	defer recoverObserver(log)
	for i, o := range obs {
		co.c.Data = co.data[i]
		ev(o, &co.c)
		co.data[i] = co.c.Data
	}
	co.c.Data = nil
}

// recoverObserver logs a panic in an observer: a bug in it, which must not end the
// process or the connection.
func recoverObserver(log *slog.Logger) {
	if p := recover(); p != nil {
		log.Error("l4: panic in an observer", "err", p, "stack", string(debug.Stack()))
	}
}

// dialTimes is what a dial to a peer tells the observers: when the connection was up,
// and its TLS handshake's length and state.
type dialTimes struct {
	connected time.Time
	handshake time.Duration
	tls       *tls.ConnectionState
}
