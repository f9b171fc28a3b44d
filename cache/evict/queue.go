package evict

import "sync/atomic"

// Where an entry is queued.
const (
	inNone uint8 = iota
	inSmall
	inMain
)

// maxFreq caps an entry's access counter (S3-FIFO keeps two bits per entry).
const maxFreq = 3

// entry is one cached key and value. key, value, hash and weight never change after the
// entry is published in the table, so readers use them without a lock; a Set of an
// existing key publishes a new entry. freq is changed by readers atomically. The rest
// belongs to the writer holding the cache's mutex.
//
// The fields are ordered so that, with a string key and a pointer value, an entry is 64
// bytes: one cache line, since the allocator aligns objects of that size class to it.
type entry[K comparable, V any] struct {
	key        K
	value      V
	hash       uint64
	weight     int64
	prev, next *entry[K, V]
	freq       atomic.Uint32
	queue      uint8
}

// touch counts a read of e, up to maxFreq. A counter already at the cap is not written,
// so a hot entry costs its readers no writes.
func (e *entry[K, V]) touch() {
	if f := e.freq.Load(); f < maxFreq {
		e.freq.CompareAndSwap(f, f+1)
	}
}

// fifo is a doubly linked queue of entries with their total weight. Writer only.
type fifo[K comparable, V any] struct {
	head, tail *entry[K, V]
	weight     int64
	len        int
}

func (q *fifo[K, V]) pushBack(e *entry[K, V]) {
	e.prev, e.next = q.tail, nil
	if q.tail != nil {
		q.tail.next = e
	} else {
		q.head = e
	}
	q.tail = e
	q.weight += e.weight
	q.len++
}

func (q *fifo[K, V]) remove(e *entry[K, V]) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		q.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		q.tail = e.prev
	}
	e.prev, e.next = nil, nil
	q.weight -= e.weight
	q.len--
}

// ghost remembers the hashes of keys recently evicted from the small queue, up to a total
// weight and a number of items (the cache's entry count, as S3-FIFO sizes it): a key that comes back while remembered skips the small queue. A hash that
// collides with another key's only sends that key to the main queue early, so hashes
// suffice here. Writer only.
type ghost struct {
	ring      []ghostItem // a circular buffer, grown as needed
	head, n   int
	weight    int64
	maxWeight int64
	set       map[uint64]int32 // hash → number of its items in ring
}

type ghostItem struct {
	hash   uint64
	weight int64
}

func newGhost(maxWeight int64) *ghost {
	return &ghost{maxWeight: maxWeight, set: make(map[uint64]int32)}
}

func (g *ghost) contains(h uint64) bool {
	_, ok := g.set[h]
	return ok
}

// add remembers h, forgetting the oldest items to keep at most maxItems of total weight
// at most g.maxWeight.
func (g *ghost) add(h uint64, weight int64, maxItems int) {
	if weight > g.maxWeight || maxItems < 1 {
		return
	}
	for g.n > 0 && (g.weight+weight > g.maxWeight || g.n >= maxItems) {
		g.pop()
	}
	if g.n == len(g.ring) {
		nr := make([]ghostItem, max(16, 2*len(g.ring)))
		for i := range g.n {
			nr[i] = g.ring[(g.head+i)%len(g.ring)]
		}
		g.ring, g.head = nr, 0
	}
	g.ring[(g.head+g.n)%len(g.ring)] = ghostItem{h, weight}
	g.n++
	g.weight += weight
	g.set[h]++
}

func (g *ghost) pop() {
	it := g.ring[g.head]
	g.head = (g.head + 1) % len(g.ring)
	g.n--
	g.weight -= it.weight
	if c := g.set[it.hash] - 1; c > 0 {
		g.set[it.hash] = c
	} else {
		delete(g.set, it.hash)
	}
}
