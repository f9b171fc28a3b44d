package h2

import "golang.org/x/net/http2"

// The sending side of flow control (RFC 9113 §5.2), one policy for the server's
// streams and the client's: each stream embeds a sendWindow, each connection keeps its
// own window and the initial window its peer gives new streams, all guarded by the
// connection's mu, which the functions here expect held.

// sendWindow is a stream's send window and the wake-up of its writer waiting for it.
type sendWindow struct {
	sendWin int64
	waitWin bool          // the writer waits for window
	wwake   chan struct{} // the window grew, or the stream ended
}

func (w *sendWindow) window() *sendWindow { return w }

// windowed is a stream that embeds a sendWindow.
type windowed interface{ window() *sendWindow }

// takeLocked takes up to want bytes, at most one frame's worth, of the stream's window
// and of the connection's, *conn, and returns how many: 0 if either is spent.
func (w *sendWindow) takeLocked(want int, conn *int64) int {
	n := min(int64(want), w.sendWin, *conn, maxDataFrame)
	if n <= 0 {
		return 0
	}
	w.sendWin -= n
	*conn -= n
	return int(n)
}

// growLocked adds inc (a WINDOW_UPDATE's) to the stream's window and wakes its writer;
// it reports false if the window went past 2^31-1, which is the peer's error.
func (w *sendWindow) growLocked(inc int64) bool {
	w.sendWin += inc
	if w.sendWin > maxWindow {
		return false
	}
	poke(w.wwake)
	return true
}

// growConnLocked adds inc to the connection's window, *conn, and wakes the writers
// waiting for window; past 2^31-1 it is a connection error.
func growConnLocked[S windowed](conn *int64, inc int64, streams map[uint32]S) error {
	*conn += inc
	if *conn > maxWindow {
		return connErr(http2.ErrCodeFlowControl, "connection window over 2^31-1")
	}
	for _, st := range streams {
		if w := st.window(); w.waitWin {
			poke(w.wwake)
		}
	}
	return nil
}

// setInitialLocked applies the peer's new SETTINGS_INITIAL_WINDOW_SIZE v, after
// *initial, to every open stream (RFC 9113 §6.9.2): a window may become negative; one
// past 2^31-1 is a connection error.
func setInitialLocked[S windowed](initial *int64, v int64, streams map[uint32]S) error {
	delta := v - *initial
	*initial = v
	for _, st := range streams {
		w := st.window()
		w.sendWin += delta
		if w.sendWin > maxWindow {
			return connErr(http2.ErrCodeFlowControl, "stream window over 2^31-1")
		}
		if delta > 0 {
			poke(w.wwake)
		}
	}
	return nil
}

// recvBody is a stream's receiving side: the body received and not yet read, and the
// stream's receive window, with the credit read bytes earn back.
type recvBody struct {
	body       [][]byte // in buffers of the connection's pool
	unconsumed int64    // the bytes in body
	recvWin    int64    // what the peer may still send on the stream
	credit     int64    // read, not yet given back with WINDOW_UPDATE
}

// receiveLocked takes a DATA frame of n bytes, dataLen of them data (the rest padding),
// from the stream's window; false if it exceeds the window. The padding is credited at
// once: it returns it, for the connection's credit too.
func (r *recvBody) receiveLocked(n int64, dataLen int) (pad int64, ok bool) {
	if n > r.recvWin {
		return 0, false
	}
	r.recvWin -= n
	if pad = n - int64(dataLen); pad > 0 {
		r.credit += pad
	}
	return pad, true
}

// appendLocked stores data in buffers of pool.
func (r *recvBody) appendLocked(data []byte, pool *BufPool) {
	r.unconsumed += int64(len(data))
	for len(data) > 0 {
		var tail []byte
		if k := len(r.body); k > 0 && len(r.body[k-1]) < cap(r.body[k-1]) {
			tail = r.body[k-1]
		} else {
			tail = pool.Get()[:0]
			r.body = append(r.body, tail)
		}
		n := copy(tail[len(tail):cap(tail)], data)
		r.body[len(r.body)-1] = tail[:len(tail)+n]
		data = data[n:]
	}
}

// popLocked takes the first piece of the body (there is one). While the peer may send
// more, the piece's bytes are credited to the stream, and give is the credit to send
// now, once it reached batch (0: not yet).
func (r *recvBody) popLocked(more bool, batch int64) (b []byte, give int64) {
	b = r.body[0]
	copy(r.body, r.body[1:])
	r.body[len(r.body)-1] = nil
	r.body = r.body[:len(r.body)-1]
	n := int64(len(b))
	r.unconsumed -= n
	if more {
		r.credit += n
		if r.credit >= batch {
			give, r.credit = r.credit, 0
			r.recvWin += give
		}
	}
	return b, give
}

// dropLocked gives the body's buffers back to pool and returns how many bytes they
// held, which the connection's window is owed.
func (r *recvBody) dropLocked(pool *BufPool) int64 {
	for i, b := range r.body {
		pool.Put(b)
		r.body[i] = nil
	}
	r.body = r.body[:0]
	n := r.unconsumed
	r.unconsumed = 0
	return n
}

// recvConn is a connection's receive window and the credit its streams' reads earn it
// back.
type recvConn struct {
	recvWin    int64 // what the peer may still send on the connection
	connCredit int64 // read or dropped, not yet given back with WINDOW_UPDATE
}

// receiveLocked takes a DATA frame of n bytes from the connection's window; false if it
// exceeds it.
func (r *recvConn) receiveLocked(n int64) bool {
	if n > r.recvWin {
		return false
	}
	r.recvWin -= n
	return true
}

// creditLocked credits n bytes to the connection and returns the credit to send now,
// once it reached batch (0: not yet).
func (r *recvConn) creditLocked(n, batch int64) (give int64) {
	r.connCredit += n
	if r.connCredit < batch {
		return 0
	}
	give, r.connCredit = r.connCredit, 0
	r.recvWin += give
	return give
}
