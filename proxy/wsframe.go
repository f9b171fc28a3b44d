package proxy

import (
	"crypto/rand"
	"encoding/binary"
	"io"
)

// The frame boundaries of a WebSocket byte stream (RFC 6455 §5.2), so that the proxy can
// put a frame of its own (a close frame, as the service drains) between two of the
// frames it relays without cutting one.

// wsFrames follows the frames of one direction of a WebSocket as its bytes are relayed.
// It looks at each frame's header (2 to 14 bytes) and skips its payload by count, so it
// costs a few instructions per frame and per call, not per byte, and it never
// allocates. It is not safe for concurrent use.
type wsFrames struct {
	left     uint64   // payload bytes of the current frame still to come
	hn       int      // header bytes of the next frame seen so far
	hdr      [14]byte // those header bytes
	op       byte     // the opcode of the current frame
	sawClose bool     // a whole close frame went by
}

// wsOpClose is the opcode of a close frame.
const wsOpClose = 0x8

// boundary reports whether the bytes seen so far end at a frame boundary.
func (f *wsFrames) boundary() bool { return f.left == 0 && f.hn == 0 }

// feed follows the frames through p and returns how many of its bytes it took: all of
// them, or, if stop is set, those up to the first frame boundary (0 if the stream is at
// one already).
func (f *wsFrames) feed(p []byte, stop bool) int {
	i := 0
	for i < len(p) {
		if f.left > 0 {
			k := f.left
			if rest := uint64(len(p) - i); rest < k {
				k = rest
			}
			f.left -= k
			i += int(k)
			if f.left == 0 {
				f.end()
			}
			continue
		}
		if stop && f.hn == 0 {
			return i
		}
		f.hdr[f.hn] = p[i]
		f.hn++
		i++
		if f.hn < 2 || f.hn < wsHeaderLen(f.hdr[1]) {
			continue
		}
		f.op = f.hdr[0] & 0x0f
		switch n := f.hdr[1] & 0x7f; n {
		case 126:
			f.left = uint64(binary.BigEndian.Uint16(f.hdr[2:4]))
		case 127:
			f.left = binary.BigEndian.Uint64(f.hdr[2:10])
		default:
			f.left = uint64(n)
		}
		f.hn = 0
		if f.left == 0 {
			f.end()
		}
	}
	return i
}

// end notes the end of the current frame.
func (f *wsFrames) end() {
	if f.op == wsOpClose {
		f.sawClose = true
	}
}

// wsHeaderLen is the length of a frame header whose second byte is b1.
func wsHeaderLen(b1 byte) int {
	n := 2
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&0x80 != 0 {
		n += 4 // masking key
	}
	return n
}

// WebSocket close status 1001, Going Away (RFC 6455 §7.4.1): the server is going down.
const (
	wsGoingAway   = 1001
	wsCloseReason = "shutting down"
)

// writeWSClose writes a close frame with status 1001 to w, masked (as a client's frames
// are, RFC 6455 §5.3) if masked is set.
func writeWSClose(w io.Writer, masked bool) error {
	var b [2 + 4 + 2 + len(wsCloseReason)]byte
	const n = 2 + len(wsCloseReason)
	b[0] = 0x80 | wsOpClose // FIN
	b[1] = byte(n)
	p := 2
	var key [4]byte
	if masked {
		b[1] |= 0x80
		rand.Read(key[:])
		copy(b[2:6], key[:])
		p = 6
	}
	binary.BigEndian.PutUint16(b[p:], wsGoingAway)
	copy(b[p+2:], wsCloseReason)
	if masked {
		for i := range n {
			b[p+i] ^= key[i&3]
		}
	}
	_, err := w.Write(b[:p+n])
	return err
}
