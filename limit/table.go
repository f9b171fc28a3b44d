package limit

import (
	"math/bits"
	"runtime"
	"sync/atomic"
	"unsafe"
)

// lineSlots is how many entries one line of a [table] holds.
const lineSlots = 5

// lineSize is the size of a line: one cache line.
const lineSize = 64

// line is one cache line of a [table] or a [growTable]: a lock word, then lineSlots entries, each a
// 32-bit tag (0 marks an empty slot) and a 64-bit value of the table's owner (a
// theoretical arrival time, a count). 4 + 5×4 + 5×8 = 64 bytes, so a check finds,
// reads and changes a key's entry in the one cache line its hash picks.
type line struct {
	state atomic.Uint32 // unlocked, locked or moved
	tags  [lineSlots]uint32
	vals  [lineSlots]int64
}

// Proof that a line is one cache line.
var _ [lineSize - unsafe.Sizeof(line{})]struct{}
var _ [unsafe.Sizeof(line{}) - lineSize]struct{}

// spins is how many times a locker reads a held line's lock before it yields.
const spins = 64

// The states of a line's lock word. A line is moved when a [growTable] has copied it
// into a bigger set of lines: it is never unlocked again, and a locker that finds it
// so looks for the key in the new set.
const (
	unlocked = 0
	locked   = 1
	moved    = 2
)

// lock takes the line's lock, and reports false, without it, if the line was moved.
// The lock is a word held for the few loads and stores of one check, so a spin lock:
// a goroutine that finds it held spins briefly, then yields its processor until it is
// free, so that a holder descheduled in the middle of a check gets to finish it.
func (l *line) lock() bool {
	if l.state.CompareAndSwap(unlocked, locked) {
		return true
	}
	return l.contend()
}

func (l *line) contend() bool {
	for i := 1; ; i++ {
		switch l.state.Load() {
		case moved:
			return false
		case unlocked:
			if l.state.CompareAndSwap(unlocked, locked) {
				return true
			}
		}
		if i%spins == 0 {
			runtime.Gosched()
		}
	}
}

// unlock gives the lock back.
func (l *line) unlock() { l.state.Store(unlocked) }

// find returns the slot of tag among the first room slots, or -1. The lock is held.
func (l *line) find(tag uint32, room int) int {
	for i := range l.tags[:room] {
		if l.tags[i] == tag {
			return i
		}
	}
	return -1
}

// free returns an empty slot among the first room, or -1. The lock is held.
func (l *line) free(room int) int {
	for i := range l.tags[:room] {
		if l.tags[i] == 0 {
			return i
		}
	}
	return -1
}

// count returns the entries of the line. The lock is held.
func (l *line) count() int {
	n := 0
	for _, t := range l.tags {
		if t != 0 {
			n++
		}
	}
	return n
}

// newLines returns n zeroed lines, each on a cache line of its own: the memory is
// allocated as bytes with a line's worth to spare, so that the first line starts on
// a cache line whatever the allocator's alignment.
func newLines(n int) []line {
	buf := make([]byte, (n+1)*lineSize)
	off := (lineSize - uintptr(unsafe.Pointer(unsafe.SliceData(buf)))%lineSize) % lineSize
	return unsafe.Slice((*line)(unsafe.Pointer(&buf[off])), n)
}

// table holds the state of up to maxKeys keys, by hash, in lines of lineSlots entries:
// a set-associative cache, as a processor's. A key's hash picks its line (from its
// high bits, by a multiply) and its tag (its low 32 bits, 0 read as 1); the key lives
// in that line or nowhere, so a check touches one cache line and takes its lock, and
// no lock or counter is shared by the lines. When a line is full its owner decides:
// [TokenBucket] evicts the entry it loses least by, [InFlight] refuses the new key.
//
// The lines are made with the table, ceil(maxKeys/5) of them, aligned on cache lines;
// the last one holds the remainder, so the room is maxKeys exactly: 12.8 bytes a key.
// Keys spread over the lines at random, so a line may fill before the table does: with
// a table holding n keys of room for m, a new key finds its line full with the
// chance that a Poisson variable of mean 5n/m is 5 or more (0.02% at n = m/10, 0.9%
// at n = m/4, 11% at n = m/2).
//
// Two keys share an entry when their hashes pick one line and one tag: for a key new
// to a line of k entries, a chance of k/2³², about one in 860 million at most. They
// then share its state (a bucket, a count), which makes the limit of each stricter,
// never looser, until the entry goes.
//
// A table is safe for concurrent use through its lines' locks; its lines never move.
type table struct {
	lines []line
	n     uint64 // len(lines)
	last  int    // room of the last line, 1 to lineSlots
}

func newTable(maxKeys int) table {
	n := (maxKeys + lineSlots - 1) / lineSlots
	return table{lines: newLines(n), n: uint64(n), last: maxKeys - (n-1)*lineSlots}
}

// locate returns the line of hash h, the room of that line, and h's tag.
func (t *table) locate(h uint64) (l *line, room int, tag uint32) {
	i, _ := bits.Mul64(h, t.n)
	room = lineSlots
	if i == t.n-1 {
		room = t.last
	}
	return &t.lines[i], room, tagOf(h)
}

// tagOf returns the tag of hash h: its low 32 bits, 0 read as 1 (0 marks an empty
// slot).
func tagOf(h uint64) uint32 {
	if tag := uint32(h); tag != 0 {
		return tag
	}
	return 1
}

// len returns the entries held, taking each line's lock in turn: a pass over the
// table's memory.
func (t *table) len() int {
	n := 0
	for i := range t.lines {
		l := &t.lines[i]
		l.lock() // the lines of a table never move
		n += l.count()
		l.unlock()
	}
	return n
}
