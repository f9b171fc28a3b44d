package h2

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The client side of a tunnel: one CONNECT or extended CONNECT (RFC 8441) stream on an
// HTTP/2 connection of its own. A proxy opens one per WebSocket (as it opens one
// HTTP/1.1 connection per WebSocket), so the connection carries a single stream and
// the client needs none of the multiplexing of a general one.

// TunnelRequest is the head of a tunnel's request.
type TunnelRequest struct {
	// Protocol is the :protocol of an extended CONNECT ("websocket"); empty for a
	// plain CONNECT, which has no :scheme and :path.
	Protocol  string
	Scheme    string // "http" or "https" (extended CONNECT only)
	Authority string
	Path      string // extended CONNECT only
	// Fields are the regular fields: lowercase names, none connection-specific.
	Fields []Field
}

// ErrNoExtendedConnect is returned by [OpenTunnel] when the server does not offer
// extended CONNECT (no SETTINGS_ENABLE_CONNECT_PROTOCOL).
var ErrNoExtendedConnect = errors.New("h2: the server does not offer extended CONNECT")

// errTunnelClosed is the error of a Tunnel used after Close.
var errTunnelClosed = errors.New("h2: tunnel closed")

// tunnelWindow is the receive window of a tunnel's stream and connection.
const tunnelWindow = 1 << 20

// tunnelStream is the tunnel's stream, the connection's first.
const tunnelStream = 1

// Tunnel is an open tunnel stream: the response head, and the stream's DATA as a byte
// stream both ways. Read, Write, CloseWrite and Close may be called concurrently.
type Tunnel struct {
	// Status and Fields are the response head.
	Status int
	Fields []Field

	nc       net.Conn
	bw       *poolWriter
	fr       *http2.Framer
	wmu      sync.Mutex // frame writes
	initial  int64      // the server's SETTINGS_INITIAL_WINDOW_SIZE
	headOnce sync.Once
	head     chan struct{} // closed when the response head (or a failure) arrived

	mu       sync.Mutex
	cond     *sync.Cond
	sendWin  int64 // the stream's send window
	connWin  int64 // the connection's
	maxFrame int
	queue    [][]byte // DATA received, not yet read
	queued   int
	unacked  int   // bytes read but not yet credited back
	eof      bool  // END_STREAM received
	err      error // the tunnel failed or was closed
	ended    bool  // END_STREAM sent
}

// OpenTunnel sends the client preface and the tunnel's request on nc, an HTTP/2
// connection just opened (after its TLS handshake, if any), and waits for the response
// head until ctx ends. Whatever the final status, the Tunnel is returned; a status
// other than 2xx means the server refused (its body, if any, can be read), and the
// tunnel must be closed. On an error nc is closed; for an extended CONNECT to a server
// that does not offer it, the error is [ErrNoExtendedConnect].
//
// Frames are written through a buffer of pool (one of its own if nil), taken for each
// write and given back once it is flushed: an idle tunnel holds none. Reads go through a
// buffer of 4 KiB that the tunnel keeps.
func OpenTunnel(ctx context.Context, nc net.Conn, req TunnelRequest, pool *BufPool) (*Tunnel, error) {
	if pool == nil {
		pool = NewBufPool(0)
	}
	t := &Tunnel{nc: nc, initial: initialWindow, sendWin: initialWindow, connWin: initialWindow,
		maxFrame: minMaxFrameSize, head: make(chan struct{})}
	t.cond = sync.NewCond(&t.mu)
	t.bw = &poolWriter{w: nc, pool: pool}
	t.fr = http2.NewFramer(t.bw, bufio.NewReader(nc))
	t.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	t.fr.MaxHeaderListSize = DefaultMaxHeaderListSize

	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	err := t.start(req)
	if !stop() || err != nil {
		nc.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	go t.readLoop()
	select {
	case <-t.head:
	case <-ctx.Done():
		t.fail(ctx.Err())
		<-t.head
	}
	if t.Status == 0 {
		t.mu.Lock()
		err := t.err
		t.mu.Unlock()
		t.Close()
		return nil, err
	}
	return t, nil
}

// start writes the preface and our settings, reads the server's SETTINGS, and then
// sends the request head: an extended CONNECT may go only once the server said it
// takes one (RFC 8441 §3).
func (t *Tunnel) start(req TunnelRequest) error {
	t.bw.WriteString(ClientPreface)
	t.fr.WriteSettings(
		http2.Setting{ID: http2.SettingEnablePush, Val: 0},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: tunnelWindow},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: DefaultMaxHeaderListSize},
	)
	t.fr.WriteWindowUpdate(0, tunnelWindow-initialWindow)
	if err := t.bw.Flush(); err != nil {
		return err
	}
	f, err := t.fr.ReadFrame()
	if err != nil {
		return fmt.Errorf("h2: reading the server's SETTINGS: %w", err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		return fmt.Errorf("h2: the server began with %v, not SETTINGS", f.Header().Type)
	}
	offers := false
	if err := sf.ForeachSetting(func(s http2.Setting) error {
		if s.ID == http2.SettingEnableConnectProtocol && s.Val == 1 {
			offers = true
		}
		return t.applySetting(s)
	}); err != nil {
		return err
	}
	if req.Protocol != "" && !offers {
		return ErrNoExtendedConnect
	}
	t.fr.WriteSettingsAck()

	var hb headerBuf
	enc := hpack.NewEncoder(&hb)
	enc.WriteField(hpack.HeaderField{Name: ":method", Value: "CONNECT"})
	if req.Protocol != "" {
		enc.WriteField(hpack.HeaderField{Name: ":protocol", Value: req.Protocol})
		enc.WriteField(hpack.HeaderField{Name: ":scheme", Value: req.Scheme})
		enc.WriteField(hpack.HeaderField{Name: ":path", Value: req.Path})
	}
	enc.WriteField(hpack.HeaderField{Name: ":authority", Value: req.Authority})
	for _, f := range req.Fields {
		enc.WriteField(hpack.HeaderField{Name: f.Name, Value: f.Value})
	}
	block := hb.b
	first := block[:min(len(block), t.maxFrame)]
	block = block[len(first):]
	t.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: tunnelStream, BlockFragment: first, EndHeaders: len(block) == 0})
	for len(block) > 0 {
		part := block[:min(len(block), t.maxFrame)]
		block = block[len(part):]
		t.fr.WriteContinuation(tunnelStream, len(block) == 0, part)
	}
	return t.bw.Flush()
}

// headerBuf collects an encoded header block.
type headerBuf struct{ b []byte }

func (h *headerBuf) Write(p []byte) (int, error) {
	h.b = append(h.b, p...)
	return len(p), nil
}

// applySetting applies one of the server's settings; a change of the initial window
// moves the stream's send window by the difference (RFC 9113 §6.9.2).
func (t *Tunnel) applySetting(s http2.Setting) error {
	if err := s.Valid(); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch s.ID {
	case http2.SettingInitialWindowSize:
		t.sendWin += int64(s.Val) - t.initial
		t.initial = int64(s.Val)
	case http2.SettingMaxFrameSize:
		t.maxFrame = int(s.Val)
	}
	t.cond.Broadcast()
	return nil
}

// readLoop reads the server's frames until the connection ends.
func (t *Tunnel) readLoop() {
	for {
		f, err := t.fr.ReadFrame()
		if err != nil {
			t.fail(err)
			return
		}
		if err := t.onFrame(f); err != nil {
			t.fail(err)
			return
		}
	}
}

func (t *Tunnel) onFrame(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.SettingsFrame:
		if f.IsAck() {
			return nil
		}
		if err := f.ForeachSetting(t.applySetting); err != nil {
			return err
		}
		return t.write(func() error { return t.fr.WriteSettingsAck() })
	case *http2.WindowUpdateFrame:
		t.mu.Lock()
		switch f.StreamID {
		case 0:
			t.connWin += int64(f.Increment)
		case tunnelStream:
			t.sendWin += int64(f.Increment)
		}
		t.cond.Broadcast()
		t.mu.Unlock()
	case *http2.PingFrame:
		if !f.IsAck() {
			return t.write(func() error { return t.fr.WritePing(true, f.Data) })
		}
	case *http2.MetaHeadersFrame:
		if f.StreamID != tunnelStream {
			return fmt.Errorf("h2: HEADERS on stream %d", f.StreamID)
		}
		if t.Status == 0 {
			code, err := strconv.Atoi(f.PseudoValue("status"))
			if err != nil || code < 100 || code > 999 {
				return errors.New("h2: response without a valid :status")
			}
			if code < 200 {
				return nil // an interim response
			}
			for _, hf := range f.RegularFields() {
				t.Fields = append(t.Fields, Field{Name: hf.Name, Value: hf.Value})
			}
			t.Status = code
			t.headOnce.Do(func() { close(t.head) })
		}
		if f.StreamEnded() {
			t.mu.Lock()
			t.eof = true
			t.cond.Broadcast()
			t.mu.Unlock()
		}
	case *http2.DataFrame:
		if f.StreamID != tunnelStream || t.Status == 0 {
			return fmt.Errorf("h2: unexpected DATA on stream %d", f.StreamID)
		}
		data := f.Data()
		t.mu.Lock()
		t.queued += len(data)
		over := t.queued > tunnelWindow
		if len(data) > 0 {
			t.queue = append(t.queue, append([]byte(nil), data...))
		}
		if f.StreamEnded() {
			t.eof = true
		}
		t.cond.Broadcast()
		t.mu.Unlock()
		if over {
			return errors.New("h2: the server overran the flow-control window")
		}
		if pad := int(f.Length) - len(data); pad > 0 { // padding is credited back at once
			return t.credit(pad)
		}
	case *http2.RSTStreamFrame:
		if f.StreamID == tunnelStream {
			return &ResetError{Code: f.ErrCode}
		}
	case *http2.GoAwayFrame:
		if f.LastStreamID < tunnelStream {
			return fmt.Errorf("h2: the server went away (%v) before the tunnel", f.ErrCode)
		}
	}
	return nil
}

// write writes frames with fn and flushes them, which gives the buffer back even if fn
// failed. (The framer writes a frame whole or not at all.)
func (t *Tunnel) write(fn func() error) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	err := fn()
	if ferr := t.bw.Flush(); err == nil {
		err = ferr
	}
	return err
}

// credit gives n bytes of window back to the server, on the stream and the connection.
func (t *Tunnel) credit(n int) error {
	return t.write(func() error {
		if err := t.fr.WriteWindowUpdate(tunnelStream, uint32(n)); err != nil {
			return err
		}
		return t.fr.WriteWindowUpdate(0, uint32(n))
	})
}

// fail ends the tunnel with err (the first error wins) and closes the connection.
func (t *Tunnel) fail(err error) {
	t.mu.Lock()
	if t.err == nil {
		t.err = err
	}
	t.cond.Broadcast()
	t.mu.Unlock()
	t.headOnce.Do(func() { close(t.head) })
	t.nc.Close()
}

// Read reads the tunnel's incoming bytes; io.EOF once the server ended the stream.
func (t *Tunnel) Read(p []byte) (int, error) {
	t.mu.Lock()
	for len(t.queue) == 0 && !t.eof && t.err == nil {
		t.cond.Wait()
	}
	if len(t.queue) == 0 {
		err := t.err
		if t.eof {
			err = io.EOF
		}
		t.mu.Unlock()
		return 0, err
	}
	n := copy(p, t.queue[0])
	if n == len(t.queue[0]) {
		t.queue[0] = nil
		t.queue = t.queue[1:]
	} else {
		t.queue[0] = t.queue[0][n:]
	}
	t.queued -= n
	t.unacked += n
	give := 0
	if t.unacked >= tunnelWindow/4 && !t.eof {
		give, t.unacked = t.unacked, 0
	}
	t.mu.Unlock()
	if give > 0 {
		if err := t.credit(give); err != nil {
			t.fail(err)
		}
	}
	return n, nil
}

// Write sends p as DATA, waiting for the server's flow-control windows.
func (t *Tunnel) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		t.mu.Lock()
		for (t.sendWin <= 0 || t.connWin <= 0) && t.err == nil && !t.ended {
			t.cond.Wait()
		}
		switch {
		case t.err != nil:
			err := t.err
			t.mu.Unlock()
			return written, err
		case t.ended:
			t.mu.Unlock()
			return written, errors.New("h2: write after CloseWrite")
		}
		n := int(min(int64(len(p)), t.sendWin, t.connWin, int64(t.maxFrame)))
		t.sendWin -= int64(n)
		t.connWin -= int64(n)
		t.mu.Unlock()
		if err := t.write(func() error { return t.fr.WriteData(tunnelStream, false, p[:n]) }); err != nil {
			t.fail(err)
			return written, err
		}
		written += n
		p = p[n:]
	}
	return written, nil
}

// CloseWrite ends the stream on our side (END_STREAM); reading goes on.
func (t *Tunnel) CloseWrite() error {
	t.mu.Lock()
	if t.ended || t.err != nil {
		err := t.err
		t.mu.Unlock()
		return err
	}
	t.ended = true
	t.cond.Broadcast()
	t.mu.Unlock()
	return t.write(func() error { return t.fr.WriteData(tunnelStream, true, nil) })
}

// Close ends the tunnel and its connection: a stream still open on either side is
// reset (CANCEL) first.
func (t *Tunnel) Close() error {
	t.mu.Lock()
	open := t.err == nil && !(t.eof && t.ended)
	t.mu.Unlock()
	if open {
		t.nc.SetWriteDeadline(time.Now().Add(time.Second))
		t.write(func() error { return t.fr.WriteRSTStream(tunnelStream, http2.ErrCodeCancel) })
	}
	t.fail(errTunnelClosed)
	return nil
}

// poolWriter buffers writes in a buffer of a pool, taken at the first write and given
// back by Flush. Like bufio.Writer, an error sticks: later writes and flushes return it.
type poolWriter struct {
	w    io.Writer
	pool *BufPool
	buf  []byte
	n    int
	err  error
}

func (pw *poolWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 && pw.err == nil {
		if pw.buf == nil {
			if len(p) >= pw.pool.Size() {
				// Nothing buffered and a buffer's worth or more: write it as it is.
				n, err := pw.w.Write(p)
				pw.err = err
				return written + n, err
			}
			pw.buf, pw.n = pw.pool.Get(), 0
		}
		n := copy(pw.buf[pw.n:], p)
		pw.n += n
		written += n
		p = p[n:]
		if pw.n == len(pw.buf) {
			pw.flush()
		}
	}
	return written, pw.err
}

// WriteString writes s (the client preface).
func (pw *poolWriter) WriteString(s string) (int, error) { return pw.Write([]byte(s)) }

// Flush writes what is buffered and gives the buffer back.
func (pw *poolWriter) Flush() error {
	pw.flush()
	return pw.err
}

func (pw *poolWriter) flush() {
	if pw.buf == nil {
		return
	}
	if pw.n > 0 && pw.err == nil {
		_, pw.err = pw.w.Write(pw.buf[:pw.n])
	}
	pw.pool.Put(pw.buf)
	pw.buf, pw.n = nil, 0
}
