package syslog

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gotthard-proxy/gotthard/internal/upwatch"
)

// Errors returned by [Handler.Handle] for dropped records, wrapped.
var (
	// ErrClosed: the Handler was closed.
	ErrClosed = errors.New("syslog: handler closed")
	// ErrBusy: the connection stayed locked by other writers for WriteTimeout.
	ErrBusy = errors.New("syslog: connection busy")
	// ErrBackoff: the connection is down and the next attempt to connect is not due.
	ErrBackoff = errors.New("syslog: reconnecting")
)

// frameRoom is the room kept before each message for the octet count of stream
// transports: up to 10 digits and a space.
const frameRoom = 11

// minBackoff is the first wait after a failed attempt to connect.
const minBackoff = 100 * time.Millisecond

// sink is the connection shared by a Handler and those derived from it.
type sink struct {
	cfg    *config
	bufs   sync.Pool // *[]byte
	timers sync.Pool // *time.Timer, stopped, for waits on lock

	dropped atomic.Uint64

	// lock is a one-slot semaphore rather than a mutex so that waiting for it is
	// bounded by WriteTimeout.
	lock chan struct{}

	// Guarded by lock.
	conn     net.Conn
	stream   bool // conn is a stream: octet counting, alive checks
	closed   bool
	backoff  time.Duration  // wait after the last failed attempt to connect
	nextDial time.Time      // no attempt to connect before
	lastErr  error          // why the last attempt to connect failed
	peeker   upwatch.Peeker // looks at conn's socket, for alive
	canPeek  bool           // peeker is set up for conn
	tlsByte  [1]byte        // what alive reads of a TLS receiver
}

func newSink(cfg *config) *sink {
	s := &sink{cfg: cfg, lock: make(chan struct{}, 1)}
	s.bufs.New = func() any {
		b := make([]byte, 0, 512)
		return &b
	}
	return s
}

func (s *sink) getBuf() *[]byte { return s.bufs.Get().(*[]byte) }

func (s *sink) putBuf(b *[]byte) {
	if cap(*b) <= 64<<10 {
		s.bufs.Put(b)
	}
}

// acquire takes the lock, waiting until deadline at most.
func (s *sink) acquire(deadline time.Time) bool {
	select {
	case s.lock <- struct{}{}:
		return true
	default:
	}
	t, _ := s.timers.Get().(*time.Timer)
	if t == nil {
		t = time.NewTimer(time.Until(deadline))
	} else {
		t.Reset(time.Until(deadline))
	}
	defer s.timers.Put(t)
	defer t.Stop()
	select {
	case s.lock <- struct{}{}:
		return true
	case <-t.C:
		return false
	}
}

func (s *sink) release() { <-s.lock }

// connect makes the first connection, for New.
func (s *sink) connect(deadline time.Time) error {
	c, err := s.dial(deadline)
	if err != nil {
		return err
	}
	s.setConn(c)
	return nil
}

// setConn makes c the connection, with a peeker on its socket (under TLS, the one
// below) where the system allows.
func (s *sink) setConn(c net.Conn) {
	s.conn, s.canPeek = c, false
	raw := c
	if tc, ok := c.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if sc, ok := raw.(syscall.Conn); ok && upwatch.CanPeek {
		if rc, err := sc.SyscallConn(); err == nil {
			s.peeker.Init(rc)
			s.canPeek = true
		}
	}
}

func (s *sink) dial(deadline time.Time) (net.Conn, error) {
	d := &net.Dialer{Deadline: deadline}
	var c net.Conn
	var err error
	s.stream = s.cfg.stream
	switch {
	case s.cfg.tls != nil:
		td := tls.Dialer{NetDialer: d, Config: s.cfg.tls}
		c, err = td.Dial("tcp", s.cfg.addr)
	case s.cfg.auto:
		c, err = d.Dial("unixgram", s.cfg.addr)
		if errors.Is(err, syscall.EPROTOTYPE) {
			c, err = d.Dial("unix", s.cfg.addr)
			s.stream = true
		}
	default:
		c, err = d.Dial(s.cfg.network, s.cfg.addr)
	}
	if err != nil {
		return nil, fmt.Errorf("syslog: connect: %w", err)
	}
	return c, nil
}

// write writes the message b[frameRoom:], dropping it if it cannot be written by
// WriteTimeout. The bytes before frameRoom are scratch for the octet count.
func (s *sink) write(b []byte) error {
	now := time.Now()
	deadline := now.Add(s.cfg.writeTimeout)
	if !s.acquire(deadline) {
		s.dropped.Add(1)
		return ErrBusy
	}
	defer s.release()
	if s.closed {
		s.dropped.Add(1)
		return ErrClosed
	}
	if s.conn != nil && s.stream && !s.alive() {
		// The receiver closed the connection: a write would still succeed
		// into the socket buffer and the record would be lost unseen.
		s.drop()
	}
	if s.conn == nil {
		if time.Now().Before(s.nextDial) {
			s.dropped.Add(1)
			return fmt.Errorf("%w: %w", ErrBackoff, s.lastErr)
		}
		c, err := s.dial(deadline)
		if err != nil {
			s.backoff = min(max(2*s.backoff, minBackoff), s.cfg.maxBackoff)
			s.nextDial = time.Now().Add(s.backoff)
			s.lastErr = err
			s.dropped.Add(1)
			return err
		}
		s.setConn(c)
	}

	msg := b[frameRoom:]
	if s.stream {
		// RFC 6587 section 3.4.1: MSG-LEN SP SYSLOG-MSG.
		var digits [frameRoom]byte
		n := strconv.AppendInt(digits[:0], int64(len(msg)), 10)
		start := frameRoom - len(n) - 1
		copy(b[start:], n)
		b[frameRoom-1] = ' '
		msg = b[start:]
	} else if len(msg) > s.cfg.maxDatagram {
		msg = truncate(msg, s.cfg.maxDatagram)
	}
	if err := s.conn.SetWriteDeadline(deadline); err != nil {
		return s.fail(err)
	}
	if _, err := s.conn.Write(msg); err != nil {
		return s.fail(err)
	}
	s.backoff = 0
	return nil
}

// fail closes the connection after a failed write (a stream may hold part of a
// message) and counts the record as dropped; the next record reconnects.
func (s *sink) fail(err error) error {
	s.drop()
	s.dropped.Add(1)
	return fmt.Errorf("syslog: write: %w", err)
}

// drop closes a connection that failed. A TLS connection is closed without the
// close_notify alert, whose write crypto/tls bounds at 5s, not at WriteTimeout.
func (s *sink) drop() {
	if tc, ok := s.conn.(*tls.Conn); ok {
		tc.NetConn().Close()
	} else {
		s.conn.Close()
	}
	s.conn = nil
}

// truncate cuts msg to at most n bytes without splitting a UTF-8 character.
func truncate(msg []byte, n int) []byte {
	for n > 0 && !utf8.RuneStart(msg[n]) {
		n--
	}
	return msg[:n]
}

func (s *sink) close() error {
	s.lock <- struct{}{}
	defer s.release()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	if err != nil {
		return fmt.Errorf("syslog: close: %w", err)
	}
	return nil
}

// alive reports whether the receiver has not closed the stream connection. Syslog
// receivers send nothing, so a peek at the socket that finds the end of the stream
// means the connection is gone, and one that finds nothing means it is still there. A
// TLS receiver does send: session tickets, and an alert before it closes; they are
// read here, waiting for more for a millisecond, which happens about once per
// connection.
func (s *sink) alive() bool {
	if !s.canPeek {
		return true // a closed connection shows at the next write that fails
	}
	switch s.peeker.Peek() {
	case upwatch.Closed:
		return false
	case upwatch.Data:
		tc, isTLS := s.conn.(*tls.Conn)
		if !isTLS {
			return true
		}
		if err := tc.SetReadDeadline(time.Now().Add(time.Millisecond)); err != nil {
			return false
		}
		_, err := tc.Read(s.tlsByte[:])
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			return false // close_notify, an alert, or the end of the stream
		}
		return tc.SetReadDeadline(time.Time{}) == nil
	}
	return true
}
