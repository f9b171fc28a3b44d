package tlspeek

import (
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// DefaultMaxBytes is the bound [Peek] uses when maxBytes is 0: one full record and its
// header. A hello of today's browsers, post-quantum key share included, takes about 2 KiB.
const DefaultMaxBytes = recordHeaderLen + maxPlaintext

// firstRead is the size of the buffer Peek reads into first; it holds the hello of
// Go's client with an X25519MLKEM768 key share (about 1.5 KiB) and of the browsers.
const firstRead = 2048

// Peek reads a TLS ClientHello from c without consuming it: it returns what the hello
// says, and a net.Conn that yields every byte read again from the start, then the rest
// of c (its other methods are c's). It reads at most maxBytes and waits at most timeout
// for the whole hello.
//
// If maxBytes is 0 (or negative), [DefaultMaxBytes]. If timeout is 0 (or negative),
// Peek sets no deadline of its own and c's, if any, applies; otherwise it sets c's read
// deadline and clears it (to none) before it returns.
//
// The returned conn is never nil: on an error it still yields the bytes read, so a
// caller may hand a connection that is not TLS ([ErrNotTLS]) to something else. Errors
// are [ErrNotTLS], [ErrTooLarge], [ErrMalformed], or c's read error wrapped: a timeout
// wraps os.ErrDeadlineExceeded (and is a net.Error whose Timeout is true); a client that
// closes before the hello is complete gives io.ErrUnexpectedEOF, or io.EOF if it sent
// nothing. Peek reads no further than the records that carry the hello need, or a bit
// further when c delivers more in one read.
//
// The returned conn is, besides a net.Conn, an io.WriterTo and io.ReaderFrom that defer
// to c's own (so that io.Copy between two TCP connections still uses splice(2) once the
// read bytes are through) and has a CloseWrite method that calls c's (it fails with
// errors.ErrUnsupported when c has none). As with c, one goroutine may read while
// another writes.
func Peek(c net.Conn, maxBytes int, timeout time.Duration) (h Hello, conn net.Conn, err error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	if timeout > 0 {
		if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			return Hello{}, c, fmt.Errorf("tlspeek: setting the read deadline: %w", err)
		}
		defer func() {
			if derr := c.SetReadDeadline(time.Time{}); derr != nil && err == nil {
				err = fmt.Errorf("tlspeek: clearing the read deadline: %w", derr)
			}
		}()
	}
	buf := make([]byte, min(maxBytes, firstRead))
	n := 0
	var a assembler
	for {
		if n == len(buf) {
			if n >= maxBytes { // feed refuses this first; kept so that Read never gets an empty slice
				return Hello{}, newConn(c, buf[:n]), fmt.Errorf("%w: more than %d bytes", ErrTooLarge, maxBytes)
			}
			// The records go on: grow to what they are known to need (a.need), at
			// least doubling, never past maxBytes (feed has refused a need past it),
			// and at most fourfold, so that the buffer stays within four times what
			// the client sent whatever its headers claim.
			size := min(maxBytes, max(2*len(buf), min(a.need, 4*len(buf))))
			grown := make([]byte, size)
			copy(grown, buf[:n])
			buf = grown
		}
		m, rerr := c.Read(buf[n:])
		n += m
		if m > 0 {
			done, perr := a.feed(buf[:n], maxBytes)
			if perr != nil {
				return Hello{}, newConn(c, buf[:n]), perr
			}
			if done {
				h, perr := parseClientHello(a.body)
				return h, newConn(c, buf[:n]), perr
			}
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				if n == 0 {
					return Hello{}, newConn(c, nil), fmt.Errorf("tlspeek: connection closed before a ClientHello: %w", rerr)
				}
				rerr = io.ErrUnexpectedEOF
			}
			return Hello{}, newConn(c, buf[:n]), fmt.Errorf("tlspeek: reading a ClientHello after %d bytes: %w", n, rerr)
		}
	}
}

// replayConn yields buf, then reads from the connection it wraps.
type replayConn struct {
	net.Conn
	buf []byte // bytes not yet read again; nil once they all were, to free them
}

func newConn(c net.Conn, buf []byte) *replayConn {
	if len(buf) == 0 {
		buf = nil
	}
	return &replayConn{Conn: c, buf: buf}
}

// Read yields the bytes Peek read, then reads from the connection.
func (c *replayConn) Read(p []byte) (int, error) {
	if c.buf == nil {
		return c.Conn.Read(p)
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	if len(c.buf) == 0 {
		c.buf = nil
	}
	return n, nil
}

// WriteTo writes the bytes Peek read to w, then the rest of the connection, with the
// connection's own WriteTo when it has one.
func (c *replayConn) WriteTo(w io.Writer) (int64, error) {
	var total int64
	if c.buf != nil {
		n, err := w.Write(c.buf)
		total += int64(n)
		c.buf = c.buf[n:]
		if err != nil {
			return total, err
		}
		c.buf = nil
	}
	var n int64
	var err error
	if wt, ok := c.Conn.(io.WriterTo); ok {
		n, err = wt.WriteTo(w)
	} else {
		n, err = io.Copy(w, readerOnly{c.Conn})
	}
	return total + n, err
}

// ReadFrom writes what r yields to the connection, with the connection's own ReadFrom
// when it has one.
func (c *replayConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{c.Conn}, r)
}

// CloseWrite shuts down the writing side of the connection, if it has a CloseWrite
// method (as *net.TCPConn and *net.UnixConn do).
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("tlspeek: CloseWrite on a %T: %w", c.Conn, errors.ErrUnsupported)
}

// readerOnly and writerOnly hide a connection's WriteTo and ReadFrom from io.Copy.
type readerOnly struct{ io.Reader }
type writerOnly struct{ io.Writer }
