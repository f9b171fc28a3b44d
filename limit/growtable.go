package limit

import (
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
)

// growTable is the table of an [InFlight]: lines of lineSlots entries, as a [table]'s,
// whose number grows by doubling as keys come, from a few dozen up to the most that
// MaxKeys allows, so that the lines in use stay few (and in the cache) when few keys
// have requests running. Each entry's value holds the high 32 bits of its key's hash
// above a 32-bit count, and its tag the low 32 bits, so an entry can be moved: the
// line of a hash is picked by its high bits, and doubling the lines splits line i into
// lines 2i and 2i+1, which never overflow.
//
// The lines number m×2^k with m in [32, 64) (fewer for a small MaxKeys), at most
// maxKeys/5 of them, so the room is at most maxKeys and more than 96% of it when the
// table has grown whole. A new key whose line is full makes the table grow, if it may;
// the table never shrinks, keeping the room of the most keys it held. A table a
// tenth full makes a new key find its line full once in 5,800 keys, a twentieth full
// once in 150,000: keys coming and going make it grow seldom once it is some ten times
// the keys held.
//
// Growing takes the grow lock, then each line's lock in turn: it copies the line into
// the new set and leaves it moved. A goroutine that finds its line moved waits for the
// new set and looks there; the others go on meanwhile.
type growTable struct {
	cur      atomic.Pointer[lineSet]
	maxLines int
	room     int        // entries per line: lineSlots, or fewer when maxKeys is
	mu       sync.Mutex // held while growing
}

// lineSet is one size of a [growTable]'s lines.
type lineSet struct {
	lines []line
	n     uint64
}

// line returns the line of hash h: the high 32 bits of h, scaled to the lines.
func (s *lineSet) line(h uint64) *line { return &s.lines[(h>>32)*s.n>>32] }

// flightVal makes the value of an entry: the high bits of hash h over count.
func flightVal(h uint64, count int64) int64 { return int64(h>>32<<32) | count }

// flightCount returns the count of an entry's value.
func flightCount(v int64) int64 { return int64(uint32(v)) }

// findHash returns the slot, among the first room, of the entry of hash h: its tag and
// the high bits of its value are h's, so that two keys share an entry only when their
// whole hashes are equal (or differ only in that h's tag 0 is read as 1), and then
// move together when the table grows. The lock is held.
func (l *line) findHash(h uint64, room int) int {
	tag := tagOf(h)
	for i := range l.tags[:room] {
		if l.tags[i] == tag && uint64(l.vals[i])>>32 == h>>32 {
			return i
		}
	}
	return -1
}

func newGrowTable(maxKeys int) *growTable {
	t := &growTable{room: min(maxKeys, lineSlots)}
	// The most lines: m×2^k, m in [32, 64), at most maxKeys/lineSlots (or one line).
	most := max(maxKeys/lineSlots, 1)
	start := most
	for start >= 64 {
		start >>= 1
	}
	t.maxLines = start << (bits.Len(uint(most)) - bits.Len(uint(start)))
	t.cur.Store(&lineSet{lines: newLines(start), n: uint64(start)})
	return t
}

// lock returns the line of h, locked, in the current set, and that set.
func (t *growTable) lock(h uint64) (*line, *lineSet) {
	for {
		s := t.cur.Load()
		l := s.line(h)
		if l.lock() {
			return l, s
		}
		t.await(s)
	}
}

// await waits for the table to have a set other than s: s is being moved.
func (t *growTable) await(s *lineSet) {
	for i := 1; t.cur.Load() == s; i++ {
		if i%spins == 0 {
			runtime.Gosched()
		}
	}
}

// grow doubles the lines of s, unless the table has grown from s already, and reports
// whether the table has other lines than s now: false when s is as big as may be.
func (t *growTable) grow(s *lineSet) bool {
	t.mu.Lock()
	if t.cur.Load() != s {
		t.mu.Unlock()
		return true
	}
	if len(s.lines) >= t.maxLines {
		t.mu.Unlock()
		return false
	}
	n := 2 * len(s.lines)
	next := &lineSet{lines: newLines(n), n: uint64(n)}
	for i := range s.lines {
		l := &s.lines[i]
		l.lock() // only grow moves lines, and it holds mu
		for j, tag := range l.tags {
			if tag == 0 {
				continue
			}
			v := l.vals[j]
			nl := next.line(uint64(v)>>32<<32 | uint64(tag))
			k := nl.free(t.room) // never -1: the line's entries split over two lines
			nl.tags[k], nl.vals[k] = tag, v
		}
		l.state.Store(moved)
	}
	t.cur.Store(next)
	t.mu.Unlock()
	return true
}

// len returns the entries held: a pass over the lines, taking each one's lock.
func (t *growTable) len() int {
again:
	s := t.cur.Load()
	n := 0
	for i := range s.lines {
		l := &s.lines[i]
		if !l.lock() {
			t.await(s)
			goto again
		}
		n += l.count()
		l.unlock()
	}
	return n
}
