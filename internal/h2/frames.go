package h2

import (
	"golang.org/x/net/http2"
)

// processFrame handles one frame read by the read loop, other than HEADERS (see
// readHeadersFrame). The Framer has checked frame sizes, stream 0 rules, padding and
// the order of CONTINUATION frames.
func (c *Conn) processFrame(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.DataFrame:
		return c.onData(f)
	case *http2.ContinuationFrame:
		return c.onContinuation(f)
	case *http2.SettingsFrame:
		if err := c.countControl(); err != nil {
			return err
		}
		if f.IsAck() {
			return c.onSettingsAck()
		}
		return c.onSettings(f)
	case *http2.PingFrame:
		if err := c.countControl(); err != nil {
			return err
		}
		if f.IsAck() {
			c.onPingAck(f.Data)
			return nil
		}
		return c.writePingAck(f.Data)
	case *http2.WindowUpdateFrame:
		return c.onWindowUpdate(f)
	case *http2.RSTStreamFrame:
		return c.onRSTStream(f)
	case *http2.PriorityFrame:
		if err := c.countControl(); err != nil {
			return err
		}
		if f.StreamDep == f.StreamID {
			return streamErr(f.StreamID, http2.ErrCodeProtocol, "stream depends on itself")
		}
		return nil // priorities are advisory (RFC 9113 §5.3.2); we ignore them
	case *http2.GoAwayFrame:
		c.mu.Lock()
		c.shutdown = true
		if len(c.streams) == 0 {
			c.endGracefullyLocked()
		}
		c.mu.Unlock()
		return nil
	case *http2.PushPromiseFrame:
		return connErr(http2.ErrCodeProtocol, "PUSH_PROMISE from a client")
	}
	return nil // unknown frame types are ignored (RFC 9113 §5.5)
}

func (c *Conn) countControl() error {
	c.controls.excuse(c.useful.Swap(0))
	if !c.controls.add(c.opts.RateWindow, c.opts.MaxControlFrames) {
		return connErr(http2.ErrCodeEnhanceYourCalm, "too many control frames")
	}
	return nil
}

// idleStreamLocked reports whether id names a stream in the idle state: one the client
// has not opened yet, or a server-initiated one (we open none). c.mu is held.
func (c *Conn) idleStreamLocked(id uint32) bool {
	return id%2 == 0 || id > c.maxClientID
}

// recentlyResetLocked reports whether we reset stream id lately. c.mu is held.
func (c *Conn) recentlyResetLocked(id uint32) bool {
	for _, v := range c.recentResets {
		if v == id {
			return true
		}
	}
	return false
}

func (c *Conn) noteResetLocked(id uint32) {
	c.recentResets[c.recentN%len(c.recentResets)] = id
	c.recentN++
}

// resetFromReadLoop resets stream id for an error in the client's frames.
func (c *Conn) resetFromReadLoop(id uint32, code http2.ErrCode) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.streams[id]
	if st != nil {
		c.closeStreamLocked(st, &ResetError{Code: code})
	}
	c.noteResetLocked(id)
	if st != nil && !c.resets.add(c.opts.RateWindow, c.opts.MaxResets) {
		return connErr(http2.ErrCodeEnhanceYourCalm, "too many stream errors")
	}
	// Under c.mu: a finished stream may be reused once c.mu is released.
	return c.writeRST(id, st, code)
}

func (c *Conn) onData(f *http2.DataFrame) error {
	id := f.StreamID
	n := int64(f.Length) // flow control counts padding too (RFC 9113 §6.9)
	data := f.Data()
	c.mu.Lock()
	if c.idleStreamLocked(id) {
		c.mu.Unlock()
		return connErr(http2.ErrCodeProtocol, "DATA on an idle stream")
	}
	if !c.receiveLocked(n) {
		c.mu.Unlock()
		return connErr(http2.ErrCodeFlowControl, "connection flow-control window exceeded")
	}
	st := c.streams[id]
	if st == nil || st.remoteDone {
		// A closed stream or one the client had ended: the data is dropped and its
		// connection credit returned at once.
		err := c.creditConnLocked(n)
		ignore := st == nil && c.recentlyResetLocked(id)
		c.mu.Unlock()
		if err != nil {
			return err
		}
		if ignore {
			return nil // sent before the client saw our RST_STREAM
		}
		if err := c.countControl(); err != nil {
			return err
		}
		return streamErr(id, http2.ErrCodeStreamClosed, "DATA on a closed stream")
	}
	pad, ok := st.receiveLocked(n, len(data))
	if !ok {
		c.mu.Unlock()
		return streamErr(id, http2.ErrCodeFlowControl, "stream flow-control window exceeded")
	}
	if pad > 0 {
		if err := c.creditConnLocked(pad); err != nil {
			c.mu.Unlock()
			return err
		}
	}
	st.received += int64(len(data))
	if cl := st.req.ContentLength; cl >= 0 && (st.received > cl || f.StreamEnded() && st.received != cl) {
		c.mu.Unlock()
		return streamErr(id, http2.ErrCodeProtocol, "body length differs from content-length")
	}
	if len(data) == 0 && !f.StreamEnded() {
		c.mu.Unlock()
		return c.countControl()
	}
	st.appendLocked(data, c.pool)
	c.useful.Add(1)
	if f.StreamEnded() {
		st.remoteDone, st.eof = true, true
		if st.localDone {
			c.closeStreamLocked(st, nil)
		}
	}
	poke(st.rwake)
	c.mu.Unlock()
	return nil
}

func (c *Conn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	inc := int64(f.Increment) // the Framer rejects 0
	if inc < 1024 {
		if err := c.countControl(); err != nil {
			return err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.StreamID == 0 {
		return growConnLocked(&c.sendWin, inc, c.streams)
	}
	if c.idleStreamLocked(f.StreamID) {
		return connErr(http2.ErrCodeProtocol, "WINDOW_UPDATE on an idle stream")
	}
	st := c.streams[f.StreamID]
	if st == nil {
		return nil // closed: the client may not know yet
	}
	if !st.growLocked(inc) {
		return streamErr(f.StreamID, http2.ErrCodeFlowControl, "stream window over 2^31-1")
	}
	return nil
}

func (c *Conn) onRSTStream(f *http2.RSTStreamFrame) error {
	c.mu.Lock()
	if c.idleStreamLocked(f.StreamID) {
		c.mu.Unlock()
		return connErr(http2.ErrCodeProtocol, "RST_STREAM on an idle stream")
	}
	st := c.streams[f.StreamID]
	if st != nil {
		c.closeStreamLocked(st, &ResetError{Code: f.ErrCode, Remote: true})
		c.wmu.Lock()
		// no frame may follow the client's RST_STREAM
		st.rstSent, st.rstErr = true, &ResetError{Code: f.ErrCode, Remote: true}
		c.wcond.Broadcast()
		c.wmu.Unlock()
	}
	c.mu.Unlock()
	if st != nil {
		if !c.resets.add(c.opts.RateWindow, c.opts.MaxResets) {
			return connErr(http2.ErrCodeEnhanceYourCalm, "too many stream resets")
		}
	}
	return nil
}

func (c *Conn) onSettings(f *http2.SettingsFrame) error {
	var err error
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
			err = c.setPeerInitialWindow(int64(s.Val))
		case http2.SettingMaxFrameSize:
			c.wmu.Lock()
			c.wpeerMaxFrame = s.Val
			c.wmu.Unlock()
		case http2.SettingHeaderTableSize:
			c.wmu.Lock()
			c.henc.SetMaxDynamicTableSizeLimit(min(s.Val, 64<<10))
			c.wmu.Unlock()
		}
		if err != nil {
			return err
		}
	}
	return c.writeSettingsAck()
}

// setPeerInitialWindow applies a new SETTINGS_INITIAL_WINDOW_SIZE to every open stream
// (RFC 9113 §6.9.2); a window may become negative.
func (c *Conn) setPeerInitialWindow(v int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return setInitialLocked(&c.peerInitWin, v, c.streams)
}

// onSettingsAck applies our SETTINGS_INITIAL_WINDOW_SIZE, which the client now uses.
func (c *Conn) onSettingsAck() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.settingsAcked {
		return nil
	}
	c.settingsAcked = true
	delta := int64(c.opts.InitialWindowSize) - initialWindow
	c.recvInitWin += delta
	for _, st := range c.streams {
		st.recvWin += delta
	}
	return nil
}

// creditConnLocked returns n bytes of connection window to the client, in batches.
// c.mu is held.
func (c *Conn) creditConnLocked(n int64) error {
	if give := c.recvConn.creditLocked(n, int64(c.opts.ConnWindowSize)/4); give > 0 {
		return c.writeWindowUpdate(0, give)
	}
	return nil
}

func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
