package h2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The write side of a connection. Every goroutine (the read loop for control frames,
// handlers for their streams' frames) appends whole frames to one of two buffers under
// wmu, and one writer goroutine writes the buffers out, control frames first, taking
// everything queued in one system call. Frames of one stream keep their order because
// a stream's frames are appended by its handler in order to the stream buffer, which
// also holds RST_STREAM (so that no frame of a stream follows its reset). A handler
// appending to a full stream buffer waits for the writer to drain it; the read loop
// never waits, and a client that makes us queue more than MaxQueuedControlFrames
// control frames without reading them loses the connection.

// maxStreamBuffered is how many bytes of stream frames may wait for the socket before
// a handler's write waits.
const maxStreamBuffered = 64 << 10

// maxDataFrame caps the DATA frames we write, whatever the client's
// SETTINGS_MAX_FRAME_SIZE, so that one stream cannot hold the socket for long.
const maxDataFrame = 16 << 10

// yieldBelow: with less than this queued, the writer yields once before writing, so
// that frames other goroutines are about to queue go out in the same write (see
// writeLoop). A full TLS record's worth needs no wait.
const yieldBelow = 16 << 10

var errQueueFull = errors.New("h2: too many control frames queued for a peer that does not read")

// frameWriter is the write side of a connection, server or client: the two buffers of
// queued frames, the HPACK encoder, and the writer goroutine (writeLoop). Its fields
// are guarded by wmu, except those the writer goroutine owns.
type frameWriter struct {
	// Immutable after initWriter.
	wnc      net.Conn
	wtimeout time.Duration // bounds each write
	wmaxCtrl int           // control frames that may be queued between two writes
	// wlazy: the queues are made when first needed and dropped when the connection
	// idles (wrelease), so that an idle connection holds none (the client side).
	wlazy bool

	// Guarded by wmu.
	wmu           sync.Mutex
	wcond         sync.Cond
	wctrl, wdata  []byte // queued control frames; queued stream frames
	wspareCtrl    []byte
	wspareData    []byte
	wctrlN        int // control frames queued since the last write
	wgoaway       bool
	wrelease      bool // drop the queues at the next wait (wlazy)
	wstop         bool
	werr          error
	wpeerMaxFrame uint32
	henc          *hpack.Encoder
	hbuf          bytes.Buffer
	wkick         chan struct{}
	wdone         chan struct{}

	// Owned by the writer goroutine.
	wvec    net.Buffers
	wvecArr [2][]byte
}

// initWriter prepares the write side of a connection on nc; the caller starts
// writeLoop.
func (c *frameWriter) initWriter(nc net.Conn, timeout time.Duration, maxCtrl int, lazy bool) {
	c.wnc, c.wtimeout, c.wmaxCtrl, c.wlazy = nc, timeout, maxCtrl, lazy
	c.wpeerMaxFrame = minMaxFrameSize
	c.wkick = make(chan struct{}, 1)
	c.wdone = make(chan struct{})
	c.wcond.L = &c.wmu
	c.henc = hpack.NewEncoder(&c.hbuf)
}

func appendFrameHeader(b []byte, length int, t http2.FrameType, flags http2.Flags, id uint32) []byte {
	return append(b, byte(length>>16), byte(length>>8), byte(length), byte(t), byte(flags),
		byte(id>>24)&0x7f, byte(id>>16), byte(id>>8), byte(id))
}

// kickWriter wakes the writer goroutine.
func (c *frameWriter) kickWriter() {
	select {
	case c.wkick <- struct{}{}:
	default:
	}
}

// ctrlLocked checks that a control frame may be queued. c.wmu is held.
func (c *frameWriter) ctrlLocked() error {
	if c.werr != nil {
		return c.werr
	}
	c.ensureLocked()
	c.wctrlN++
	if c.wctrlN > c.wmaxCtrl {
		c.abortWriterLocked(errQueueFull)
		return connErr(http2.ErrCodeEnhanceYourCalm, "too many queued control frames")
	}
	return nil
}

// abortWriterLocked fails every later write and unblocks the socket. c.wmu is held.
func (c *frameWriter) abortWriterLocked(err error) {
	if c.werr == nil {
		c.werr = err
	}
	c.wcond.Broadcast()
	_ = c.wnc.SetDeadline(time.Unix(1, 0))
	c.kickWriter()
}

func (c *Conn) writeSettings() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	s := [...]http2.Setting{
		{ID: http2.SettingMaxConcurrentStreams, Val: c.opts.MaxConcurrentStreams},
		{ID: http2.SettingInitialWindowSize, Val: c.opts.InitialWindowSize},
		{ID: http2.SettingMaxFrameSize, Val: c.opts.MaxFrameSize},
		{ID: http2.SettingMaxHeaderListSize, Val: c.opts.MaxHeaderListSize},
		{ID: http2.SettingEnableConnectProtocol, Val: 1},
	}
	n := len(s)
	if !c.opts.EnableConnectProtocol {
		n--
	}
	b := appendFrameHeader(c.wctrl, 6*n, http2.FrameSettings, 0, 0)
	for _, v := range s[:n] {
		b = binary.BigEndian.AppendUint16(b, uint16(v.ID))
		b = binary.BigEndian.AppendUint32(b, v.Val)
	}
	if inc := c.opts.ConnWindowSize - initialWindow; inc > 0 {
		b = appendFrameHeader(b, 4, http2.FrameWindowUpdate, 0, 0)
		b = binary.BigEndian.AppendUint32(b, inc)
	}
	c.wctrl = b
	c.kickWriter()
}

func (c *frameWriter) writeSettingsAck() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.ctrlLocked(); err != nil {
		return err
	}
	c.wctrl = appendFrameHeader(c.wctrl, 0, http2.FrameSettings, http2.FlagSettingsAck, 0)
	c.kickWriter()
	return nil
}

// writePing queues a PING of our own.
func (c *frameWriter) writePing(data [8]byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.ctrlLocked(); err != nil {
		return err
	}
	c.wctrl = append(appendFrameHeader(c.wctrl, 8, http2.FramePing, 0, 0), data[:]...)
	c.kickWriter()
	return nil
}

func (c *frameWriter) writePingAck(data [8]byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.ctrlLocked(); err != nil {
		return err
	}
	c.wctrl = append(appendFrameHeader(c.wctrl, 8, http2.FramePing, http2.FlagPingAck, 0), data[:]...)
	c.kickWriter()
	return nil
}

// writeWindowUpdate returns flow-control credit on stream id (0: the connection).
func (c *frameWriter) writeWindowUpdate(id uint32, n int64) error {
	if n <= 0 {
		return nil
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.ctrlLocked(); err != nil {
		return err
	}
	b := appendFrameHeader(c.wctrl, 4, http2.FrameWindowUpdate, 0, id)
	c.wctrl = binary.BigEndian.AppendUint32(b, uint32(n))
	c.kickWriter()
	return nil
}

// writeGoAway queues a GOAWAY; only the first one of a connection is sent.
func (c *frameWriter) writeGoAway(last uint32, code http2.ErrCode, debug string) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil || c.wgoaway {
		return
	}
	// The first GOAWAY of a graceful shutdown (the highest id, no error) may be followed
	// by the final one; any other is the last.
	c.wgoaway = last != maxStreamID || code != http2.ErrCodeNo
	c.ensureLocked()
	b := appendFrameHeader(c.wctrl, 8+len(debug), http2.FrameGoAway, 0, 0)
	b = binary.BigEndian.AppendUint32(b, last&0x7fffffff)
	b = binary.BigEndian.AppendUint32(b, uint32(code))
	c.wctrl = append(b, debug...)
	c.kickWriter()
}

// writeRST queues RST_STREAM(code) for stream id, after the stream's queued frames.
// st, if not nil, sends no frame after it.
func (c *Conn) writeRST(id uint32, st *Stream, code http2.ErrCode) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if st != nil {
		if st.rstSent {
			return nil
		}
		st.rstSent, st.rstErr = true, &ResetError{Code: code}
		c.wcond.Broadcast()
	}
	if err := c.ctrlLocked(); err != nil {
		return err
	}
	b := appendFrameHeader(c.wdata, 4, http2.FrameRSTStream, 0, id)
	c.wdata = binary.BigEndian.AppendUint32(b, uint32(code))
	c.kickWriter()
	return nil
}

// waitSpaceLocked waits until the stream buffer has room, the stream was reset or the
// connection failed. c.wmu is held.
func (c *Conn) waitSpaceLocked(st *Stream) error {
	for len(c.wdata) >= maxStreamBuffered && c.werr == nil && !st.rstSent {
		c.wcond.Wait()
	}
	if c.werr != nil {
		return fmt.Errorf("%w: %w", ErrConnClosed, c.werr)
	}
	if st.rstSent {
		return st.rstErr
	}
	return nil
}

// writeData queues one DATA frame of len(p) ≤ maxDataFrame bytes, whose flow-control
// window the caller has taken.
func (c *Conn) writeData(st *Stream, p []byte, end bool) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.waitSpaceLocked(st); err != nil {
		return err
	}
	var flags http2.Flags
	if end {
		flags = http2.FlagDataEndStream
	}
	c.wdata = append(appendFrameHeader(c.wdata, len(p), http2.FrameData, flags, st.id), p...)
	c.kickWriter()
	if len(p) > 0 {
		c.useful.Add(1)
	}
	return nil
}

// writeHeaders encodes and queues a header block (HEADERS and CONTINUATION frames).
// A status of 0 means trailers.
func (c *Conn) writeHeaders(st *Stream, status int, fields []Field, end bool) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.waitSpaceLocked(st); err != nil {
		return err
	}
	c.hbuf.Reset()
	if status != 0 {
		_ = c.henc.WriteField(hpack.HeaderField{Name: ":status", Value: statusText(status)})
	}
	for _, f := range fields {
		_ = c.henc.WriteField(hpack.HeaderField{Name: f.Name, Value: f.Value})
	}
	c.queueHeaderBlockLocked(st.id, end)
	return nil
}

// queueHeaderBlockLocked queues the header block encoded in c.hbuf for stream id, in a
// HEADERS frame and as many CONTINUATION frames as the peer's frame size asks. c.wmu
// is held.
func (c *frameWriter) queueHeaderBlockLocked(id uint32, end bool) {
	c.ensureLocked()
	block := c.hbuf.Bytes()
	max := int(c.wpeerMaxFrame)
	flags := http2.Flags(0)
	if end {
		flags |= http2.FlagHeadersEndStream
	}
	t := http2.FrameHeaders
	for {
		n := min(len(block), max)
		f := flags
		if n == len(block) {
			f |= http2.FlagHeadersEndHeaders
		}
		c.wdata = append(appendFrameHeader(c.wdata, n, t, f, id), block[:n]...)
		block = block[n:]
		if len(block) == 0 {
			break
		}
		t, flags = http2.FrameContinuation, 0
	}
	c.kickWriter()
}

// ensureLocked makes the queues a lazy writer dropped (see releaseLocked). c.wmu is
// held.
func (c *frameWriter) ensureLocked() {
	if !c.wlazy {
		return
	}
	if c.wctrl == nil {
		c.wctrl = make([]byte, 0, 4<<10)
	}
	if c.wdata == nil {
		c.wdata = make([]byte, 0, 16<<10)
	}
}

// releaseLocked drops the spare buffers, and the queues if empty. c.wmu is held.
func (c *frameWriter) releaseLocked() {
	c.wspareCtrl, c.wspareData = nil, nil
	if len(c.wctrl) == 0 {
		c.wctrl = nil
	}
	if len(c.wdata) == 0 {
		c.wdata = nil
	}
}

func statusText(code int) string {
	switch code {
	case 200:
		return "200"
	case 204:
		return "204"
	case 206:
		return "206"
	case 301:
		return "301"
	case 302:
		return "302"
	case 304:
		return "304"
	case 400:
		return "400"
	case 404:
		return "404"
	case 500:
		return "500"
	case 502:
		return "502"
	case 503:
		return "503"
	case 504:
		return "504"
	}
	return strconv.Itoa(code)
}

// writeLoop is the writer goroutine. It ends when the connection is torn down (wstop)
// and everything queued is written, or on a write error.
func (c *frameWriter) writeLoop() {
	defer close(c.wdone)
	for {
		c.wmu.Lock()
		for len(c.wctrl) == 0 && len(c.wdata) == 0 && !c.wstop && c.werr == nil {
			if cap(c.wspareData) > 2*maxStreamBuffered {
				c.wspareData = nil // give back what a burst grew
			}
			if c.wrelease {
				c.wrelease = false
				c.releaseLocked()
			}
			c.wmu.Unlock()
			<-c.wkick
			c.wmu.Lock()
		}
		if len(c.wdata) < yieldBelow && !c.wstop && c.werr == nil {
			// Let the other goroutines that are ready to run (handlers whose peer
			// answered meanwhile) queue their frames first, so that one write takes
			// them all: a system call and a TLS record each cost more than this yield.
			c.wmu.Unlock()
			runtime.Gosched()
			c.wmu.Lock()
		}
		if c.werr != nil || (len(c.wctrl) == 0 && len(c.wdata) == 0) {
			if c.werr == nil {
				c.werr = ErrConnClosed
			}
			c.wcond.Broadcast()
			c.wmu.Unlock()
			return
		}
		ctrl, data := c.wctrl, c.wdata
		c.wctrl, c.wdata = c.wspareCtrl[:0], c.wspareData[:0]
		c.wctrlN = 0
		timeout := c.wtimeout
		if c.wstop {
			timeout = min(timeout, lingerTimeout)
		}
		c.wcond.Broadcast()
		c.wmu.Unlock()

		err := c.wnc.SetWriteDeadline(time.Now().Add(timeout))
		if err == nil {
			switch {
			case len(ctrl) == 0:
				_, err = c.wnc.Write(data)
			case len(data) == 0:
				_, err = c.wnc.Write(ctrl)
			default:
				c.wvec = append(c.wvecArr[:0], ctrl, data)
				_, err = c.wvec.WriteTo(c.wnc)
			}
		}

		c.wmu.Lock()
		c.wspareCtrl, c.wspareData = ctrl[:0], data[:0]
		if err != nil {
			c.abortWriterLocked(fmt.Errorf("h2: write: %w", err))
			c.wmu.Unlock()
			return
		}
		c.wmu.Unlock()
	}
}

// writeStatusNow queues a response of only a status, ending stream id, for a request
// the read loop answers itself. It does not wait for buffer space.
func (c *Conn) writeStatusNow(id uint32, status int) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.ctrlLocked(); err != nil {
		return err
	}
	c.hbuf.Reset()
	_ = c.henc.WriteField(hpack.HeaderField{Name: ":status", Value: statusText(status)})
	block := c.hbuf.Bytes()
	c.wdata = append(appendFrameHeader(c.wdata, len(block), http2.FrameHeaders,
		http2.FlagHeadersEndHeaders|http2.FlagHeadersEndStream, id), block...)
	c.kickWriter()
	return nil
}
