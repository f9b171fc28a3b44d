package proxyproto

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
)

// readConn reads a header from the start of nc and consumes exactly its bytes, so
// what follows stays in the socket for whoever reads nc next (for example code that
// reads its file descriptor directly). On Linux a TCP socket is read ahead with
// MSG_PEEK and only the header is then taken from it; any other connection is read one
// byte at a time while the header's length is unknown. The caller sets nc's read
// deadline.
//
// Errors are those of [Parse]. When the data does not start with a header
// (ErrNoHeader), read holds the bytes that were taken from nc to find out (none from a
// TCP socket on Linux), to be read before the rest.
func readConn(nc net.Conn) (h *Header, read []byte, err error) {
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil && canPeek(rc) {
			h, err := readPeek(nc, rc)
			return h, nil, err
		}
	}
	br := bufio.NewReaderSize(&oneByte{r: nc}, 128)
	h, err = Parse(br)
	if errors.Is(err, ErrNoHeader) {
		read, _ = br.Peek(br.Buffered())
	}
	return h, read, err
}

// oneByte reads at most one byte per Read, so that a bufio.Reader over it holds no
// byte that its caller did not ask to see.
type oneByte struct{ r io.Reader }

func (o *oneByte) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.r.Read(p)
}

// peeker reads a socket with MSG_PEEK: each Read returns the bytes queued after those
// it returned before, without taking any from the socket.
type peeker struct {
	rc  syscall.RawConn
	buf []byte
	off int // bytes returned so far
}

func (p *peeker) Read(dst []byte) (int, error) {
	want := p.off + len(dst)
	if cap(p.buf) < want {
		p.buf = make([]byte, want)
	}
	buf := p.buf[:want]
	var n int
	var errno error
	eof := false
	err := p.rc.Read(func(fd uintptr) bool {
		n, errno = peek(fd, buf)
		switch {
		case errno == syscall.EAGAIN || errno == syscall.EWOULDBLOCK:
			return false
		case errno != nil:
			return true
		case n == 0:
			eof = true
			return true
		case n <= p.off:
			// Nothing new yet. A peek cannot see the peer's FIN behind queued bytes;
			// ask the kernel whether it came, else wait for the next event.
			if peerClosed(fd) {
				eof = true
				return true
			}
			return false
		}
		return true
	})
	switch {
	case err != nil:
		return 0, err
	case errno != nil:
		return 0, fmt.Errorf("proxyproto: peek: %w", errno)
	case eof:
		return 0, io.EOF
	}
	c := copy(dst, buf[p.off:n])
	p.off += c
	return c, nil
}

func readPeek(nc net.Conn, rc syscall.RawConn) (*Header, error) {
	p := &peeker{rc: rc}
	br := bufio.NewReaderSize(p, 128)
	h, err := Parse(br)
	if err != nil {
		return nil, err
	}
	// Take the header's bytes, which are queued, off the socket.
	n := p.off - br.Buffered()
	if _, err := io.ReadFull(nc, p.buf[:n]); err != nil {
		return nil, fmt.Errorf("proxyproto: consuming header: %w", err)
	}
	return h, nil
}
