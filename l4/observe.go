package l4

import (
	"crypto/tls"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/gotthard-proxy/gotthard/observe"
)

// The feeding of connection observers (ServiceOptions.Observers, UDPOptions.Observers).
// For a TCP connection: ConnOpen when it is accepted (after its PROXY protocol header),
// ConnTLS when the TLS handshake of an AddTLS endpoint ended, UpstreamConn for each
// connection to a peer (made or failed), ConnClose when it ended, before Logging. For a
// UDP session: ConnOpen when its first datagram came, UpstreamConn once its socket to
// the peer is connected (or failed), ConnClose when it ended, before Logging. A service
// without observers pays a nil check per event.

// connObs is what a connection or session keeps for the observers; nil without. Its
// events run one after the other: for a TCP connection on its goroutine, ConnClose on
// the goroutine that finishes it; for a UDP session on the session's goroutine.
type connObs struct {
	obs  []observe.ConnObserver
	log  *slog.Logger
	c    observe.Conn
	data []any
	one  [1]any // data's room for one observer
}

// openConn tells obs that the connection c began, and returns what it keeps for the
// next events; nil without observers.
func openConn(log *slog.Logger, obs []observe.ConnObserver, c observe.Conn) *connObs {
	if len(obs) == 0 {
		return nil
	}
	co := &connObs{obs: obs, log: log, c: c}
	co.data = co.one[:]
	if len(obs) > 1 {
		co.data = make([]any, len(obs))
	}
	co.each(observe.ConnObserver.ConnOpen)
	return co
}

// handshake tells the observers the client's TLS handshake, begun at start, ended with
// state cs or the error err.
func (co *connObs) handshake(start time.Time, cs *tls.ConnectionState, err error) {
	co.c.Handshake, co.c.TLS, co.c.Err = time.Since(start), cs, err
	co.each(observe.ConnObserver.ConnTLS)
	co.c.Err = nil
}

// upstream tells the observers about a connection to the peer at addr: dialled from
// start, connected at t.connected (zero if the dial failed), its TLS handshake taking
// t.handshake, or failed with err.
func (co *connObs) upstream(addr string, start time.Time, t *dialTimes, err error) {
	oc := &observe.Conn{Service: co.c.Service, Upstream: true, Remote: addr, Proto: co.c.Proto,
		Start: start, Connected: t.connected, Handshake: t.handshake, TLS: t.tls, Err: err}
	defer recoverObserver(co.log)
	for _, o := range co.obs {
		o.UpstreamConn(oc)
	}
}

// close tells the observers the connection ended, having relayed sent bytes to the
// client and received from it.
func (co *connObs) close(sent, received int64) {
	co.c.BytesSent, co.c.BytesReceived = sent, received
	co.each(observe.ConnObserver.ConnClose)
}

// each calls ev on every observer in turn, with its own Data; a panic in one is logged
// and ends the event, not the connection.
func (co *connObs) each(ev func(observe.ConnObserver, *observe.Conn)) {
	defer recoverObserver(co.log)
	for i, o := range co.obs {
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

// observeOpen tells the observers the client connected.
func (c *conn[C]) observeOpen() {
	obs := c.svc.opts.Observers
	if len(obs) == 0 {
		return
	}
	sess := &c.sess
	oc := observe.Conn{Service: c.svc.name, Remote: sess.clientString(), Proto: "TCP", Start: sess.start}
	if sess.others == nil {
		oc.Local = sess.local.String()
	} else if sess.others[1] != nil {
		oc.Local = sess.others[1].String()
	}
	c.obs = openConn(c.svc.log, obs, oc)
}

// observeHandshake tells the observers the client's TLS handshake, begun at start,
// ended with state cs or the error err.
func (c *conn[C]) observeHandshake(start time.Time, cs *tls.ConnectionState, err error) {
	if c.obs != nil {
		c.obs.handshake(start, cs, err)
	}
}

// observeClose tells the observers the connection ended.
func (c *conn[C]) observeClose() {
	co := c.obs
	if co == nil {
		return
	}
	c.obs = nil
	co.close(c.sess.BytesToClient(), c.sess.BytesToUpstream())
}
