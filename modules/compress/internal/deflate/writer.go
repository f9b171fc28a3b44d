package deflate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/bits"
	"unsafe"
)

const (
	windowSize = 1 << 15 // deflate's largest distance
	windowMask = windowSize - 1
	bufSize    = 2 * windowSize // the window and as much again of input to come

	minMatch = 4 // the hash covers four bytes, so no shorter match is found
	maxMatch = 258

	// minLookahead is how much input after a position the matcher wants before it
	// codes the position, unless it is flushing: a longest match and the next hash.
	minLookahead = maxMatch + minMatch + 1
	// maxDist is the farthest match the matcher takes, as zlib's: a little under
	// the window, so that a chain never reaches a slot the current position reuses.
	maxDist = windowSize - minLookahead

	// tooFar is the farthest a match of minMatch bytes may be: one farther costs
	// about as many bits as its four literals.
	tooFar = 4096

	hashBits = 15
	hashSize = 1 << hashBits

	// maxTokens is how many tokens a block holds, as zlib's at its default memLevel.
	maxTokens = 1<<14 - 1

	// posStart is the position of the first byte of a writer's first stream: above
	// zero, so that the zeroed tables' entries (position 0) are out of its window.
	posStart = 1 << 16
	// posLimit is the position past which the tables are cleared and positions start
	// again at posStart, before they overflow an int32.
	posLimit = 1<<31 - 4*bufSize

	// outFlush is how much coded output is held before it is written on.
	outFlush = 32 << 10

	matchFlag = 1 << 31
)

// params are zlib's limits for one level.
type params struct {
	good  int // a match this long makes the matcher look at a quarter of the chain
	lazy  int // a match this long is taken without looking at the next position
	nice  int // a match this long ends the search
	chain int // how many candidates the search looks at
}

// levels are zlib's parameters for its lazy levels, 4 to 9 (deflate.c).
var levels = [10]params{
	4: {4, 4, 16, 16},
	5: {8, 16, 32, 32},
	6: {8, 16, 128, 128},
	7: {8, 32, 128, 256},
	8: {32, 128, 258, 1024},
	9: {32, 258, 258, 4096},
}

// MinLevel and MaxLevel bound the levels a [Writer] takes.
const (
	MinLevel = 4
	MaxLevel = 9
)

// ErrClosed is returned by a write to a closed [Writer].
var ErrClosed = errors.New("deflate: write to a closed writer")

// Writer is a gzip writer: [Writer.Write] buffers, [Writer.Flush] codes what was
// written and ends it with a sync flush (an empty stored block), so that what the
// reader has decodes up to there, and [Writer.Close] ends the stream.
type Writer struct {
	p   params
	dst io.Writer
	err error

	// The window: win[:end] is input, win[:pos] has been coded (but for a pending
	// literal or match, below), and win[i] is the byte at position base+i.
	base int
	pos  int
	end  int

	// The lazy matcher's state between positions: the longest match found at pos-1
	// and whether the byte at pos-1 is waiting to be coded.
	prevLen   int
	prevDist  int
	available bool

	crc    uint32
	size   uint32
	closed bool
	dirty  bool // input written since the last flush

	// The block being gathered: its tokens, their frequencies, and the window index
	// of its first byte (negative once the window has slid past it, when it can no
	// longer be sent stored).
	tokens     []uint32
	blockStart int
	covered    int // the window index after the last coded byte

	bw bitWriter
	hc huffCoder

	litFreq  [numLitCodes]uint32
	distFreq [numDistCodes]uint32

	head [hashSize]int32    // the last position of each hash
	prev [windowSize]uint16 // by window index: how far back its hash was before, 0 if beyond reach
	win  [bufSize]byte
}

// NewWriter returns a gzip Writer at level (4 to 9) writing to w.
func NewWriter(w io.Writer, level int) (*Writer, error) {
	if level < MinLevel || level > MaxLevel {
		return nil, fmt.Errorf("deflate: level %d is not between %d and %d", level, MinLevel, MaxLevel)
	}
	z := &Writer{p: levels[level], tokens: make([]uint32, 0, maxTokens)}
	z.base = posStart
	z.Reset(w)
	return z, nil
}

// Reset discards the writer's state and makes it write a new stream to w, at the
// same level. Nothing is cleared: the positions the tables hold of the streams before
// are all out of the new one's window.
func (z *Writer) Reset(w io.Writer) {
	// The next stream starts a window or more after this one's end, on a multiple of
	// the window, so that a window index and its position agree modulo the window.
	next := (z.base + z.end + 2*windowSize) &^ windowMask
	if next > posLimit {
		z.head = [hashSize]int32{}
		next = posStart
	}
	z.base = next
	z.dst = w
	z.err = nil
	z.pos, z.end = 0, 0
	z.prevLen, z.prevDist, z.available = minMatch-1, 0, false
	z.crc, z.size = 0, 0
	z.closed, z.dirty = false, false
	z.tokens = z.tokens[:0]
	z.blockStart, z.covered = 0, 0
	z.litFreq = [numLitCodes]uint32{}
	z.distFreq = [numDistCodes]uint32{}
	z.bw.reset()
	// The gzip header: no name, no time, no extra flags, an unknown system.
	z.bw.out = append(z.bw.out, 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255)
}

// Write takes p into the stream. Input is coded as the window fills, and all of it
// by Flush and Close.
func (z *Writer) Write(p []byte) (int, error) {
	if z.err != nil {
		return 0, z.err
	}
	if z.closed {
		return 0, ErrClosed
	}
	n := len(p)
	if n == 0 {
		return 0, nil
	}
	z.crc = crc32.Update(z.crc, crc32.IEEETable, p)
	z.size += uint32(n)
	z.dirty = true
	for len(p) > 0 {
		if z.end == bufSize {
			z.deflate(false)
			z.slide()
			if len(z.bw.out) >= outFlush { // the output of a long write goes on as it comes
				z.send()
			}
		}
		c := copy(z.win[z.end:], p)
		z.end += c
		p = p[c:]
	}
	return n, z.err
}

// Flush codes all the input written and ends it with a sync flush, then writes the
// output on. A flush with no input since the last one writes nothing.
func (z *Writer) Flush() error {
	if z.err != nil || z.closed || !z.dirty {
		return z.err
	}
	z.dirty = false
	z.deflate(true)
	z.writeBlock(false)
	// An empty stored block: a byte-aligned end that every reader decodes up to.
	z.bw.bits(0, 3)
	z.bw.align()
	z.bw.out = append(z.bw.out, 0, 0, 0xff, 0xff)
	z.send()
	return z.err
}

// Close codes the rest of the input, ends the stream and writes it on. It does not
// close the underlying writer.
func (z *Writer) Close() error {
	if z.err != nil || z.closed {
		return z.err
	}
	z.closed = true
	z.deflate(true)
	z.writeBlock(true)
	z.bw.align()
	z.bw.out = binary.LittleEndian.AppendUint32(z.bw.out, z.crc)
	z.bw.out = binary.LittleEndian.AppendUint32(z.bw.out, z.size)
	z.send()
	return z.err
}

// send writes the coded output on.
func (z *Writer) send() {
	if len(z.bw.out) == 0 || z.err != nil {
		return
	}
	if _, err := z.dst.Write(z.bw.out); err != nil {
		z.err = fmt.Errorf("deflate: %w", err)
	}
	z.bw.out = z.bw.out[:0]
}

// slide moves the window's second half down over its first, once the matcher has
// coded all but the lookahead of a full window. Positions do not change, so the tables
// need nothing done.
func (z *Writer) slide() {
	copy(z.win[:], z.win[windowSize:z.end])
	z.base += windowSize
	z.pos -= windowSize
	z.end -= windowSize
	z.covered -= windowSize
	z.blockStart -= windowSize
}

func load32(b []byte, i int) uint32 { return binary.LittleEndian.Uint32(b[i:]) }

func hash4(u uint32) uint32 { return (u * 0x9e3779b1) >> (32 - hashBits) }

// insert puts the position of window index i in its hash chain and returns the
// window index of the chain's previous head, or -1 if it has none in reach.
func (z *Writer) insert(i int) int {
	h := hash4(load32(z.win[:], i))
	p := int32(z.base + i)
	d := p - z.head[h]
	z.head[h] = p
	if d > maxDist {
		z.prev[i&windowMask] = 0
		return -1
	}
	z.prev[i&windowMask] = uint16(d)
	return i - int(d)
}

// deflate runs zlib's lazy matching (deflate_slow) over the window: up to the
// lookahead, or to the end of the input when flushing.
func (z *Writer) deflate(flush bool) {
	limit := z.end - minLookahead
	if flush {
		limit = z.end
	}
	for z.pos < limit {
		pos := z.pos
		length, dist := minMatch-1, 0
		if z.end-pos >= minMatch {
			cand := z.insert(pos)
			if z.prevLen < z.p.lazy && cand >= 0 { // (insert keeps it within maxDist)
				length, dist = z.findMatch(pos, cand)
			}
		}
		if z.prevLen >= minMatch && length <= z.prevLen {
			// The match at pos-1 is at least as long as the one at pos: code it.
			z.match(z.prevLen, z.prevDist, pos-1)
			next := pos - 1 + z.prevLen
			stop := min(next, z.end-minMatch+1)
			for i := pos + 1; i < stop; i++ {
				z.insert(i)
			}
			z.pos = next
			z.available = false
			z.prevLen = minMatch - 1
			continue
		}
		if z.available {
			z.literal(pos - 1)
		}
		z.available = true
		z.prevLen, z.prevDist = length, dist
		z.pos = pos + 1
	}
	if flush && z.available {
		z.literal(z.pos - 1)
		z.available = false
		z.prevLen = minMatch - 1
	}
}

// findMatch returns the longest match at window index pos longer than the pending
// one, walking the hash chain from cand, as zlib's longest_match; or a length of
// minMatch-1 if there is none longer (the pending match then stands).
func (z *Writer) findMatch(pos, cand int) (length, dist int) {
	win := z.win[:z.end]
	best := z.prevLen
	maxLen := min(maxMatch, len(win)-pos)
	if best >= maxLen {
		return minMatch - 1, 0
	}
	nice := min(z.p.nice, maxLen)
	tries := z.p.chain
	if best >= z.p.good {
		tries >>= 2
	}
	length = minMatch - 1
	floor := max(pos-maxDist, 0)
	cur := win[pos : pos+maxLen]
	w0 := unsafe.Pointer(&z.win)
	tail := *(*uint32)(unsafe.Add(w0, pos+best-3))
	prev := &z.prev
	for {
		// A longer match has the four bytes up to best's end in common. cand+best
		// is below pos+maxLen, within the input: the load needs no check.
		if *(*uint32)(unsafe.Add(w0, cand+best-3)) == tail {
			if n := matchLen(win[cand:], cur); n > best && (n > minMatch || pos-cand <= tooFar) {
				best, length, dist = n, n, pos-cand
				if n >= nice {
					break
				}
				tail = *(*uint32)(unsafe.Add(w0, pos+best-3))
			}
		}
		if tries--; tries == 0 {
			break
		}
		d := int(prev[cand&windowMask])
		if d == 0 || cand-d < floor {
			break
		}
		cand -= d
	}
	return length, dist
}

// matchLen returns how many bytes a and b have in common at their start, up to
// len(b); a is at least as long as b.
func matchLen(a, b []byte) int {
	n := 0
	for len(b)-n >= 8 {
		if x := binary.LittleEndian.Uint64(a[n:]) ^ binary.LittleEndian.Uint64(b[n:]); x != 0 {
			return n + bits.TrailingZeros64(x)>>3
		}
		n += 8
	}
	for n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// literal codes the byte at window index i.
func (z *Writer) literal(i int) {
	c := z.win[i]
	z.litFreq[c]++
	z.tokens = append(z.tokens, uint32(c))
	z.covered = i + 1
	if len(z.tokens) == maxTokens {
		z.writeBlock(false)
	}
}

// match codes a match of length bytes at distance dist, starting at window index i.
func (z *Writer) match(length, dist, i int) {
	z.litFreq[257+int(lengthCode[length-3])]++
	z.distFreq[distCode(dist-1)]++
	z.tokens = append(z.tokens, matchFlag|uint32(length-3)<<16|uint32(dist-1))
	z.covered = i + length
	if len(z.tokens) == maxTokens {
		z.writeBlock(false)
	}
}
