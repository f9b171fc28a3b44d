package h2

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The client side of an HTTP/2 connection (RFC 9113), for the proxy's requests to its
// peers: streams multiplexed up to the peer's SETTINGS_MAX_CONCURRENT_STREAMS, the
// frame writer of the server side (frameWriter), and a read loop that hands each
// stream its response. See ClientConn.

// Defaults for the zero fields of [ClientOptions].
const (
	DefaultClientStreamWindow    = 1 << 20 // ClientOptions.StreamWindowSize
	DefaultClientConnWindow      = 4 << 20 // ClientOptions.ConnWindowSize
	DefaultClientMaxStreams      = 1000    // ClientOptions.MaxConcurrentStreams
	defaultClientHandshakeWindow = 10 * time.Second
	// idleRelease is how long a connection without streams waits before its read
	// loop gives its buffer back.
	idleRelease = 50 * time.Millisecond
)

var (
	// ErrNoStream is returned by [ClientConn.NewStream] when the connection has as many
	// streams open as the peer allows (or as [ClientOptions.MaxConcurrentStreams]):
	// the caller opens another connection, or tries again later. NewStream never waits
	// for a stream.
	ErrNoStream = errors.New("h2: no stream available on the connection")

	// ErrUnprocessed is wrapped by the errors of streams the peer did not process: those
	// above the last stream id of its GOAWAY, those it refused (REFUSED_STREAM, RFC 9113
	// §8.7), and requests refused because the connection was going away or closed
	// before they were sent. Such a request may be sent again, on another connection,
	// whatever its method.
	ErrUnprocessed = errors.New("h2: request not processed by the peer")

	// ErrCanceled is returned by the methods of a [ClientStream] after
	// [ClientStream.Cancel].
	ErrCanceled = errors.New("h2: stream canceled")

	// ErrInvalidPeerResponse is wrapped by the error of a stream whose response head or
	// trailers broke RFC 9113 §8.3.2 (no valid :status, a request pseudo-header,
	// trailers without END_STREAM) or exceeded [ClientOptions.MaxHeaderListSize]. The
	// stream was reset.
	ErrInvalidPeerResponse = errors.New("h2: invalid response from the peer")
)

// ClientOptions configures a [ClientConn]. The zero value is usable: every zero field
// means the default named in its comment.
type ClientOptions struct {
	// Pool provides the connection's read and write buffers, taken while streams are
	// open and given back when none is. If nil, a pool of the connection's own.
	Pool *BufPool
	// MaxHeaderListSize is the SETTINGS_MAX_HEADER_LIST_SIZE we advertise and enforce
	// on response heads and trailers, measured as RFC 9113 §6.5.2 says. If zero,
	// [DefaultMaxHeaderListSize].
	MaxHeaderListSize uint32
	// StreamWindowSize is the receive window of each stream (our
	// SETTINGS_INITIAL_WINDOW_SIZE): how much of a response body the peer may send
	// before it is read. If zero, [DefaultClientStreamWindow].
	StreamWindowSize uint32
	// ConnWindowSize is the receive window of the connection, at least
	// StreamWindowSize: it bounds the response bytes buffered for all streams. If
	// zero, [DefaultClientConnWindow] (or StreamWindowSize, if larger).
	ConnWindowSize uint32
	// MaxConcurrentStreams caps the streams open at once, below the peer's own
	// SETTINGS_MAX_CONCURRENT_STREAMS. If zero, [DefaultClientMaxStreams].
	MaxConcurrentStreams uint32
	// WriteTimeout bounds each write to the socket. If zero, [DefaultWriteTimeout].
	WriteTimeout time.Duration
	// MaxQueuedControlFrames bounds the control frames (SETTINGS and PING
	// acknowledgements, WINDOW_UPDATE, RST_STREAM) queued for a peer that does not
	// read: beyond it the connection ends. If zero, [DefaultMaxQueuedControlFrames].
	MaxQueuedControlFrames int
}

func (o ClientOptions) withDefaults() (ClientOptions, error) {
	if o.MaxHeaderListSize == 0 {
		o.MaxHeaderListSize = DefaultMaxHeaderListSize
	}
	if o.StreamWindowSize == 0 {
		o.StreamWindowSize = DefaultClientStreamWindow
	}
	if o.ConnWindowSize == 0 {
		o.ConnWindowSize = max(DefaultClientConnWindow, o.StreamWindowSize)
	}
	if o.MaxConcurrentStreams == 0 {
		o.MaxConcurrentStreams = DefaultClientMaxStreams
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.MaxQueuedControlFrames == 0 {
		o.MaxQueuedControlFrames = DefaultMaxQueuedControlFrames
	}
	switch {
	case o.StreamWindowSize > maxWindow:
		return o, errors.New("h2: ClientOptions.StreamWindowSize over 2^31-1")
	case o.ConnWindowSize > maxWindow || o.ConnWindowSize < o.StreamWindowSize:
		return o, errors.New("h2: ClientOptions.ConnWindowSize out of StreamWindowSize..2^31-1")
	case o.WriteTimeout < 0:
		return o, errors.New("h2: ClientOptions.WriteTimeout negative")
	case o.MaxQueuedControlFrames < 0:
		return o, errors.New("h2: ClientOptions.MaxQueuedControlFrames negative")
	}
	if o.Pool == nil {
		o.Pool = NewBufPool(0)
	}
	return o, nil
}

// ClientConn is the client side of one HTTP/2 connection, multiplexed: any number of
// goroutines open streams on it ([ClientConn.NewStream]) up to the peer's limit. It is
// safe for concurrent use. Create it with [NewClientConn]; it ends when the peer closes
// it or breaks the protocol, on a write failure, after a GOAWAY once its last stream
// ends, or on [ClientConn.Close].
//
// One goroutine reads frames and hands them to the streams; it never waits for a
// stream's reader. One goroutine writes (the server side's writer: frames queued by all
// streams go out in one system call). A response body is buffered up to the stream's
// window in buffers of the pool; WINDOW_UPDATE credit goes back as the caller reads it,
// in batches of half a window, so a slow reader holds the peer back.
type ClientConn struct {
	// Immutable after NewClientConn.
	nc   net.Conn
	opts ClientOptions
	pool *BufPool

	// Owned by the read loop.
	rd       connReader
	fr       *http2.Framer
	hdec     *hpack.Decoder
	hb       clientBlock
	hpayload []byte // payload of a small HEADERS frame (see readHeadersPayload)

	open      atomic.Int32 // streams open; the writer and reader check it for idleness
	idleTimer *time.Timer  // wakes the read loop of an idle connection (onIdle)
	readDone  chan struct{}
	closeOnce sync.Once

	// Guarded by mu. Lock order: mu before wmu.
	mu          sync.Mutex
	streams     map[uint32]*ClientStream
	nextID      uint32
	maxStreams  uint32 // min(peer's SETTINGS_MAX_CONCURRENT_STREAMS, ours)
	sendWin     int64  // connection send window
	peerInitWin int64  // the peer's SETTINGS_INITIAL_WINDOW_SIZE
	recvConn           // the connection's receive window
	goAway      bool   // GOAWAY received (or sent): no new streams
	goAwayID    uint32
	goAwayCode  http2.ErrCode
	err         error // the connection ended
	idleSince   time.Time
	pingAck     time.Time // when a PING of Ping's was last acknowledged
	pings       map[[8]byte]chan struct{}
	pingSeq     uint64
	free        []*ClientStream // closed streams kept for reuse, at most maxFreeClientStreams

	// The write side (see write.go).
	frameWriter
}

// NewClientConn starts the client side of an HTTP/2 connection on nc: a connection
// just opened (h2c with prior knowledge) or a TLS connection that negotiated "h2". It
// sends the preface and our SETTINGS, reads the peer's SETTINGS (waiting until ctx
// ends, at most 10s), acknowledges them, and starts the connection's goroutines. On an
// error nc is closed.
func NewClientConn(ctx context.Context, nc net.Conn, opts ClientOptions) (*ClientConn, error) {
	o, err := opts.withDefaults()
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	cc := &ClientConn{
		nc:          nc,
		opts:        o,
		pool:        o.Pool,
		readDone:    make(chan struct{}),
		streams:     make(map[uint32]*ClientStream),
		nextID:      1,
		maxStreams:  o.MaxConcurrentStreams,
		sendWin:     initialWindow,
		peerInitWin: initialWindow,
		recvConn:    recvConn{recvWin: int64(o.ConnWindowSize)},
		idleSince:   time.Now(),
	}
	idle := func() bool { return cc.open.Load() == 0 }
	cc.initWriter(nc, o.WriteTimeout, o.MaxQueuedControlFrames, true)
	cc.rd = connReader{nc: nc, pool: o.Pool, idle: idle}
	cc.idleTimer = time.AfterFunc(time.Hour, cc.onIdle)
	cc.idleTimer.Stop()
	cc.fr = http2.NewFramer(io.Discard, &cc.rd)
	cc.fr.SetReuseFrames()
	cc.fr.SetMaxReadFrameSize(minMaxFrameSize)
	cc.hdec = hpack.NewDecoder(4096, cc.onField)
	cc.hdec.SetMaxStringLength(int(o.MaxHeaderListSize))

	if err := cc.handshake(ctx); err != nil {
		_ = nc.Close()
		return nil, err
	}
	go cc.writeLoop()
	cc.kickWriter()
	go cc.readLoop()
	return cc, nil
}

// handshake queues the preface and our settings, writes them, and reads the peer's
// first SETTINGS.
func (cc *ClientConn) handshake(ctx context.Context) error {
	dl := time.Now().Add(defaultClientHandshakeWindow)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	stop := context.AfterFunc(ctx, func() { _ = cc.nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := cc.nc.SetDeadline(dl); err != nil {
		return fmt.Errorf("h2: handshake: %w", err)
	}
	b := append([]byte(ClientPreface), 0, 0, 0, 0, 0, 0, 0, 0, 0)[:len(ClientPreface)]
	b = appendFrameHeader(b, 6*4, http2.FrameSettings, 0, 0)
	for _, s := range [...]http2.Setting{
		{ID: http2.SettingEnablePush, Val: 0},
		{ID: http2.SettingInitialWindowSize, Val: cc.opts.StreamWindowSize},
		{ID: http2.SettingMaxHeaderListSize, Val: cc.opts.MaxHeaderListSize},
		{ID: http2.SettingMaxFrameSize, Val: minMaxFrameSize},
	} {
		b = binary.BigEndian.AppendUint16(b, uint16(s.ID))
		b = binary.BigEndian.AppendUint32(b, s.Val)
	}
	if inc := int64(cc.opts.ConnWindowSize) - initialWindow; inc > 0 {
		b = appendFrameHeader(b, 4, http2.FrameWindowUpdate, 0, 0)
		b = binary.BigEndian.AppendUint32(b, uint32(inc))
	}
	if _, err := cc.nc.Write(b); err != nil {
		return cc.ctxErr(ctx, fmt.Errorf("h2: writing the preface: %w", err))
	}
	f, err := cc.fr.ReadFrame()
	if err != nil {
		return cc.ctxErr(ctx, fmt.Errorf("h2: reading the peer's SETTINGS: %w", err))
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		return fmt.Errorf("h2: the peer began with %v, not SETTINGS", f.Header().Type)
	}
	if err := cc.onSettings(sf); err != nil {
		return err
	}
	if !stop() {
		return ctx.Err()
	}
	if err := cc.nc.SetDeadline(time.Time{}); err != nil {
		return fmt.Errorf("h2: handshake: %w", err)
	}
	return nil
}

func (cc *ClientConn) ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("h2: handshake: %w", ctx.Err())
	}
	return err
}

// ClientRequest is the head of a request sent with [ClientConn.NewStream].
type ClientRequest struct {
	Method, Scheme, Authority, Path string
	// Fields are the regular fields: lowercase names, none connection-specific (the
	// caller's duty: they are sent as they are).
	Fields []Field
	// EndStream sends the head with END_STREAM: the request has no body.
	EndStream bool
}

// CanTakeRequest reports whether a new stream may be opened now: the connection is
// alive, not going away, and below its stream limit.
func (cc *ClientConn) CanTakeRequest() bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.canTakeLocked()
}

func (cc *ClientConn) canTakeLocked() bool {
	return cc.err == nil && !cc.goAway && uint32(len(cc.streams)) < cc.maxStreams && cc.nextID <= maxStreamID
}

// Streams returns the number of streams open.
func (cc *ClientConn) Streams() int { return int(cc.open.Load()) }

// Quiet returns, if no stream is open and the connection may take one, when it last
// showed it was alive: when its last stream ended, or when a PING of [ClientConn.Ping]
// was acknowledged since, whichever is later; since is when its last stream ended (or
// it was made); and true. Otherwise it returns false.
func (cc *ClientConn) Quiet() (since, alive time.Time, idle bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if len(cc.streams) > 0 || cc.err != nil || cc.goAway {
		return time.Time{}, time.Time{}, false
	}
	alive = cc.idleSince
	if cc.pingAck.After(alive) {
		alive = cc.pingAck
	}
	return cc.idleSince, alive, true
}

// Done returns a channel closed when the connection has ended.
func (cc *ClientConn) Done() <-chan struct{} { return cc.readDone }

// Err returns why the connection ended, or nil while it is alive.
func (cc *ClientConn) Err() error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.err
}

// NewStream opens a stream and queues the request head. It never waits for a stream:
// at the stream limit it returns [ErrNoStream]; on a connection going away or closed,
// an error wrapping [ErrUnprocessed]. The caller must Close the stream.
func (cc *ClientConn) NewStream(req *ClientRequest) (*ClientStream, error) {
	// Wait for room in the write buffer first (without c.mu, which the read loop
	// needs); the head is queued below without waiting.
	cc.wmu.Lock()
	for len(cc.wdata) >= maxStreamBuffered && cc.werr == nil {
		cc.wcond.Wait()
	}
	cc.wmu.Unlock()

	cc.mu.Lock()
	if !cc.canTakeLocked() {
		err := ErrNoStream
		switch {
		case cc.err != nil:
			err = fmt.Errorf("%w: %w", ErrUnprocessed, cc.err)
		case cc.goAway || cc.nextID > maxStreamID:
			err = fmt.Errorf("%w: the connection is going away", ErrUnprocessed)
		}
		cc.mu.Unlock()
		return nil, err
	}
	st := cc.newStreamLocked()
	cc.streams[st.id] = st
	cc.open.Add(1)

	// Under both locks: stream ids go out in the order they were given (RFC 9113
	// §5.1.1), and the HPACK encoder's state follows the order of the blocks.
	cc.wmu.Lock()
	st.rstSent = false // (a reused stream's)
	if cc.werr != nil {
		err := cc.werr
		cc.wmu.Unlock()
		cc.closeStreamLocked(st, err)
		cc.mu.Unlock()
		st.Close()
		return nil, fmt.Errorf("%w: %w", ErrUnprocessed, err)
	}
	cc.hbuf.Reset()
	e := cc.henc
	_ = e.WriteField(hpack.HeaderField{Name: ":method", Value: req.Method})
	if req.Method != "CONNECT" {
		_ = e.WriteField(hpack.HeaderField{Name: ":scheme", Value: req.Scheme})
		_ = e.WriteField(hpack.HeaderField{Name: ":path", Value: req.Path})
	}
	_ = e.WriteField(hpack.HeaderField{Name: ":authority", Value: req.Authority})
	for _, f := range req.Fields {
		_ = e.WriteField(hpack.HeaderField{Name: f.Name, Value: f.Value, Sensitive: sensitiveField(f.Name)})
	}
	cc.queueHeaderBlockLocked(st.id, req.EndStream)
	cc.wmu.Unlock()
	if req.EndStream {
		st.localDone = true
	}
	cc.mu.Unlock()
	return st, nil
}

// sensitiveField tells the fields that must not enter the HPACK table (RFC 7541 §7.1.3).
func sensitiveField(name string) bool {
	return name == "authorization" || name == "proxy-authorization"
}

// Ping sends a PING and waits for its acknowledgement, or until ctx ends: a liveness
// check of an idle connection.
func (cc *ClientConn) Ping(ctx context.Context) error {
	cc.mu.Lock()
	if cc.err != nil {
		err := cc.err
		cc.mu.Unlock()
		return err
	}
	cc.pingSeq++
	var data [8]byte
	binary.BigEndian.PutUint64(data[:], cc.pingSeq)
	ch := make(chan struct{})
	if cc.pings == nil {
		cc.pings = make(map[[8]byte]chan struct{})
	}
	cc.pings[data] = ch
	cc.mu.Unlock()
	defer func() {
		cc.mu.Lock()
		delete(cc.pings, data)
		cc.mu.Unlock()
	}()
	if err := cc.writePing(data); err != nil {
		return fmt.Errorf("h2: ping: %w", err)
	}
	select {
	case <-ch:
		return nil
	case <-cc.readDone:
		return fmt.Errorf("h2: ping: %w", cc.Err())
	case <-ctx.Done():
		return fmt.Errorf("h2: ping: %w", ctx.Err())
	}
}

// Close ends the connection at once: a GOAWAY goes to the peer if it can, and the
// streams still open fail with [ErrConnClosed]. It returns once the connection's
// goroutines have ended.
func (cc *ClientConn) Close() error {
	cc.mu.Lock()
	cc.goAway = true
	cc.mu.Unlock()
	cc.writeGoAway(0, http2.ErrCodeNo, "") // (0: we accept no stream of the peer's)
	cc.shut()
	<-cc.readDone
	return nil
}

// shut stops the writer once what is queued went out (at most lingerTimeout) and
// closes the socket, which ends the read loop.
func (cc *ClientConn) shut() {
	cc.closeOnce.Do(func() {
		cc.wmu.Lock()
		cc.wstop = true
		cc.kickWriter()
		cc.wmu.Unlock()
		t := time.AfterFunc(lingerTimeout, func() { _ = cc.nc.Close() })
		<-cc.wdone
		t.Stop()
		_ = cc.nc.Close()
	})
}

// readLoop reads frames until the connection ends, then fails the streams left.
func (cc *ClientConn) readLoop() {
	err := cc.readFrames()
	var ce *ConnError
	if errors.As(err, &ce) {
		cc.writeGoAway(0, ce.Code, ce.Reason)
	}
	cc.mu.Lock()
	if cc.err == nil {
		if err == nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
			cc.err = ErrConnClosed
		} else {
			cc.err = fmt.Errorf("%w: %w", ErrConnClosed, err)
		}
	}
	for _, st := range cc.streams {
		cc.closeStreamLocked(st, cc.err)
	}
	for _, ch := range cc.pings {
		close(ch)
	}
	cc.pings, cc.free = nil, nil
	cc.mu.Unlock()
	cc.idleTimer.Stop()
	cc.shut()
	cc.rd.release()
	close(cc.readDone)
}

// onIdle wakes the read loop and the writer of a connection still idle, so that they
// give their buffers back (see connReader and frameWriter.wlazy).
func (cc *ClientConn) onIdle() {
	if cc.open.Load() != 0 {
		return
	}
	if cc.rd.holding.Load() {
		cc.rd.poke()
	}
	cc.wmu.Lock()
	cc.wrelease = true
	cc.kickWriter() // (its wait drops its buffers)
	cc.wmu.Unlock()
}

func (cc *ClientConn) readFrames() error {
	for {
		// The Framer reads every frame header (and checks sizes and the order of
		// CONTINUATION frames); HEADERS payloads we read and parse ourselves, which
		// spares an allocation per response, as on the server side.
		fh, err := cc.fr.ReadFrameHeader()
		var f http2.Frame
		var payload []byte
		switch {
		case err != nil:
		case fh.Type == http2.FrameHeaders:
			payload, err = cc.readHeadersPayload(fh)
		default:
			f, err = cc.fr.ReadFrameForHeader(fh)
		}
		if err != nil {
			cc.putHeadersPayload(payload)
			cc.mu.Lock()
			done := cc.goAway && len(cc.streams) == 0
			cc.mu.Unlock()
			if done {
				return nil // going away, and every stream is done
			}
			var se http2.StreamError
			if errors.As(err, &se) {
				cc.resetStream(se.StreamID, se.Code, fmt.Errorf("%w: %w", ErrInvalidPeerResponse, err))
				continue
			}
			var ce http2.ConnectionError
			switch {
			case errors.As(err, &ce):
				return connErr(http2.ErrCode(ce), "invalid frame")
			case errors.Is(err, http2.ErrFrameTooLarge):
				return connErr(http2.ErrCodeFrameSize, "frame larger than SETTINGS_MAX_FRAME_SIZE")
			}
			return err
		}
		if f == nil {
			err = cc.onHeadersPayload(fh, payload)
			cc.putHeadersPayload(payload)
		} else {
			err = cc.processFrame(f)
		}
		if err != nil {
			return err
		}
		cc.mu.Lock()
		end := cc.goAway && len(cc.streams) == 0
		cc.mu.Unlock()
		if end {
			return nil // the peer went away and every stream it took is done
		}
	}
}

// maxKeptHeaders bounds the buffer a connection keeps for HEADERS payloads; a larger
// payload is read into a buffer of the pool, given back once handled.
const maxKeptHeaders = 1 << 10

// readHeadersPayload reads the payload of a HEADERS frame (the Framer's own parse
// allocates a frame each time): into a buffer of the read loop's if it is small, else
// into one of the pool (see putHeadersPayload).
func (cc *ClientConn) readHeadersPayload(fh http2.FrameHeader) ([]byte, error) {
	n := int(fh.Length)
	var p []byte
	switch {
	case n <= maxKeptHeaders:
		if cc.hpayload == nil {
			cc.hpayload = make([]byte, maxKeptHeaders)
		}
		p = cc.hpayload[:n]
	case n <= cc.pool.Size():
		p = cc.pool.Get()[:n]
	default:
		p = make([]byte, n)
	}
	_, err := io.ReadFull(&cc.rd, p)
	return p, err
}

// putHeadersPayload gives back the pool's buffer that readHeadersPayload used, if it
// did.
func (cc *ClientConn) putHeadersPayload(p []byte) {
	if len(p) > maxKeptHeaders {
		cc.pool.Put(p[:cap(p)])
	}
}

// onHeadersPayload parses the HEADERS frame (RFC 9113 §6.2) whose payload
// readHeadersPayload read, and handles it.
func (cc *ClientConn) onHeadersPayload(fh http2.FrameHeader, p []byte) error {
	frag, _, err := headersFragment(fh, p)
	if err != nil {
		return err
	}
	return cc.onHeaders(fh.StreamID, fh.Flags.Has(http2.FlagHeadersEndStream),
		fh.Flags.Has(http2.FlagHeadersEndHeaders), frag)
}

func (cc *ClientConn) processFrame(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.DataFrame:
		return cc.onData(f)
	case *http2.ContinuationFrame:
		return cc.headerFragment(f.HeaderBlockFragment(), f.HeadersEnded())
	case *http2.SettingsFrame:
		if f.IsAck() {
			return nil
		}
		return cc.onSettings(f)
	case *http2.PingFrame:
		if f.IsAck() {
			cc.mu.Lock()
			if ch, ok := cc.pings[f.Data]; ok {
				delete(cc.pings, f.Data)
				cc.pingAck = time.Now()
				close(ch)
			}
			cc.mu.Unlock()
			return nil
		}
		return cc.writePingAck(f.Data)
	case *http2.WindowUpdateFrame:
		return cc.onWindowUpdate(f)
	case *http2.RSTStreamFrame:
		cc.mu.Lock()
		if st := cc.streams[f.StreamID]; st != nil {
			err := error(&ResetError{Code: f.ErrCode, Remote: true})
			switch {
			case f.ErrCode == http2.ErrCodeRefusedStream:
				err = fmt.Errorf("%w: %w", ErrUnprocessed, err)
			case st.remoteDone:
				// The response is complete and the peer wants no more of the request
				// (RFC 9113 §8.1, NO_ERROR; or a server that cancels the rest): the
				// response stands, writes end.
				err = nil
				st.localDone = true
			}
			cc.closeStreamLocked(st, err)
			cc.wmu.Lock()
			st.rstSent = true // no frame may follow the peer's RST_STREAM
			cc.wcond.Broadcast()
			cc.wmu.Unlock()
		} else if f.StreamID >= cc.nextID {
			cc.mu.Unlock()
			return connErr(http2.ErrCodeProtocol, "RST_STREAM on an idle stream")
		}
		cc.mu.Unlock()
	case *http2.GoAwayFrame:
		cc.onGoAway(f)
	case *http2.PushPromiseFrame:
		return connErr(http2.ErrCodeProtocol, "PUSH_PROMISE though we disabled push")
	}
	return nil // PRIORITY and unknown frame types are ignored (RFC 9113 §5.5)
}

// onGoAway fails the streams the peer will not process, with an error that says so, and
// lets the others finish.
func (cc *ClientConn) onGoAway(f *http2.GoAwayFrame) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if !cc.goAway || f.LastStreamID < cc.goAwayID {
		cc.goAwayID = f.LastStreamID
	}
	cc.goAway, cc.goAwayCode = true, f.ErrCode
	for id, st := range cc.streams {
		if id > f.LastStreamID {
			cc.closeStreamLocked(st, fmt.Errorf("%w: GOAWAY (%v) with last stream %d", ErrUnprocessed, f.ErrCode, f.LastStreamID))
		}
	}
}

func (cc *ClientConn) onSettings(f *http2.SettingsFrame) error {
	for i := range f.NumSettings() {
		s := f.Setting(i)
		if verr := s.Valid(); verr != nil {
			if ce, ok := verr.(http2.ConnectionError); ok {
				return connErr(http2.ErrCode(ce), "invalid SETTINGS value")
			}
			return connErr(http2.ErrCodeProtocol, "invalid SETTINGS value")
		}
		switch s.ID {
		case http2.SettingInitialWindowSize:
			cc.mu.Lock()
			err := setInitialLocked(&cc.peerInitWin, int64(s.Val), cc.streams)
			cc.mu.Unlock()
			if err != nil {
				return err
			}
		case http2.SettingMaxFrameSize:
			cc.wmu.Lock()
			cc.wpeerMaxFrame = s.Val
			cc.wmu.Unlock()
		case http2.SettingHeaderTableSize:
			cc.wmu.Lock()
			cc.henc.SetMaxDynamicTableSizeLimit(min(s.Val, 64<<10))
			cc.wmu.Unlock()
		case http2.SettingMaxConcurrentStreams:
			cc.mu.Lock()
			cc.maxStreams = min(s.Val, cc.opts.MaxConcurrentStreams)
			cc.mu.Unlock()
		}
	}
	return cc.writeSettingsAck()
}

func (cc *ClientConn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	inc := int64(f.Increment)
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if f.StreamID == 0 {
		return growConnLocked(&cc.sendWin, inc, cc.streams)
	}
	st := cc.streams[f.StreamID]
	if st == nil {
		if f.StreamID >= cc.nextID {
			return connErr(http2.ErrCodeProtocol, "WINDOW_UPDATE on an idle stream")
		}
		return nil // closed: the peer may not know yet
	}
	if !st.growLocked(inc) {
		cc.mu.Unlock()
		cc.resetStream(f.StreamID, http2.ErrCodeFlowControl, fmt.Errorf("%w: stream window over 2^31-1", ErrInvalidPeerResponse))
		cc.mu.Lock()
	}
	return nil
}

func (cc *ClientConn) onData(f *http2.DataFrame) error {
	id := f.StreamID
	n := int64(f.Length) // flow control counts padding too (RFC 9113 §6.9)
	data := f.Data()
	cc.mu.Lock()
	if id >= cc.nextID {
		cc.mu.Unlock()
		return connErr(http2.ErrCodeProtocol, "DATA on an idle stream")
	}
	if !cc.receiveLocked(n) {
		cc.mu.Unlock()
		return connErr(http2.ErrCodeFlowControl, "connection flow-control window exceeded")
	}
	st := cc.streams[id]
	if st == nil || st.eof || !st.headDone {
		err := cc.creditConnLocked(n)
		cc.mu.Unlock()
		if err != nil {
			return err
		}
		if st != nil { // DATA before the head, or after END_STREAM
			cc.resetStream(id, http2.ErrCodeProtocol, fmt.Errorf("%w: DATA out of place", ErrInvalidPeerResponse))
		}
		return nil // a stream we reset or ended: its late frames are dropped
	}
	pad, ok := st.receiveLocked(n, len(data))
	if !ok {
		cc.mu.Unlock()
		cc.resetStream(id, http2.ErrCodeFlowControl, fmt.Errorf("%w: stream flow-control window exceeded", ErrInvalidPeerResponse))
		return nil
	}
	if pad > 0 {
		if err := cc.creditConnLocked(pad); err != nil {
			cc.mu.Unlock()
			return err
		}
	}
	st.appendLocked(data, cc.pool)
	if f.StreamEnded() {
		st.eof = true
		cc.remoteDoneLocked(st)
	}
	poke(st.rwake)
	cc.mu.Unlock()
	return nil
}

// creditConnLocked returns n bytes of connection window to the peer once half the
// window was consumed. cc.mu is held.
func (cc *ClientConn) creditConnLocked(n int64) error {
	if give := cc.recvConn.creditLocked(n, int64(cc.opts.ConnWindowSize)/2); give > 0 {
		return cc.writeWindowUpdate(0, give)
	}
	return nil
}

// resetStream resets stream id with code and fails it with err (read loop side). The
// RST_STREAM is queued under cc.mu: the stream, once out of the table, may be closed
// and reused by its owner, which cc.mu holds off until it is marked.
func (cc *ClientConn) resetStream(id uint32, code http2.ErrCode, err error) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	st := cc.streams[id]
	if st != nil {
		cc.closeStreamLocked(st, err)
	}
	_ = cc.writeRSTStream(id, st, code)
}

// writeRSTStream queues RST_STREAM(code) for stream id after its queued frames; st, if
// not nil, sends no frame after it.
func (cc *ClientConn) writeRSTStream(id uint32, st *ClientStream, code http2.ErrCode) error {
	cc.wmu.Lock()
	defer cc.wmu.Unlock()
	if st != nil {
		if st.rstSent {
			return nil
		}
		st.rstSent = true
		cc.wcond.Broadcast()
	}
	if cc.werr != nil {
		return cc.werr
	}
	cc.ensureLocked()
	b := appendFrameHeader(cc.wdata, 4, http2.FrameRSTStream, 0, id)
	cc.wdata = binary.BigEndian.AppendUint32(b, uint32(code))
	cc.kickWriter()
	return nil
}

// clientBlock is the header block being read. It belongs to the read loop.
type clientBlock struct {
	st        *ClientStream // nil: decode only (a stream we no longer track)
	id        uint32
	endStream bool
	size      uint32
	tooLarge  bool
	bad       string // why the block is malformed
	status    int
	pseudo    bool // a pseudo-header field was seen
	regular   bool // a regular field was seen
	fields    []Field
}

func (cc *ClientConn) onHeaders(id uint32, endStream, endHeaders bool, frag []byte) error {
	cc.mu.Lock()
	if id >= cc.nextID || id%2 == 0 {
		cc.mu.Unlock()
		return connErr(http2.ErrCodeProtocol, "HEADERS on a stream we did not open")
	}
	st := cc.streams[id]
	cc.mu.Unlock()
	hb := &cc.hb
	*hb = clientBlock{st: st, id: id, endStream: endStream, fields: hb.fields[:0]}
	return cc.headerFragment(frag, endHeaders)
}

func (cc *ClientConn) headerFragment(frag []byte, end bool) error {
	if _, err := cc.hdec.Write(frag); err != nil {
		return connErr(http2.ErrCodeCompression, "invalid header block")
	}
	if !end {
		return nil
	}
	if err := cc.hdec.Close(); err != nil {
		return connErr(http2.ErrCodeCompression, "invalid header block")
	}
	return cc.endBlock()
}

// onField collects a decoded field of the block being read, within the header list
// size: beyond it nothing more is kept.
func (cc *ClientConn) onField(f hpack.HeaderField) {
	hb := &cc.hb
	hb.size += f.Size()
	if hb.size > cc.opts.MaxHeaderListSize {
		hb.tooLarge = true
	}
	if hb.tooLarge || hb.st == nil || hb.bad != "" {
		return
	}
	if f.IsPseudo() {
		switch {
		case hb.regular:
			hb.bad = "pseudo-header after a regular field"
		case f.Name != ":status" || hb.status != 0:
			hb.bad = "pseudo-header other than one :status"
		default:
			code, err := strconv.Atoi(f.Value)
			if err != nil || code < 100 || code > 999 || len(f.Value) != 3 {
				hb.bad = "invalid :status"
			}
			hb.status = code
			hb.pseudo = true
		}
		return
	}
	hb.regular = true
	if !validFieldName(f.Name) {
		hb.bad = "invalid field name"
		return
	}
	hb.fields = append(hb.fields, Field{Name: f.Name, Value: f.Value})
}

// endBlock hands a complete header block to its stream: an interim head, the final
// head or the trailers.
func (cc *ClientConn) endBlock() error {
	hb := &cc.hb
	st := hb.st
	if st == nil {
		return nil
	}
	fail := func(reason string) error {
		cc.resetStream(hb.id, http2.ErrCodeProtocol, fmt.Errorf("%w: %s", ErrInvalidPeerResponse, reason))
		return nil
	}
	switch {
	case hb.tooLarge:
		return fail("header list larger than MAX_HEADER_LIST_SIZE")
	case hb.bad != "":
		return fail(hb.bad)
	}
	cc.mu.Lock()
	if cc.streams[hb.id] != st {
		cc.mu.Unlock()
		return nil // failed meanwhile
	}
	switch {
	case !st.headDone:
		switch {
		case hb.status == 0:
			cc.mu.Unlock()
			return fail("no :status")
		case hb.status < 200:
			if hb.endStream || hb.status == 101 {
				cc.mu.Unlock()
				return fail("interim response ends the stream")
			}
			st.interim = append(st.interim, interimHead{status: hb.status, fields: append([]Field(nil), hb.fields...)})
		default:
			st.status = hb.status
			st.head = append(st.head[:0], hb.fields...)
			st.headDone = true
			st.headEnds = hb.endStream
		}
	case hb.pseudo || !hb.endStream:
		cc.mu.Unlock()
		return fail("trailers with a pseudo-header or without END_STREAM")
	default:
		st.trailers = append(st.trailers[:0], hb.fields...)
	}
	if hb.endStream {
		st.eof = true
		cc.remoteDoneLocked(st)
	}
	poke(st.rwake)
	cc.mu.Unlock()
	return nil
}

// connReader reads the socket through a buffer of the pool while streams are open; an
// idle connection gives its buffer back and waits in a read into the caller's slice.
// A read that started with streams open and still waits when the connection is idle
// is woken (onIdle: a deadline in the past) to give its buffer back.
type connReader struct {
	nc      net.Conn
	pool    *BufPool
	idle    func() bool
	buf     []byte
	r, w    int
	holding atomic.Bool // buf is held
	pokeMu  sync.Mutex  // orders the deadlines of poke and wasPoked
	poked   bool        // guarded by pokeMu: poke set the deadline
}

// poke wakes a read in progress with a deadline in the past.
func (cr *connReader) poke() {
	cr.pokeMu.Lock()
	defer cr.pokeMu.Unlock()
	cr.poked = true
	_ = cr.nc.SetReadDeadline(time.Unix(1, 0))
}

// wasPoked reports whether err is the timeout of a poke, and clears the deadline.
func (cr *connReader) wasPoked(err error) bool {
	var ne net.Error
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		return false
	}
	cr.pokeMu.Lock()
	defer cr.pokeMu.Unlock()
	if !cr.poked {
		return false
	}
	cr.poked = false
	return cr.nc.SetReadDeadline(time.Time{}) == nil
}

func (cr *connReader) Read(p []byte) (int, error) {
	for cr.r == cr.w {
		if cr.idle() || len(p) >= cr.pool.Size() {
			cr.release()
			n, err := cr.nc.Read(p)
			if n == 0 && cr.wasPoked(err) {
				continue
			}
			return n, err
		}
		if cr.buf == nil {
			cr.buf = cr.pool.Get()
			cr.holding.Store(true)
		}
		n, err := cr.nc.Read(cr.buf)
		cr.r, cr.w = 0, n
		if n == 0 {
			if cr.wasPoked(err) {
				cr.release()
				continue
			}
			return 0, err
		}
	}
	n := copy(p, cr.buf[cr.r:cr.w])
	cr.r += n
	return n, nil
}

func (cr *connReader) release() {
	if cr.buf != nil && cr.r == cr.w {
		cr.pool.Put(cr.buf)
		cr.buf, cr.r, cr.w = nil, 0, 0
		cr.holding.Store(false)
	}
}
