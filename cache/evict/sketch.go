package evict

import (
	"math/bits"
	"sync/atomic"
)

const (
	// sketchStripes is the number of counters the sketch's sample count is spread over, so
	// that concurrent readers do not all write one cache line.
	sketchStripes = 16
	resetMask     = 0x7777777777777777
	oneMask       = 0x1111111111111111
	// minSketchWords is the smallest sketch: 8 blocks of 64 bytes.
	minSketchWords = 64
)

// paddedCount is a counter alone on its cache line.
type paddedCount struct {
	n atomic.Int64
	_ [56]byte
}

// sketch is a count-min sketch of 4-bit counters (TinyLFU's frequency estimator). The
// four counters of a key lie in one 64-byte block, so an estimate or an increment touches
// one cache line. Counters saturate at 15, and when the number of increments reaches the
// sample size every counter is halved, so the sketch forgets old popularity.
//
// increment and estimate are safe for concurrent use and take no lock (counters are
// changed with compare-and-swap, and a saturated counter is not written at all, so the
// hottest keys cost readers no writes); reset must be called by one goroutine at a time,
// but may run while others increment.
type sketch struct {
	table      []atomic.Uint64
	blockMask  uint64
	sampleSize int64
	adds       [sketchStripes]paddedCount
}

// newSketch returns a sketch sized for about entries distinct keys.
func newSketch(entries int) *sketch {
	words := minSketchWords
	for words < entries {
		words <<= 1
	}
	return &sketch{
		table:      make([]atomic.Uint64, words),
		blockMask:  uint64(words>>3) - 1,
		sampleSize: 10 * int64(words),
	}
}

// counterHash spreads a key's hash over the bits that pick its four counters in a block.
func counterHash(h uint64) uint64 {
	h *= 0x9e3779b97f4a7c15
	return h ^ h>>29
}

// increment counts one access of the key with hash h.
func (s *sketch) increment(h uint64) {
	ch := counterHash(h)
	block := (h & s.blockMask) << 3
	added := s.incrementAt(block+(ch&1), (ch>>1)&15)
	added = s.incrementAt(block+2+(ch>>8&1), (ch>>9)&15) || added
	added = s.incrementAt(block+4+(ch>>16&1), (ch>>17)&15) || added
	added = s.incrementAt(block+6+(ch>>24&1), (ch>>25)&15) || added
	if added {
		s.adds[h>>60].n.Add(1)
	}
}

// incrementAt adds one to counter j of word i unless it is saturated, and reports whether
// it did.
func (s *sketch) incrementAt(i, j uint64) bool {
	shift := j << 2
	mask := uint64(0xf) << shift
	w := &s.table[i]
	for {
		v := w.Load()
		if v&mask == mask {
			return false
		}
		if w.CompareAndSwap(v, v+uint64(1)<<shift) {
			return true
		}
	}
}

// estimate returns the estimated access count of the key with hash h, 0 to 15.
func (s *sketch) estimate(h uint64) int {
	ch := counterHash(h)
	block := (h & s.blockMask) << 3
	f := s.counter(block+(ch&1), (ch>>1)&15)
	f = min(f, s.counter(block+2+(ch>>8&1), (ch>>9)&15))
	f = min(f, s.counter(block+4+(ch>>16&1), (ch>>17)&15))
	f = min(f, s.counter(block+6+(ch>>24&1), (ch>>25)&15))
	return int(f)
}

func (s *sketch) counter(i, j uint64) uint64 {
	return s.table[i].Load() >> (j << 2) & 0xf
}

// samples returns the number of increments since the last reset.
func (s *sketch) samples() int64 {
	var n int64
	for i := range s.adds {
		n += s.adds[i].n.Load()
	}
	return n
}

// maybeReset halves every counter once the sample size is reached. Only one goroutine
// may call it at a time.
func (s *sketch) maybeReset() {
	n := s.samples()
	if n < s.sampleSize {
		return
	}
	odd := 0
	for i := range s.table {
		w := &s.table[i]
		for {
			v := w.Load()
			if w.CompareAndSwap(v, v>>1&resetMask) {
				odd += bits.OnesCount64(v & oneMask)
				break
			}
		}
	}
	// Each halving of an odd counter loses half an increment: count the truncation so
	// the next sample period is as long as the first.
	for i := range s.adds {
		s.adds[i].n.Store(0)
	}
	s.adds[0].n.Store((n - int64(odd)/4) / 2)
}

// grown returns a sketch with twice s's counters that gives every key the estimate s
// gives it: a key's block index gains one bit, so both halves start as copies of s. Only
// the goroutine that may call maybeReset may call it; increments made to s meanwhile may
// be lost.
func (s *sketch) grown() *sketch {
	n := len(s.table)
	g := &sketch{
		table:      make([]atomic.Uint64, 2*n),
		blockMask:  uint64(2*n>>3) - 1,
		sampleSize: 2 * s.sampleSize,
	}
	for i := range s.table {
		v := s.table[i].Load()
		g.table[i].Store(v)
		g.table[i+n].Store(v)
	}
	g.adds[0].n.Store(s.samples())
	return g
}
