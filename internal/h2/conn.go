package h2

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// ClientPreface is the connection preface every HTTP/2 client sends first (RFC 9113
// §3.4). A listener shared with HTTP/1.1 tells an h2c client by it.
const ClientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// lingerTimeout bounds how long a connection we end keeps reading, so that the client
// receives our GOAWAY before our close resets the TCP connection, and how long the
// last writes may take.
const lingerTimeout = time.Second

// yieldFrames is how many frames the read loop handles before it lets other
// goroutines run.
const yieldFrames = 64

// readBufSize is the size of the connection's read buffer.
const readBufSize = 16 << 10

// Handler serves one stream. It runs on a goroutine of its own; when it returns the
// stream is finished: if the response was not ended the stream is reset
// (INTERNAL_ERROR), and if the request body was not read to its end the client is
// told to stop sending it (RST_STREAM(NO_ERROR), RFC 9113 §8.1). The [Stream] must not
// be used after the Handler returns. A panic in the Handler resets the stream and is
// logged; it does not end the connection.
type Handler func(st *Stream)

// Conn is the server side of one HTTP/2 connection. Create it with [NewConn] and run
// it with [Conn.Serve]; [Conn.Shutdown] and [Conn.Close] may be called from any
// goroutine, concurrently with Serve.
type Conn struct {
	// Immutable after NewConn.
	nc       net.Conn
	opts     Options
	optsErr  error
	handler  Handler
	log      *slog.Logger
	pool     *BufPool
	buffered []byte

	// Owned by the read loop (Serve).
	br       *bufio.Reader
	fr       *http2.Framer
	hdec     *hpack.Decoder
	hb       headerBlock
	hpayload []byte // payload of the HEADERS frame being read
	resets   rateCounter
	controls rateCounter
	// useful counts the frames that did work (a DATA frame with data, either way, or a
	// request head) since the last control frame: each excuses one control frame, so
	// that a busy client's PINGs and SETTINGS (gRPC's flow-control probes) are not
	// taken for a flood.
	useful atomic.Int64

	// Guarded by mu. Lock order: mu before wmu.
	mu            sync.Mutex
	streams       map[uint32]*Stream
	maxClientID   uint32 // highest stream the client opened
	sendWin       int64  // connection send window (what we may still send)
	peerInitWin   int64  // the client's SETTINGS_INITIAL_WINDOW_SIZE
	recvConn             // the connection's receive window
	recvInitWin   int64  // stream receive window the client assumes for new streams
	settingsAcked bool
	recentResets  [32]uint32 // streams we reset lately: their late frames are ignored
	recentN       int
	goingAway     bool // GOAWAY sent: streams above goAwayID are ignored
	goAwayID      uint32
	// drainPing is set while a graceful Shutdown waits for the acknowledgement of the
	// PING it sent after its first GOAWAY (see Shutdown).
	drainPing   bool
	shutdown    bool // end once no stream is open (Shutdown, idle, client GOAWAY)
	graceful    bool // the read loop was stopped for a graceful end
	dead        bool
	idleTimer   *time.Timer
	idleArmed   bool
	idleSince   time.Time
	freeStreams []*Stream // finished streams, for reuse
	handlers    int       // handlers running, of open and of reset streams
	idleWorkers int       // handler goroutines waiting on next (see nextStream)
	closedCh    chan struct{}

	// The write side (see write.go).
	frameWriter

	closing   atomic.Bool   // Close was called: no lingering
	hfree     chan struct{} // a handler returned, or Close was called
	serveDone chan struct{}
	hwg       sync.WaitGroup // handler goroutines
	next      chan *Stream   // hands a stream to a waiting handler goroutine, or nil to end it
}

// NewConn returns a connection serving nc with h. buffered holds bytes already read
// from nc (part or all of the client preface, say, when the listener sniffed it); it
// is read before nc and must not be changed afterwards. nc may be a plain connection
// (h2c with prior knowledge) or a TLS connection that negotiated "h2" with ALPN.
// Invalid opts make [Conn.Serve] return an error naming the field.
func NewConn(nc net.Conn, buffered []byte, opts Options, h Handler) *Conn {
	o, err := opts.withDefaults()
	c := &Conn{
		nc:          nc,
		opts:        o,
		optsErr:     err,
		handler:     h,
		log:         o.Logger,
		pool:        o.Pool,
		buffered:    buffered,
		streams:     make(map[uint32]*Stream),
		sendWin:     initialWindow,
		peerInitWin: initialWindow,
		recvConn:    recvConn{recvWin: int64(o.ConnWindowSize)},
		recvInitWin: initialWindow,
		serveDone:   make(chan struct{}),
		closedCh:    make(chan struct{}),
		hfree:       make(chan struct{}, 1),
		next:        make(chan *Stream),
	}
	close(c.closedCh)
	if c.pool == nil {
		c.pool = NewBufPool(0)
	}
	c.initWriter(nc, o.WriteTimeout, o.MaxQueuedControlFrames, false)
	return c
}

// Serve runs the connection until it ends and all its handlers have returned. It
// returns nil when the connection ended cleanly (the client closed it, it was idle
// for Options.IdleTimeout, or Shutdown finished), a [*ConnError] when the client broke
// the protocol or a limit (after sending GOAWAY with its code), and a wrapped I/O error
// otherwise. Serve closes nc. It must be called once.
func (c *Conn) Serve() error {
	defer close(c.serveDone)
	if c.optsErr != nil {
		_ = c.nc.Close()
		return c.optsErr
	}
	var r io.Reader = c.nc
	if len(c.buffered) > 0 {
		r = io.MultiReader(bytes.NewReader(c.buffered), c.nc)
	}
	c.br = bufio.NewReaderSize(r, readBufSize)
	c.fr = http2.NewFramer(io.Discard, c.br)
	c.fr.SetReuseFrames()
	c.fr.SetMaxReadFrameSize(c.opts.MaxFrameSize)
	c.hdec = hpack.NewDecoder(4096, c.onField)
	c.hdec.SetMaxStringLength(int(c.opts.MaxHeaderListSize))
	c.idleTimer = time.AfterFunc(time.Hour, c.onIdle)
	c.idleTimer.Stop()

	go c.writeLoop()
	c.writeSettings()
	return c.teardown(c.readLoop())
}

// readLoop reads and processes frames until the connection ends.
func (c *Conn) readLoop() error {
	if err := c.handshake(); err != nil {
		return err
	}
	c.mu.Lock()
	c.becameIdleLocked()
	c.mu.Unlock()
	for n := 1; ; n++ {
		if n%yieldFrames == 0 {
			// A client that keeps the read loop busy (a flood) must not keep the
			// goroutines of other connections waiting for a processor.
			runtime.Gosched()
		}
		// The Framer reads every frame header (and checks sizes and the order of
		// CONTINUATION frames); HEADERS payloads we read and parse ourselves, which
		// spares an allocation per request.
		fh, err := c.fr.ReadFrameHeader()
		if err != nil {
			return c.readErr(err)
		}
		if fh.Type == http2.FrameHeaders {
			err = c.readHeadersFrame(fh)
		} else {
			var f http2.Frame
			f, err = c.fr.ReadFrameForHeader(fh)
			if err != nil {
				var se http2.StreamError
				if errors.As(err, &se) {
					if err := c.resetFromReadLoop(se.StreamID, se.Code); err != nil {
						return err
					}
					continue
				}
				return c.readErr(err)
			}
			err = c.processFrame(f)
		}
		if err != nil {
			var se *streamError
			if errors.As(err, &se) {
				if err := c.resetFromReadLoop(se.id, se.code); err != nil {
					return err
				}
				continue
			}
			return err
		}
	}
}

// handshake reads the client preface and the first SETTINGS frame (RFC 9113 §3.4).
func (c *Conn) handshake() error {
	if err := c.nc.SetReadDeadline(time.Now().Add(c.opts.HandshakeTimeout)); err != nil {
		return fmt.Errorf("h2: handshake: %w", err)
	}
	var p [len(ClientPreface)]byte
	if _, err := io.ReadFull(c.br, p[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			if string(p[:]) != ClientPreface[:len(p)] {
				return connErr(http2.ErrCodeProtocol, "invalid connection preface")
			}
		}
		return fmt.Errorf("h2: reading client preface: %w", err)
	}
	if string(p[:]) != ClientPreface {
		return connErr(http2.ErrCodeProtocol, "invalid connection preface")
	}
	f, err := c.fr.ReadFrame()
	if err != nil {
		return c.readErr(err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		return connErr(http2.ErrCodeProtocol, "first frame is not SETTINGS")
	}
	if err := c.onSettings(sf); err != nil {
		return err
	}
	if err := c.nc.SetReadDeadline(time.Time{}); err != nil {
		return fmt.Errorf("h2: handshake: %w", err)
	}
	return nil
}

// readErr maps an error of the Framer to what ends the connection.
func (c *Conn) readErr(err error) error {
	var ce http2.ConnectionError
	switch {
	case errors.Is(err, http2.ErrFrameTooLarge):
		return connErr(http2.ErrCodeFrameSize, "frame larger than SETTINGS_MAX_FRAME_SIZE")
	case errors.As(err, &ce):
		c.log.Debug("h2: invalid frame", "remote", c.nc.RemoteAddr().String(), "detail", fmt.Sprint(c.fr.ErrorDetail()))
		return connErr(http2.ErrCode(ce), "invalid frame")
	case errors.Is(err, io.EOF):
		return io.EOF
	}
	return fmt.Errorf("h2: read: %w", err)
}

// teardown ends the connection after the read loop stopped with err, and returns what
// Serve returns.
func (c *Conn) teardown(err error) error {
	c.wmu.Lock()
	werr := c.werr
	c.wmu.Unlock()
	if errors.Is(werr, errQueueFull) {
		err = connErr(http2.ErrCodeEnhanceYourCalm, "too many queued control frames")
	}
	var ce *ConnError
	linger := false
	c.mu.Lock()
	graceful := c.graceful
	last := c.maxClientID
	c.mu.Unlock()
	switch {
	case errors.As(err, &ce):
		c.log.Debug("h2: connection error", "remote", c.nc.RemoteAddr().String(), "code", ce.Code.String(), "reason", ce.Reason)
		c.writeGoAway(last, ce.Code, ce.Reason)
		linger = true
	case graceful:
		err, linger = nil, true
	case errors.Is(err, io.EOF), c.closing.Load():
		err = nil
	}

	c.mu.Lock()
	c.dead = true
	c.idleTimer.Stop()
	for _, st := range c.streams {
		c.closeStreamLocked(st, ErrConnClosed)
	}
	idle := c.idleWorkers
	c.idleWorkers = 0
	c.mu.Unlock()
	for range idle {
		c.next <- nil
	}

	c.wmu.Lock()
	c.wstop = true
	c.kickWriter()
	c.wmu.Unlock()
	<-c.wdone
	if linger && !c.closing.Load() {
		c.linger()
	}
	_ = c.nc.Close()
	c.hwg.Wait()
	return err
}

// linger half-closes the connection and reads what the client still sends for a
// moment, so that closing does not reset the TCP connection before the client has
// read our last frames.
func (c *Conn) linger() {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	if c.nc.SetReadDeadline(time.Now().Add(lingerTimeout)) == nil {
		_, _ = io.CopyN(io.Discard, c.br, 1<<20)
	}
}

// maxStreamID is the highest stream id (RFC 9113 §5.1.1).
const maxStreamID = 1<<31 - 1

// drainPingData is the payload of the PING a graceful Shutdown sends.
var drainPingData = [8]byte{'g', 'o', 'a', 'w', 'a', 'y', '0', '1'}

// drainPingWait bounds how long Shutdown waits for the acknowledgement of its PING
// before it sends the final GOAWAY anyway.
const drainPingWait = time.Second

// Shutdown ends the connection gracefully, in two steps as RFC 9113 §6.8 advises: a
// first GOAWAY with the highest stream id and a PING tell the client to open no more
// streams while the server still takes the ones already on their way; once the PING is
// acknowledged (one round trip, at most drainPingWait), the final GOAWAY names the last
// stream the client opened. The streams in flight finish, then the connection closes.
// If ctx ends first it closes the connection at once and returns ctx.Err(). It returns
// when Serve has returned (or ctx ended).
func (c *Conn) Shutdown(ctx context.Context) error {
	c.mu.Lock()
	twoStep := !c.goingAway && !c.shutdown && !c.drainPing && !c.dead
	c.drainPing = c.drainPing || twoStep
	c.mu.Unlock()
	if twoStep {
		c.writeGoAway(maxStreamID, http2.ErrCodeNo, "")
		if err := c.writePing(drainPingData); err == nil {
			t := time.AfterFunc(drainPingWait, c.finishShutdown)
			defer t.Stop()
		} else {
			c.finishShutdown()
		}
	} else {
		c.finishShutdown()
	}
	select {
	case <-c.serveDone:
		return nil
	case <-ctx.Done():
		_ = c.Close()
		return fmt.Errorf("h2: shutdown: %w", ctx.Err())
	}
}

// finishShutdown sends the final GOAWAY of a graceful Shutdown, with the last stream the
// client opened, and ends the connection once no stream is left.
func (c *Conn) finishShutdown() {
	c.mu.Lock()
	c.drainPing = false
	if !c.goingAway {
		c.goingAway, c.goAwayID = true, c.maxClientID
	}
	last := c.goAwayID
	c.shutdown = true
	if len(c.streams) == 0 {
		c.endGracefullyLocked()
	}
	c.mu.Unlock()
	c.writeGoAway(last, http2.ErrCodeNo, "")
}

// onPingAck ends the first step of a graceful Shutdown when its PING comes back.
func (c *Conn) onPingAck(data [8]byte) {
	c.mu.Lock()
	waiting := c.drainPing && data == drainPingData
	c.mu.Unlock()
	if waiting {
		c.finishShutdown()
	}
}

// Close closes the connection at once; streams in flight fail with [ErrConnClosed].
// Serve returns once their handlers have returned.
func (c *Conn) Close() error {
	c.closing.Store(true)
	poke(c.hfree)
	if err := c.nc.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("h2: close: %w", err)
	}
	return nil
}

// endGracefullyLocked stops the read loop for a graceful end. c.mu is held.
func (c *Conn) endGracefullyLocked() {
	if c.dead || c.graceful {
		return
	}
	c.graceful = true
	_ = c.nc.SetReadDeadline(time.Unix(1, 0))
}

// becameIdleLocked is called when the last open stream closes. c.mu is held.
func (c *Conn) becameIdleLocked() {
	if c.shutdown {
		c.endGracefullyLocked()
		return
	}
	if c.opts.IdleTimeout <= 0 || c.dead {
		return
	}
	c.idleSince = time.Now()
	if !c.idleArmed {
		c.idleArmed = true
		c.idleTimer.Reset(c.opts.IdleTimeout)
	}
}

// onIdle runs when the idle timer fires.
func (c *Conn) onIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.idleArmed = false
	if c.dead || len(c.streams) > 0 {
		return
	}
	if rem := c.opts.IdleTimeout - time.Since(c.idleSince); rem > 0 {
		c.idleArmed = true
		c.idleTimer.Reset(rem)
		return
	}
	if !c.goingAway {
		c.goingAway, c.goAwayID = true, c.maxClientID
	}
	c.shutdown = true
	c.writeGoAway(c.goAwayID, http2.ErrCodeNo, "")
	c.endGracefullyLocked()
}

// rateCounter counts events in fixed windows.
type rateCounter struct {
	start time.Time
	n     int
}

// excuse forgets up to n events.
func (r *rateCounter) excuse(n int64) {
	r.n -= int(min(n, int64(r.n)))
}

// add counts one event and reports whether the count stays within limit.
func (r *rateCounter) add(window time.Duration, limit int) bool {
	if r.n == 0 {
		r.start = time.Now() // the window starts with its first event
	}
	r.n++
	if r.n <= limit {
		return true
	}
	now := time.Now()
	if now.Sub(r.start) > window {
		r.start, r.n = now, 1
		return true
	}
	return false
}
