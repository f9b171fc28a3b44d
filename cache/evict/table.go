package evict

import "sync/atomic"

// minTableSlots is the smallest hash table.
const minTableSlots = 16

// table is an open-addressing hash table with linear probing whose slots are atomic
// pointers to entries. Readers probe it without a lock; one writer at a time (holding
// the cache's mutex) changes it. A removed entry leaves a tombstone so that probes for
// keys placed after it still find them; when live entries and tombstones fill three
// quarters of the slots, the writer builds a new table and publishes it with one atomic
// store. A reader still probing the old table sees the entries as they were, which is a
// read that happened just before the writes since.
//
// Every table keeps at least one nil slot, so a probe always ends.
type table[K comparable, V any] struct {
	slots []atomic.Pointer[entry[K, V]]
	mask  uint64
	// tomb marks a slot whose entry was removed. Each table has its own.
	tomb *entry[K, V]
	// live and used (live plus tombstones) are changed only by the writer.
	live, used int
}

func newTable[K comparable, V any](slots int) *table[K, V] {
	n := minTableSlots
	for n < slots {
		n <<= 1
	}
	return &table[K, V]{
		slots: make([]atomic.Pointer[entry[K, V]], n),
		mask:  uint64(n - 1),
		tomb:  new(entry[K, V]),
	}
}

// get returns the entry for key, or nil. It is safe for concurrent use with one writer.
func (t *table[K, V]) get(h uint64, key K) *entry[K, V] {
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		e := t.slots[i].Load()
		if e == nil {
			return nil
		}
		if e.hash == h && e != t.tomb && e.key == key {
			return e
		}
	}
}

// find returns the slot index of key's entry, or -1 and the index where it would be
// inserted (the first tombstone or nil slot on its probe path). Writer only.
func (t *table[K, V]) find(h uint64, key K) (at int, free int) {
	free = -1
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		e := t.slots[i].Load()
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
	if t.slots[i].Load() == nil {
		t.used++
	}
	t.live++
	t.slots[i].Store(e)
}

// removeAt leaves a tombstone in slot i. Writer only.
func (t *table[K, V]) removeAt(i int) {
	t.live--
	t.slots[i].Store(t.tomb)
}

// rebuilt returns a new table holding t's live entries, sized for about twice as many.
// Writer only; t is left as it was for readers still probing it.
func (t *table[K, V]) rebuilt(live int) *table[K, V] {
	nt := newTable[K, V](max(live, 1) * 2)
	for i := range t.slots {
		e := t.slots[i].Load()
		if e == nil || e == t.tomb {
			continue
		}
		for j := e.hash & nt.mask; ; j = (j + 1) & nt.mask {
			if nt.slots[j].Load() == nil {
				nt.slots[j].Store(e)
				break
			}
		}
		nt.live++
		nt.used++
	}
	return nt
}
