package evict

import "sync/atomic"

// minTableSlots is the smallest hash table.
const minTableSlots = 16

// table is an open-addressing hash table with linear probing whose slots hold an atomic
// pointer to an entry and, beside it, the entry's hash, so that a probe passes over other
// keys' slots without loading their entries. Readers probe it without a lock; one writer at a time (holding
// the cache's mutex) changes it. A removed entry leaves a tombstone so that probes for
// keys placed after it still find them; when live entries and tombstones fill three
// quarters of the slots, the writer builds a new table and publishes it with one atomic
// store. A reader still probing the old table sees the entries as they were, which is a
// read that happened just before the writes since.
//
// Every table keeps at least one nil slot, so a probe always ends.
type table[K comparable, V any] struct {
	slots []slot[K, V]
	mask  uint64
	// tomb marks a slot whose entry was removed. Each table has its own.
	tomb *entry[K, V]
	// live and used (live plus tombstones) are changed only by the writer.
	live, used int
}

// slot is one table position. A writer stores hash before e, and a reader loads e before
// hash, so a reader that sees an entry sees its hash or a later one; a stale hash only
// makes it compare the entry's key, which it does anyway.
type slot[K comparable, V any] struct {
	hash atomic.Uint64
	e    atomic.Pointer[entry[K, V]]
}

func newTable[K comparable, V any](slots int) *table[K, V] {
	n := minTableSlots
	for n < slots {
		n <<= 1
	}
	return &table[K, V]{
		slots: make([]slot[K, V], n),
		mask:  uint64(n - 1),
		tomb:  new(entry[K, V]),
	}
}

// get returns the entry for key, or nil. It is safe for concurrent use with one writer.
func (t *table[K, V]) get(h uint64, key K) *entry[K, V] {
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		e := s.e.Load()
		if e == nil {
			return nil
		}
		if s.hash.Load() == h && e != t.tomb && e.key == key {
			return e
		}
	}
}

// find returns the slot index of key's entry, or -1 and the index where it would be
// inserted (the first tombstone or nil slot on its probe path). Writer only.
func (t *table[K, V]) find(h uint64, key K) (at int, free int) {
	free = -1
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		e := t.slots[i].e.Load()
		if e == nil {
			if free < 0 {
				free = int(i)
			}
			return -1, free
		}
		if e == t.tomb {
			if free < 0 {
				free = int(i)
			}
			continue
		}
		if e.hash == h && e.key == key {
			return int(i), free
		}
	}
}

// full reports whether inserting one more entry into a nil slot would pass the load
// limit. Writer only.
func (t *table[K, V]) full() bool {
	return (t.used+1)*4 > len(t.slots)*3
}

// insertAt stores e in the free slot i returned by find. Writer only.
func (t *table[K, V]) insertAt(i int, e *entry[K, V]) {
	s := &t.slots[i]
	if s.e.Load() == nil {
		t.used++
	}
	t.live++
	s.hash.Store(e.hash)
	s.e.Store(e)
}

// entryAt returns the entry in slot i. Writer only.
func (t *table[K, V]) entryAt(i int) *entry[K, V] { return t.slots[i].e.Load() }

// replaceAt puts e, whose key is the one in slot i, in slot i. Writer only.
func (t *table[K, V]) replaceAt(i int, e *entry[K, V]) { t.slots[i].e.Store(e) }

// removeAt leaves a tombstone in slot i. Writer only.
func (t *table[K, V]) removeAt(i int) {
	t.live--
	t.slots[i].e.Store(t.tomb)
}

// rebuilt returns a new table holding t's live entries, sized for about twice as many.
// Writer only; t is left as it was for readers still probing it.
func (t *table[K, V]) rebuilt(live int) *table[K, V] {
	nt := newTable[K, V](max(live, 1) * 2)
	for i := range t.slots {
		e := t.slots[i].e.Load()
		if e == nil || e == t.tomb {
			continue
		}
		for j := e.hash & nt.mask; ; j = (j + 1) & nt.mask {
			if s := &nt.slots[j]; s.e.Load() == nil {
				s.hash.Store(e.hash)
				s.e.Store(e)
				break
			}
		}
		nt.live++
		nt.used++
	}
	return nt
}
