//go:build linux

package proxy

import (
	"errors"
	"os"
	"syscall"
	"time"
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
func (c *upConn) isAlive() bool {
	if c.rc == nil {
		return true
	}
	switch c.peekRaw() {
	case peekEmpty:
		return c.tls == nil || c.checkTLS(aLongTimeAgo)
	case peekData:
		return c.tls != nil && c.checkTLS(time.Now().Add(tlsDrainWait))
	}
	return false
}

// peek results
const (
	peekEmpty  = iota // nothing to read: the connection is idle
	peekData          // bytes are waiting
	peekClosed        // the peer closed the connection, or it failed
)

// peekRaw looks at the connection's socket without blocking. It goes through Control,
// not Read, so that the deadline left from the last exchange (by now in the past for a
// connection idle longer than its peer's ReadTimeout) plays no part.
func (c *upConn) peekRaw() int {
	c.peeked = peekClosed
	if err := c.rc.Control(c.checkFn); err != nil {
		return peekClosed
	}
	return c.peeked
}

func (c *upConn) check(fd uintptr) {
	n, errno := peekByte(fd, &c.peek)
	switch {
	case errno == syscall.EAGAIN || errno == syscall.EWOULDBLOCK:
		c.peeked = peekEmpty
	case errno == 0 && n > 0:
		c.peeked = peekData
	default: // EOF (n == 0) or an error
		c.peeked = peekClosed
	}
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
	return c.peekRaw() == peekEmpty
}
