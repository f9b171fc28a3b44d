package limit

// maxShards is the number of shards of the keyed limiters, at most: enough that two
// requests seldom wait for one lock, few enough that their fixed cost stays small.
const maxShards = 64

// shardCaps splits maxKeys over the shards: a power of two of them, at most maxShards
// and at most maxKeys, whose capacities add up to maxKeys exactly.
func shardCaps(maxKeys int) []int {
	n := 1
	for n*2 <= maxShards && n*2 <= maxKeys {
		n *= 2
	}
	caps := make([]int, n)
	for i := range caps {
		caps[i] = maxKeys / n
		if i < maxKeys%n {
			caps[i]++
		}
	}
	return caps
}

// shardOf picks a shard from a key's hash; the bits it uses are not those the maps
// inside a shard depend on most.
func shardOf(h uint64, n int) int { return int((h >> 58) & uint64(n-1)) }

// slot is an entry of a [table]: a key's hash as its tag, and a value of its owner's.
// A tag has bit 1 set, so that no tag is zero (zero marks an empty slot), and bit 0 is
// the owner's (TokenBucket's use bit); its other bits are the hash's.
type slot struct {
	tag uint64
	val int64
}

// tagOf returns the tag of hash h, bit 0 clear.
func tagOf(h uint64) uint64 { return h&^3 | 2 }

// table is the hash table of a shard: open addressing with linear probing, in one
// slice of 16-byte slots, so that finding a key reads one cache line or two, where a
// Go map with a separate slice of entries reads three or more. It holds at most max
// entries and grows by doubling, up to the least power of two that keeps max entries
// at most 3/4 full; removal shifts the entries after the hole back, so no tombstones
// accumulate. Not safe for concurrent use: its shard's lock guards it.
type table struct {
	slots []slot
	mask  uint64
	n     int // entries held
	max   int // entries allowed
}

// home is the slot where tag's probe starts; the bits it takes from the hash are not
// those shardOf takes.
func (t *table) home(tag uint64) uint64 { return (tag >> 2) & t.mask }

// find returns the index of tag's slot (tag's bit 0 clear), or -1.
func (t *table) find(tag uint64) int {
	i, ok := t.lookup(tag)
	if !ok {
		return -1
	}
	return i
}

// lookup returns the index of tag's slot and true, or, when tag is not in the table,
// the index of the empty slot that ends its probe (-1 if the table has no slots) and
// false: where [table.insertAt] puts it.
func (t *table) lookup(tag uint64) (int, bool) {
	if len(t.slots) == 0 {
		return -1, false
	}
	for i := t.home(tag); ; i = (i + 1) & t.mask {
		switch s := t.slots[i].tag; {
		case s&^1 == tag:
			return int(i), true
		case s == 0:
			return int(i), false
		}
	}
}

// insert adds tag, not in the table, with val, and returns its slot's index. The
// table must hold fewer than max entries.
func (t *table) insert(tag uint64, val int64) int {
	i, _ := t.lookup(tag)
	return t.insertAt(i, tag, val)
}

// insertAt is insert with the index lookup returned for tag, the table unchanged since.
func (t *table) insertAt(i int, tag uint64, val int64) int {
	if (t.n+1)*4 > len(t.slots)*3 {
		t.grow()
		i = t.place(slot{tag: tag, val: val})
	} else {
		t.slots[i] = slot{tag: tag, val: val}
	}
	t.n++
	return i
}

func (t *table) place(s slot) int {
	i := t.home(s.tag)
	for t.slots[i].tag != 0 {
		i = (i + 1) & t.mask
	}
	t.slots[i] = s
	return int(i)
}

func (t *table) grow() {
	n := max(2*len(t.slots), 8)
	old := t.slots
	t.slots = make([]slot, n)
	t.mask = uint64(n - 1)
	for _, s := range old {
		if s.tag != 0 {
			t.place(s)
		}
	}
}

// remove empties slot i and moves back the entries after it that may take its place,
// so that every entry stays reachable from its home without tombstones.
func (t *table) remove(i int) {
	t.n--
	hole := uint64(i)
	for j := (hole + 1) & t.mask; t.slots[j].tag != 0; j = (j + 1) & t.mask {
		// The entry at j may fill the hole if its home is not after the hole on
		// the way to j.
		if (j-t.home(t.slots[j].tag))&t.mask >= (j-hole)&t.mask {
			t.slots[hole] = t.slots[j]
			hole = j
		}
	}
	t.slots[hole] = slot{}
}
