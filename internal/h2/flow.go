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
