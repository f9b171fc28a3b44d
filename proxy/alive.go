package proxy

import (
	"errors"
	"os"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/upwatch"
)

// tlsDrainWait bounds the read through TLS that takes a record found waiting on an idle
// TLS connection. The record's bytes are already in the socket, so reading them does
// not wait; what waits is the read for more after a post-handshake message, which ends
// at this deadline.
const tlsDrainWait = time.Millisecond

// isAlive reports whether an idle connection is still usable: not closed by the peer and
// with no unexpected bytes waiting (an idle HTTP/1.1 server sends nothing). It peeks at
// the socket without blocking, whatever read deadline the connection has left from its
// last exchange.
//
// Under TLS the one thing an idle peer may legitimately send is a post-handshake message
// (a TLS 1.3 NewSessionTicket or KeyUpdate); a close_notify alert or application data
// make the connection unusable. Such records may also sit unread in crypto/tls's own
// buffer, where the peek cannot see them (a close_notify sent right behind a response
// arrives with it), so a TLS connection is also read through TLS: with a deadline in
// the past when its socket is empty, which takes only what crypto/tls holds, and with a
// deadline a moment away when bytes wait in the socket. The connection is alive if that
// read ends with its deadline, having taken nothing but post-handshake messages, and
// leaves the socket empty.
//
// Without a non-blocking peek (upwatch.CanPeek false), an idle connection is trusted,
// and a request that finds it closed is retried when that is safe.
func (c *upConn) isAlive() bool {
	if c.rc == nil || !upwatch.CanPeek {
		return true
	}
	switch c.peeker.Peek() {
	case upwatch.Empty:
		return c.tls == nil || c.checkTLS(aLongTimeAgo)
	case upwatch.Data:
		return c.tls != nil && c.checkTLS(time.Now().Add(tlsDrainWait))
	}
	return false
}

// checkTLS reads from an idle TLS connection until deadline; it reports whether the
// connection is still usable.
func (c *upConn) checkTLS(deadline time.Time) bool {
	c.dl.Forget() // the exchange sets its own deadlines again
	if c.nc.SetReadDeadline(deadline) != nil {
		return false
	}
	n, err := c.tls.Read(c.peek[:])
	if n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		return false // application data, close_notify, EOF or a failure
	}
	// The read ran out of time (crypto/tls keeps the connection usable after a
	// timeout). A record still unread means the deadline came before the bytes were
	// taken: too close to call, so the connection is not used.
	return c.peeker.Peek() == upwatch.Empty
}

// PeerClosed marks c dead; the pool's close watcher calls it when c's peer closed it.
func (c *upConn) PeerClosed(drained func() bool) {
	c.dead.Store(true)
	// A request written by a Read that waits for its answer may have been sent on a
	// connection whose close that Read can no longer see (see
	// netio.Conn.WriteBeforeRead). If nothing but the close is left to read, wake it.
	if c.rio != nil && c.rio.AwaitingAnswer() && drained() {
		c.nc.SetReadDeadline(aLongTimeAgo)
	}
}
