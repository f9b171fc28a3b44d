package upwatch

import "syscall"

// Results of [Peeker.Peek].
const (
	Empty  = iota // nothing to read: the connection is idle
	Data          // bytes are waiting
	Closed        // the peer closed the connection, or it failed
)

// Peeker looks at a connection's socket without taking its bytes and without blocking.
// It keeps what a peek needs, so that peeking does not allocate. A Peeker is used by
// one goroutine at a time.
type Peeker struct {
	rc     syscall.RawConn
	fn     func(fd uintptr)
	peeked int
	b      [1]byte
}

// Init makes p peek at rc's socket.
func (p *Peeker) Init(rc syscall.RawConn) {
	p.rc = rc
	p.fn = p.check
}

// Peek reports [Empty], [Data] or [Closed]. It goes through the socket's Control, not a
// Read, so that the connection's read deadline plays no part. Where [CanPeek] is false
// it reports [Data] (or [Closed] if Control fails).
func (p *Peeker) Peek() int {
	p.peeked = Closed
	if err := p.rc.Control(p.fn); err != nil {
		return Closed
	}
	return p.peeked
}

func (p *Peeker) check(fd uintptr) {
	n, errno := peekByte(fd, &p.b)
	switch {
	case errno == syscall.EAGAIN || errno == syscall.EWOULDBLOCK:
		p.peeked = Empty
	case errno == 0 && n > 0:
		p.peeked = Data
	default: // EOF (n == 0) or an error
		p.peeked = Closed
	}
}
