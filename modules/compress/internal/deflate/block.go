package deflate

import (
	"encoding/binary"
	"math/bits"
	"slices"
)

const (
	numLitCodes  = 286 // literals, end of block, 29 length codes
	numDistCodes = 30
	numCLCodes   = 19 // the code-length alphabet of a dynamic block's header
	endOfBlock   = 256

	maxCodeBits   = 15
	maxCLCodeBits = 7
)

// lengthExtra and lengthBase are RFC 1951's length codes 257 to 285, from 0.
var lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
var lengthBase = [29]uint16{0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 255}

// distExtra and distBase are RFC 1951's distance codes, with distances from 0.
var distExtra = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
var distBase = [30]uint16{0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192, 12288, 16384, 24576}

// lengthCode is the length code (from 0) of each length less 3.
var lengthCode = func() (t [256]uint8) {
	for c := range lengthBase {
		for l := int(lengthBase[c]); l < 256 && (c == len(lengthBase)-1 || l < int(lengthBase[c+1])); l++ {
			t[l] = uint8(c)
		}
	}
	return t
}()

// distCodes maps a distance less 1 to its code: below 256 directly, above by its
// value over 128 in the table's second half, as zlib's _dist_code.
var distCodes = func() (t [512]uint8) {
	for c := range distBase {
		lo, hi := int(distBase[c]), 1<<15
		if c+1 < len(distBase) {
			hi = int(distBase[c+1])
		}
		for d := lo; d < hi; d++ {
			if d < 256 {
				t[d] = uint8(c)
			} else {
				t[256+d>>7] = uint8(c)
			}
		}
	}
	return t
}()

func distCode(d int) uint8 {
	if d < 256 {
		return distCodes[d]
	}
	return distCodes[256+d>>7]
}

// clOrder is the order in which a dynamic header sends the code-length code's lengths.
var clOrder = [numCLCodes]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

// fixedLit and fixedDist are the fixed Huffman codes' lengths and codes.
var fixedLit, fixedDist = func() (lit code, dist code) {
	var ll [numLitCodes + 2]uint8
	for i := range ll {
		switch {
		case i < 144:
			ll[i] = 8
		case i < 256:
			ll[i] = 9
		case i < 280:
			ll[i] = 7
		default:
			ll[i] = 8
		}
	}
	lit.set(ll[:]) // all 288: the last two, never sent, have codes that count
	var dl [numDistCodes]uint8
	for i := range dl {
		dl[i] = 5
	}
	dist.set(dl[:])
	return lit, dist
}()

// code is a canonical Huffman code: each symbol's length, and its code with the bits
// reversed, as deflate sends codes from their first bit.
type code struct {
	lens  [numLitCodes + 2]uint8
	codes [numLitCodes + 2]uint16
}

// set makes the canonical code of lens.
func (c *code) set(lens []uint8) {
	var count [maxCodeBits + 1]uint16
	for _, l := range lens {
		count[l]++
	}
	count[0] = 0
	var next [maxCodeBits + 1]uint16
	v := uint16(0)
	for b := 1; b <= maxCodeBits; b++ {
		v = (v + count[b-1]) << 1
		next[b] = v
	}
	for s, l := range lens {
		c.lens[s] = l
		if l != 0 {
			c.codes[s] = bits.Reverse16(next[l]) >> (16 - l)
			next[l]++
		} else {
			c.codes[s] = 0
		}
	}
}

// huffCoder builds a block's codes; its arrays are scratch space kept between blocks.
type huffCoder struct {
	lit, dist, cl code

	leaves  [numLitCodes]uint64 // weight<<16 | symbol, sorted
	weights [2][2 * numLitCodes]uint64
	isLeaf  [maxCodeBits + 1][2 * numLitCodes]bool
	lens    [numLitCodes + numDistCodes]uint8

	// The run-length coded lengths of a dynamic header: symbols of the code-length
	// alphabet, each with its extra bits' value.
	clSyms  [numLitCodes + numDistCodes]uint8
	clExtra [numLitCodes + numDistCodes]uint8
	clFreq  [numCLCodes]uint32
	nsyms   int
}

// lengths sets lens to the lengths of an optimal prefix code for freq whose codes are
// at most maxBits long, by package-merge. A code is always given two symbols or more
// (symbols 0 and 1 stand in, with length 1, for those missing), as zlib does, so that
// every reader takes it as complete.
func (h *huffCoder) lengths(freq []uint32, maxBits int, lens []uint8) {
	n := 0
	for s, f := range freq {
		lens[s] = 0
		if f > 0 {
			h.leaves[n] = uint64(f)<<16 | uint64(s)
			n++
		}
	}
	if n <= 2 {
		for i := range n {
			lens[h.leaves[i]&0xffff] = 1
		}
		for s := 0; n < 2; s++ {
			if lens[s] == 0 {
				lens[s] = 1
				n++
			}
		}
		return
	}
	leaves := h.leaves[:n]
	slices.Sort(leaves)
	// The deepest list is the leaves alone; each list above merges the leaves with
	// the pairs of the list below.
	prev := h.weights[0][:0]
	for i, l := range leaves {
		prev = append(prev, l>>16)
		h.isLeaf[1][i] = true
	}
	for level := 2; level <= maxBits; level++ {
		cur := h.weights[(level+1)&1][:0] // not prev's: level 2 takes the other buffer
		flags := &h.isLeaf[level]
		pairs := len(prev) / 2
		i, j := 0, 0
		for i < n || j < pairs {
			if j == pairs || (i < n && leaves[i]>>16 <= prev[2*j]+prev[2*j+1]) {
				flags[len(cur)] = true
				cur = append(cur, leaves[i]>>16)
				i++
			} else {
				flags[len(cur)] = false
				cur = append(cur, prev[2*j]+prev[2*j+1])
				j++
			}
		}
		prev = cur
	}
	// The top list's first 2n-2 items are the code: a leaf's length is the number of
	// lists in which it is taken, directly or in a pair.
	k := 2*n - 2
	for level := maxBits; level >= 1 && k > 0; level-- {
		a := 0
		for _, leaf := range h.isLeaf[level][:k] {
			if leaf {
				a++
			}
		}
		for _, l := range leaves[:a] {
			lens[l&0xffff]++
		}
		k = 2 * (k - a)
	}
}

// writeBlock codes the block gathered, stored, with the fixed codes or with codes of
// its own, whichever is smallest, and starts the next. A block with no tokens is
// coded only if it is the last.
func (z *Writer) writeBlock(final bool) {
	if len(z.tokens) == 0 && !final {
		return
	}
	h := &z.hc
	z.litFreq[endOfBlock]++
	var extra int // the bits of the matches' extra bits, the same in every coding
	for c, f := range z.litFreq[257:] {
		extra += int(f) * int(lengthExtra[c])
	}
	for c, f := range z.distFreq {
		extra += int(f) * int(distExtra[c])
	}

	// Codes of its own.
	h.lengths(z.litFreq[:], maxCodeBits, h.lens[:numLitCodes])
	h.lit.set(h.lens[:numLitCodes])
	h.lengths(z.distFreq[:], maxCodeBits, h.lens[:numDistCodes])
	h.dist.set(h.lens[:numDistCodes])
	nlit, ndist := numLitCodes, numDistCodes
	for nlit > 257 && h.lit.lens[nlit-1] == 0 {
		nlit--
	}
	for ndist > 1 && h.dist.lens[ndist-1] == 0 {
		ndist--
	}
	ncl := h.runLengths(nlit, ndist)
	dynBits := 3 + 5 + 5 + 4 + 3*ncl + extra
	for i := range h.clSyms[:h.nsyms] {
		s := h.clSyms[i]
		dynBits += int(h.cl.lens[s]) + clExtraBits(s)
	}
	fixBits := 3 + extra
	for s, f := range z.litFreq {
		dynBits += int(f) * int(h.lit.lens[s])
		fixBits += int(f) * int(fixedLit.lens[s])
	}
	for s, f := range z.distFreq {
		dynBits += int(f) * int(h.dist.lens[s])
		fixBits += int(f) * 5
	}

	// Stored, if its bytes are still in the window: a header of 3 bits, the padding
	// to a byte, then 4 bytes of length for each 65,535 bytes.
	storedBits := -1
	n := z.covered - z.blockStart
	if z.blockStart >= 0 {
		storedBits = int((z.bw.n+3+7)&^7-z.bw.n) + 32 + 8*n + (n-1)/65535*(3+5+32)
	}

	switch {
	case storedBits >= 0 && storedBits <= min(dynBits, fixBits):
		z.writeStored(z.win[z.blockStart:z.covered], final)
	case fixBits <= dynBits:
		z.bw.bits(uint64(b2u(final))|1<<1, 3)
		z.writeTokens(&fixedLit, &fixedDist)
	default:
		z.bw.bits(uint64(b2u(final))|2<<1, 3)
		z.bw.bits(uint64(nlit-257), 5)
		z.bw.bits(uint64(ndist-1), 5)
		z.bw.bits(uint64(ncl-4), 4)
		for _, s := range clOrder[:ncl] {
			z.bw.bits(uint64(h.cl.lens[s]), 3)
		}
		for i := range h.clSyms[:h.nsyms] {
			s := h.clSyms[i]
			z.bw.bits(uint64(h.cl.codes[s]), uint(h.cl.lens[s]))
			if eb := clExtraBits(s); eb > 0 {
				z.bw.bits(uint64(h.clExtra[i]), uint(eb))
			}
		}
		z.writeTokens(&h.lit, &h.dist)
	}

	z.tokens = z.tokens[:0]
	z.litFreq = [numLitCodes]uint32{}
	z.distFreq = [numDistCodes]uint32{}
	z.blockStart = z.covered
}

func b2u(b bool) uint {
	if b {
		return 1
	}
	return 0
}

// clExtraBits is how many extra bits a code-length symbol has.
func clExtraBits(s uint8) int {
	switch s {
	case 16:
		return 2
	case 17:
		return 3
	case 18:
		return 7
	}
	return 0
}

// runLengths codes the lengths of the literal/length and distance codes (their first
// nlit and ndist) with the code-length alphabet's runs, builds that alphabet's code,
// and returns how many of its lengths the header sends.
func (h *huffCoder) runLengths(nlit, ndist int) int {
	lens := h.lens[:0]
	lens = append(lens, h.lit.lens[:nlit]...)
	lens = append(lens, h.dist.lens[:ndist]...)
	h.clFreq = [numCLCodes]uint32{}
	m := 0
	emit := func(s, extra uint8) {
		h.clSyms[m], h.clExtra[m] = s, extra
		h.clFreq[s]++
		m++
	}
	for i := 0; i < len(lens); {
		v := lens[i]
		run := 1
		for i+run < len(lens) && lens[i+run] == v {
			run++
		}
		i += run
		if v == 0 {
			for run >= 11 {
				r := min(run, 138)
				emit(18, uint8(r-11))
				run -= r
			}
			if run >= 3 {
				emit(17, uint8(run-3))
				run = 0
			}
		} else {
			emit(v, 0)
			run--
			for run >= 3 {
				r := min(run, 6)
				emit(16, uint8(r-3))
				run -= r
			}
		}
		for ; run > 0; run-- {
			emit(v, 0)
		}
	}
	h.nsyms = m
	var cl [numCLCodes]uint8
	h.lengths(h.clFreq[:], maxCLCodeBits, cl[:])
	h.cl.set(cl[:])
	ncl := numCLCodes
	for ncl > 4 && cl[clOrder[ncl-1]] == 0 {
		ncl--
	}
	return ncl
}

// writeTokens sends the block's tokens with the codes lit and dist, then its end.
func (z *Writer) writeTokens(lit, dist *code) {
	bw := &z.bw
	for _, t := range z.tokens {
		if t&matchFlag == 0 {
			bw.bits(uint64(lit.codes[t]), uint(lit.lens[t]))
			continue
		}
		l := t >> 16 & 0xff
		lc := lengthCode[l]
		bw.bits(uint64(lit.codes[257+int(lc)])|uint64(l-uint32(lengthBase[lc]))<<lit.lens[257+int(lc)],
			uint(lit.lens[257+int(lc)])+uint(lengthExtra[lc]))
		d := t & 0xffff
		dc := distCode(int(d))
		bw.bits(uint64(dist.codes[dc])|uint64(d-uint32(distBase[dc]))<<dist.lens[dc],
			uint(dist.lens[dc])+uint(distExtra[dc]))
	}
	bw.bits(uint64(lit.codes[endOfBlock]), uint(lit.lens[endOfBlock]))
}

// writeStored sends b as stored blocks of up to 65,535 bytes, the last final if final.
func (z *Writer) writeStored(b []byte, final bool) {
	for {
		n := min(len(b), 65535)
		last := n == len(b)
		z.bw.bits(uint64(b2u(final && last)), 3)
		z.bw.align()
		z.bw.out = binary.LittleEndian.AppendUint16(z.bw.out, uint16(n))
		z.bw.out = binary.LittleEndian.AppendUint16(z.bw.out, ^uint16(n))
		z.bw.out = append(z.bw.out, b[:n]...)
		b = b[n:]
		if last {
			return
		}
	}
}

// bitWriter gathers bits from the least significant, as deflate sends them, into out.
type bitWriter struct {
	acc uint64
	n   uint
	out []byte
}

func (w *bitWriter) reset() {
	w.acc, w.n = 0, 0
	w.out = w.out[:0]
}

// bits adds the nb low bits of v; nb is at most 32.
func (w *bitWriter) bits(v uint64, nb uint) {
	w.acc |= v << w.n
	w.n += nb
	if w.n >= 32 {
		w.out = binary.LittleEndian.AppendUint32(w.out, uint32(w.acc))
		w.acc >>= 32
		w.n -= 32
	}
}

// align pads to a byte and moves the whole bytes to out.
func (w *bitWriter) align() {
	w.n = (w.n + 7) &^ 7
	for w.n > 0 {
		w.out = append(w.out, byte(w.acc))
		w.acc >>= 8
		w.n -= 8
	}
}
