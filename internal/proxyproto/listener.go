package proxyproto

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// Options configures [NewListener].
type Options struct {
	// Trusted lists the source addresses (the load balancers) whose connections may
	// start with a header. A connection from any other address that starts with one is
	// closed: a client must not choose the address it is known by. If empty, no source
	// is trusted and every header is refused.
	Trusted []netip.Prefix
	// Required makes a header mandatory on connections from trusted sources: one that
	// starts without a header is closed. If false, such a connection is served with
	// its own addresses.
	Required bool
	// HeaderTimeout bounds the wait for a trusted connection's header, from its first
	// Read (or RemoteAddr, LocalAddr or Header call). If zero, 5s; negative is refused.
	HeaderTimeout time.Duration
	// Logger receives one Warn line for each connection closed for its header. If nil,
	// slog.Default().
	Logger *slog.Logger
}

// ErrRefused is wrapped by the error a [Conn] returns when its header was refused (and
// the connection closed).
var ErrRefused = errors.New("proxyproto: connection refused for its PROXY protocol header")

// Listener accepts connections that may start with a PROXY protocol header. It is safe
// for concurrent use.
type Listener struct {
	net.Listener
	trusted  []netip.Prefix
	required bool
	timeout  time.Duration
	log      *slog.Logger
}

// NewListener returns a listener (a [*Listener]) that accepts on ln and gives each
// connection as a [*Conn]. Accept never reads: a connection's header is read on its first Read (or
// RemoteAddr, LocalAddr or Header call), so a slow or lying client holds up only its
// own connection. It returns an error naming the field for options that cannot work: a
// Trusted entry that is not a valid prefix, a negative HeaderTimeout, or Required with
// no Trusted source (every connection would be closed).
func NewListener(ln net.Listener, o Options) (net.Listener, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	l := &Listener{
		Listener: ln,
		trusted:  append([]netip.Prefix(nil), o.Trusted...),
		required: o.Required,
		timeout:  o.HeaderTimeout,
		log:      o.Logger,
	}
	if l.timeout == 0 {
		l.timeout = 5 * time.Second
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	for i, p := range l.trusted {
		l.trusted[i] = p.Masked()
	}
	return l, nil
}

// Validate reports options that cannot work, naming the field.
func (o Options) Validate() error {
	for i, p := range o.Trusted {
		if !p.IsValid() {
			return fmt.Errorf("proxyproto: Options.Trusted[%d] is not a valid prefix", i)
		}
	}
	if o.HeaderTimeout < 0 {
		return fmt.Errorf("proxyproto: Options.HeaderTimeout %v is negative", o.HeaderTimeout)
	}
	if o.Required && len(o.Trusted) == 0 {
		return errors.New("proxyproto: Options.Required is set but Options.Trusted is empty: every connection would be refused")
	}
	return nil
}

// Accept waits for the next connection and returns it as a *Conn.
func (l *Listener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.Wrap(nc), nil
}

// Wrap returns nc as a *Conn of this listener's options, as Accept does.
func (l *Listener) Wrap(nc net.Conn) *Conn {
	c := &Conn{Conn: nc, l: l}
	if ap, err := netip.ParseAddrPort(nc.RemoteAddr().String()); err == nil {
		a := ap.Addr().Unmap()
		for _, p := range l.trusted {
			if p.Contains(a) {
				c.trusted = true
				break
			}
		}
	}
	return c
}

// Conn is a connection accepted by a [Listener]. From a trusted source, its first
// Read, RemoteAddr, LocalAddr or Header call reads the header; RemoteAddr and LocalAddr
// then return the header's addresses (the connection's own when it had none, or a
// Local command). A refused header closes the connection: Read and Header return an
// error wrapping ErrRefused. Conn is safe for concurrent use as net.Conn is.
type Conn struct {
	net.Conn
	l       *Listener
	trusted bool

	once sync.Once
	hdr  *Header
	// header's addresses, or nil
	remote, local net.Addr

	mu           sync.Mutex
	err          error     // why the connection was refused
	userDeadline time.Time // the read deadline set by the user

	// Owned by Read:
	firstRead bool // an untrusted connection's first Read was checked
	// pending holds bytes read while looking for a header that was not there (from
	// a trusted connection that cannot be peeked at, or an untrusted one), read
	// before the rest.
	pending []byte
	replay  bool // pending was not empty (set once, with the header)
}

// Header reads the header if it was not yet read, and returns it: nil with a nil error
// when the connection had none (or is not from a trusted source), an error wrapping
// ErrRefused when it was refused.
func (c *Conn) Header() (*Header, error) {
	c.once.Do(c.readHeader)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hdr, c.err
}

// Trusted reports whether the connection's own source address is trusted.
func (c *Conn) Trusted() bool { return c.trusted }

func (c *Conn) readHeader() {
	if !c.trusted {
		return
	}
	c.mu.Lock()
	dl := time.Now().Add(c.l.timeout)
	if !c.userDeadline.IsZero() && c.userDeadline.Before(dl) {
		dl = c.userDeadline
	}
	c.mu.Unlock()
	c.Conn.SetReadDeadline(dl)
	h, read, err := readConn(c.Conn)
	c.mu.Lock()
	c.Conn.SetReadDeadline(c.userDeadline)
	c.mu.Unlock()
	switch {
	case err == nil:
		c.hdr = h
		if h.HasAddresses() {
			c.remote = tcpAddr(h.Source)
			c.local = tcpAddr(h.Destination)
		}
	case errors.Is(err, ErrNoHeader) && !c.l.required:
		// Served with its own addresses.
		c.pending, c.replay = read, len(read) > 0
	default:
		c.refuse(err)
	}
}

func (c *Conn) refuse(err error) {
	c.mu.Lock()
	c.err = fmt.Errorf("%w: %w", ErrRefused, err)
	c.mu.Unlock()
	c.l.log.Warn("PROXY protocol header refused; connection closed",
		"client", c.Conn.RemoteAddr().String(), "trusted", c.trusted, "err", err)
	c.Conn.Close()
}

func tcpAddr(ap netip.AddrPort) *net.TCPAddr {
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
}

// Read reads the header first if it was not yet read. The first Read of a connection
// from an untrusted source checks that it does not start with a header.
func (c *Conn) Read(p []byte) (int, error) {
	if _, err := c.Header(); err != nil {
		return 0, err
	}
	if !c.trusted && !c.firstRead {
		c.firstRead = true
		if err := c.checkUntrusted(); err != nil {
			return 0, err
		}
	}
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// checkUntrusted reads the first bytes of an untrusted connection until they are
// known not to start a header (they are then read again by Read), or refuses it.
func (c *Conn) checkUntrusted() error {
	buf := make([]byte, 0, 16)
	for {
		n, err := c.Conn.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case startsWithSignature(buf):
			c.refuse(errors.New("header from an untrusted source"))
			_, err := c.Header()
			return err
		case err != nil || !maybeSignature(buf):
			c.pending = buf
			return nil
		}
	}
}

// startsWithSignature reports whether b starts like a header: "PROXY " or the first
// four bytes of the version 2 signature (which no text protocol begins with).
func startsWithSignature(b []byte) bool {
	return bytes.HasPrefix(b, sigV1) || len(b) >= 4 && bytes.HasPrefix(b, sigV2[:4])
}

// maybeSignature reports whether b, shorter than startsWithSignature needs, could
// still grow into a signature.
func maybeSignature(b []byte) bool {
	return bytes.HasPrefix(sigV1, b) || bytes.HasPrefix(sigV2[:4], b)
}

// RemoteAddr returns the header's source address, or else the connection's.
func (c *Conn) RemoteAddr() net.Addr {
	c.Header()
	if c.remote != nil {
		return c.remote
	}
	return c.Conn.RemoteAddr()
}

// LocalAddr returns the header's destination address, or else the connection's.
func (c *Conn) LocalAddr() net.Addr {
	c.Header()
	if c.local != nil {
		return c.local
	}
	return c.Conn.LocalAddr()
}

// SetDeadline sets the read and write deadlines, as net.Conn's does.
func (c *Conn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.userDeadline = t
	return c.Conn.SetDeadline(t)
}

// SetReadDeadline sets the read deadline, as net.Conn's does. While the header is read
// it is the earlier of this and the header timeout.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.userDeadline = t
	return c.Conn.SetReadDeadline(t)
}

// NetConn returns the accepted connection.
func (c *Conn) NetConn() net.Conn { return c.Conn }

// SyscallConn returns the raw socket of a connection from a trusted source, once the
// header was read (it reads it first), so that code that reads the file descriptor
// directly starts after the header. It fails for a connection from an untrusted source
// (whose first Read must be checked for a header, which reading the descriptor would
// skip), for one that is not a syscall.Conn, and for one whose header was refused.
func (c *Conn) SyscallConn() (syscall.RawConn, error) {
	if !c.trusted {
		return nil, errors.New("proxyproto: a connection from an untrusted source is read through Read")
	}
	if _, err := c.Header(); err != nil {
		return nil, err
	}
	sc, ok := c.Conn.(syscall.Conn)
	if !ok || c.replay {
		return nil, errors.New("proxyproto: connection has no file descriptor")
	}
	return sc.SyscallConn()
}

// WriteTo writes what the connection reads to w, after the header, using the
// connection's own WriteTo (splice on Linux) when it has one.
func (c *Conn) WriteTo(w io.Writer) (int64, error) {
	if _, err := c.Header(); err != nil {
		return 0, err
	}
	if wt, ok := c.Conn.(io.WriterTo); ok && c.trusted && !c.replay {
		// (An untrusted connection's first Read is checked: it goes through Read.)
		return wt.WriteTo(w)
	}
	return io.Copy(w, struct{ io.Reader }{c})
}

// ReadFrom writes what r reads to the connection, using the connection's own ReadFrom
// when it has one.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// CloseWrite shuts down the writing side of a TCP connection.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("proxyproto: connection cannot close its writing side")
}
