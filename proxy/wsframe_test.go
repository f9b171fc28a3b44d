package proxy

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// wsFrame encodes one WebSocket frame (RFC 6455 §5.2) with FIN set.
func wsFrame(op byte, masked bool, payload []byte) []byte {
	b := []byte{0x80 | op, 0}
	switch n := len(payload); {
	case n < 126:
		b[1] = byte(n)
	case n <= 0xffff:
		b[1] = 126
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b[1] = 127
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if !masked {
		return append(b, payload...)
	}
	b[1] |= 0x80
	key := [4]byte{1, 2, 3, 4}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i&3])
	}
	return b
}

// wsStream returns frames of every header form, masked or not, one after another, and
// the offsets where each ends.
func wsStream(masked bool) (stream []byte, ends []int) {
	for i, n := range []int{0, 1, 125, 126, 127, 4096, 65535, 65536, 70000, 3} {
		op := byte(0x2)
		if i%4 == 3 {
			op = 0x9 // a ping between data frames
		}
		stream = append(stream, wsFrame(op, masked, bytes.Repeat([]byte{byte(i)}, n))...)
		ends = append(ends, len(stream))
	}
	return stream, ends
}

// chunks cuts b into pieces of random sizes, 1 to max bytes.
func chunks(r *rand.Rand, b []byte, max int) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		n := min(1+r.IntN(max), len(b))
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

// The tracker sees a boundary exactly at the end of each frame, however the stream is
// cut into reads.
func TestWSFramesBoundaries(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, masked := range []bool{false, true} {
		stream, ends := wsStream(masked)
		isEnd := map[int]bool{0: true}
		for _, e := range ends {
			isEnd[e] = true
		}
		for _, max := range []int{1, 3, 14, 1000, 16 << 10} {
			var f wsFrames
			pos := 0
			for _, c := range chunks(r, stream, max) {
				// Byte by byte where stop is asked: each stop must be a frame end.
				for len(c) > 0 {
					k := f.feed(c, true)
					if (k < len(c) || f.boundary()) && (!isEnd[pos+k] || !f.boundary()) {
						t.Fatalf("masked %v, reads of ≤%d: stopped at %d, not a frame end", masked, max, pos+k)
					}
					if k == 0 {
						k = f.feed(c[:1], false)
					}
					pos += k
					c = c[k:]
				}
				if f.boundary() != isEnd[pos] {
					t.Fatalf("masked %v, reads of ≤%d: boundary %v at %d", masked, max, f.boundary(), pos)
				}
			}
			if f.sawClose {
				t.Fatal("a close frame seen where there is none")
			}
		}
	}
}

// relay, once the tunnel drains, passes the frames up to the next boundary, puts a close
// frame with status 1001 in (masked toward the peer), and drops the rest; and it puts
// none in if the source's own close went through.
func TestWSDirRelayDrain(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, masked := range []bool{false, true} {
		stream, ends := wsStream(!masked) // a peer's frames go to the client unmasked, and back
		for round := range 200 {
			pieces := chunks(r, stream, 1+r.IntN(20000))
			from := r.IntN(len(pieces)) // the drain begins before this read
			d := &wsDir{masked: masked}
			var out bytes.Buffer
			pos := 0
			for i, p := range pieces {
				if err := d.relay(&out, p, i >= from); err != nil {
					t.Fatal(err)
				}
				if i < from {
					pos += len(p)
				}
			}
			cut := len(stream)
			for _, e := range append([]int{0}, ends...) {
				if e >= pos {
					cut = e
					break
				}
			}
			got := out.Bytes()
			if !bytes.Equal(got[:min(cut, len(got))], stream[:cut]) {
				t.Fatalf("round %d: the frames relayed differ from the source's", round)
			}
			checkClose(t, got[cut:], masked)
			if !d.injected || d.done.Load() {
				t.Fatalf("round %d: injected %v, done %v", round, d.injected, d.done.Load())
			}
		}
	}

	// The source closed first (the client began the closing handshake): its close goes
	// through and the proxy adds none.
	var out bytes.Buffer
	d := &wsDir{}
	cl := wsFrame(wsOpClose, false, []byte{0x03, 0xe8})
	d.relay(&out, append(wsFrame(0x1, false, []byte("bye")), cl...), false)
	d.relay(&out, wsFrame(0x1, false, []byte("late")), true)
	if want := append(wsFrame(0x1, false, []byte("bye")), cl...); !bytes.Equal(out.Bytes(), want) || d.injected || !d.done.Load() {
		t.Fatalf("relayed % x, injected %v, done %v", out.Bytes(), d.injected, d.done.Load())
	}
}

// checkClose checks that b is exactly one close frame with status 1001, masked or not.
func checkClose(t *testing.T, b []byte, masked bool) {
	t.Helper()
	if len(b) < 2 || b[0] != 0x88 || (b[1]&0x80 != 0) != masked {
		t.Fatalf("not a close frame (masked %v): % x", masked, b)
	}
	n := int(b[1] & 0x7f)
	p := b[2:]
	if masked {
		key := p[:4]
		p = bytes.Clone(p[4:])
		for i := range p {
			p[i] ^= key[i&3]
		}
	}
	if len(p) != n || binary.BigEndian.Uint16(p) != 1001 {
		t.Fatalf("close frame payload % x (length %d)", p, n)
	}
}

// FuzzWSFrames checks that the tracker ends in the same state however the stream is
// cut into reads, and never takes more than it is given.
func FuzzWSFrames(f *testing.F) {
	s, _ := wsStream(true)
	f.Add(s[:300], uint8(7))
	f.Add(wsFrame(wsOpClose, false, []byte{3, 0xe9}), uint8(1))
	f.Add([]byte{0x82, 0xff, 0, 0, 0, 0, 0, 0, 0, 1}, uint8(2))
	f.Fuzz(func(t *testing.T, b []byte, step uint8) {
		var whole, cut wsFrames
		if n := whole.feed(b, false); n != len(b) {
			t.Fatalf("took %d of %d", n, len(b))
		}
		st := int(step) + 1
		for i := 0; i < len(b); i += st {
			p := b[i:min(i+st, len(b))]
			if k := cut.feed(p, true); k > len(p) {
				t.Fatalf("took %d of %d", k, len(p))
			} else {
				cut.feed(p[k:], false)
			}
		}
		if whole != cut {
			t.Fatalf("state %+v whole, %+v in reads of %d", whole, cut, st)
		}
	})
}
