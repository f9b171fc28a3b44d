package evict

import (
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// ErrCapacity is returned by [New] when Options.Capacity is not positive.
var ErrCapacity = errors.New("evict: Options.Capacity must be positive")

// Cause says why an entry left the cache.
type Cause uint8

// Causes given to Options.OnEvict.
const (
	// Evicted: the policy chose the entry to make room.
	Evicted Cause = iota + 1
	// Removed: [Cache.Remove] removed it, or a [Cache.Set] of its key with a weight over
	// the capacity did.
	Removed
	// Replaced: a [Cache.Set] of its key stored a new value.
	Replaced
)

// String returns "evicted", "removed" or "replaced".
func (c Cause) String() string {
	switch c {
	case Evicted:
		return "evicted"
	case Removed:
		return "removed"
	case Replaced:
		return "replaced"
	}
	return fmt.Sprintf("Cause(%d)", uint8(c))
}

// Options configure a [Cache].
type Options[K comparable, V any] struct {
	// Capacity is the most total weight the cache holds, in the unit of the weights given
	// to [Cache.Set] (bytes, for the cache's stores). It must be positive.
	Capacity int64
	// OnEvict, if not nil, is called with each entry that leaves the cache, and why. It is
	// called while the cache's write lock is held, from the Set or Remove that caused it:
	// it must be quick and must not call the Cache. A store with slow work to do (closing
	// or deleting a file) hands it to a goroutine of its own. It is not called for a value
	// that Set refused.
	OnEvict func(key K, value V, cause Cause)
}

// smallPercent is the share of the capacity the small queue holds before it gives up
// its oldest entries, as in S3-FIFO.
const smallPercent = 10

// Cache is a weighted key-value cache bounded by total weight, evicting with S3-FIFO and
// admitting with TinyLFU. It is safe for concurrent use. [Cache.Get] takes no lock and
// allocates nothing; Set and Remove take a mutex.
//
// Keys are compared whole (with ==); their hashes only choose where to look.
type Cache[K comparable, V any] struct {
	// Immutable after New.
	seed     maphash.Seed
	capacity int64
	smallCap int64
	onEvict  func(K, V, Cause)

	// Read by readers without a lock, replaced by the writer.
	table  atomic.Pointer[table[K, V]]
	sketch atomic.Pointer[sketch]
	weight atomic.Int64
	len    atomic.Int64

	// Guarded by mu.
	mu    sync.Mutex
	small fifo[K, V]
	main  fifo[K, V]
	ghost *ghost
}

// New returns an empty cache. It returns an error wrapping [ErrCapacity] if
// o.Capacity is not positive.
func New[K comparable, V any](o Options[K, V]) (*Cache[K, V], error) {
	if o.Capacity <= 0 {
		return nil, fmt.Errorf("%w (it is %d)", ErrCapacity, o.Capacity)
	}
	c := &Cache[K, V]{
		seed:     maphash.MakeSeed(),
		capacity: o.Capacity,
		smallCap: max(1, o.Capacity/100*smallPercent+o.Capacity%100*smallPercent/100),
		onEvict:  o.OnEvict,
		ghost:    newGhost(o.Capacity),
	}
	c.table.Store(newTable[K, V](0))
	c.sketch.Store(newSketch(0))
	return c, nil
}

// Capacity returns the cache's capacity.
func (c *Cache[K, V]) Capacity() int64 { return c.capacity }

// Len returns the number of entries.
func (c *Cache[K, V]) Len() int { return int(c.len.Load()) }

// Weight returns the total weight of the entries.
func (c *Cache[K, V]) Weight() int64 { return c.weight.Load() }

func (c *Cache[K, V]) hash(key K) uint64 { return maphash.Comparable(c.seed, key) }

// Get returns the value stored under key and counts the access. It takes no lock and
// allocates nothing. A Get that runs while a Set or Remove of the same key does returns
// the value from before or after it.
func (c *Cache[K, V]) Get(key K) (V, bool) {
	h := c.hash(key)
	e := c.table.Load().get(h, key)
	if e == nil {
		var zero V
		return zero, false
	}
	e.touch()
	c.sketch.Load().increment(h)
	return e.value, true
}

// Set stores value under key with the given weight (a weight below 1 counts as 1),
// evicting entries to make room, and reports whether the value is stored.
//
// A new key is refused when its weight is over the capacity, or when the entry it would
// displace first has been used more often (by the TinyLFU estimate) than the new key has
// been asked for; the cache then keeps what it has. A key already stored always takes the
// new value unless the weight is over the capacity, and then the old value is removed,
// so the cache never serves a value older than the last one set.
func (c *Cache[K, V]) Set(key K, value V, weight int64) bool {
	weight = max(weight, 1)
	h := c.hash(key)
	c.mu.Lock()
	defer c.mu.Unlock()
	sk := c.sketchForWrite()
	sk.increment(h)

	t := c.table.Load()
	if at, _ := t.find(h, key); at >= 0 {
		old := t.entryAt(at)
		inQueue := old.queue
		c.unlink(old)
		if weight > c.capacity {
			t.removeAt(at)
			c.notify(old, Removed)
			return false
		}
		// The new entry is visible at once; it joins its queue after the room it needs is
		// made, so that making room cannot evict it.
		e := &entry[K, V]{key: key, value: value, hash: h, weight: weight, queue: inQueue}
		e.freq.Store(old.freq.Load())
		t.replaceAt(at, e)
		c.notify(old, Replaced)
		c.evictWhile(weight)
		c.queue(e).pushBack(e)
		c.weight.Add(weight)
		c.len.Add(1)
		return true
	}
	if weight > c.capacity {
		return false
	}
	if c.weight.Load()+weight > c.capacity && !c.admit(h, sk) {
		return false
	}
	c.evictWhile(weight)

	e := &entry[K, V]{key: key, value: value, hash: h, weight: weight}
	if c.ghost.contains(h) {
		e.queue = inMain
		c.main.pushBack(e)
	} else {
		e.queue = inSmall
		c.small.pushBack(e)
	}
	t = c.table.Load()
	if t.full() {
		t = t.rebuilt(t.live + 1)
		c.table.Store(t)
	}
	_, free := t.find(h, key)
	t.insertAt(free, e)
	c.weight.Add(weight)
	c.len.Add(1)
	return true
}

// Remove removes key's entry and reports whether there was one.
func (c *Cache[K, V]) Remove(key K) bool {
	h := c.hash(key)
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.table.Load()
	at, _ := t.find(h, key)
	if at < 0 {
		return false
	}
	e := t.entryAt(at)
	c.unlink(e)
	t.removeAt(at)
	c.notify(e, Removed)
	return true
}

// sketchWordsPerEntry is how many 64-bit words (16 counters each) the sketch keeps per
// entry. Four (32 bytes an entry) keep collisions rare enough that the estimates rank keys
// well; one word an entry, as W-TinyLFU usually has, measured about one point of hit
// ratio lower on the Zipf traces of the tests.
const sketchWordsPerEntry = 4

// sketchForWrite returns the sketch after growing it to the number of entries and
// halving its counters if the sample is complete. c.mu must be held.
func (c *Cache[K, V]) sketchForWrite() *sketch {
	sk := c.sketch.Load()
	if n := sketchWordsPerEntry * int(c.len.Load()); n > len(sk.table) {
		for n > len(sk.table) {
			sk = sk.grown()
		}
		c.sketch.Store(sk)
	}
	sk.maybeReset()
	return sk
}

// admit reports whether a new key with hash h may displace the entry S3-FIFO would
// evict first. c.mu must be held.
func (c *Cache[K, V]) admit(h uint64, sk *sketch) bool {
	v := c.victim()
	if v == nil {
		return true
	}
	return sk.estimate(h) > sk.estimate(v.hash)
}

// evictWhile evicts entries until weight more fits. c.mu must be held.
func (c *Cache[K, V]) evictWhile(weight int64) {
	for c.weight.Load()+weight > c.capacity {
		v := c.victim()
		if v == nil {
			return
		}
		fromSmall := v.queue == inSmall
		c.unlink(v)
		t := c.table.Load()
		if at, _ := t.find(v.hash, v.key); at >= 0 {
			t.removeAt(at)
		}
		if fromSmall {
			c.ghost.add(v.hash, v.weight, int(c.len.Load())+1)
		}
		c.notify(v, Evicted)
	}
}

// victim returns the entry S3-FIFO evicts next, leaving it queued. On the way it moves
// entries read while in the small queue to the main queue, and gives main-queue entries
// read since their last pass another pass, one read less. c.mu must be held.
func (c *Cache[K, V]) victim() *entry[K, V] {
	// Readers may raise counters while this runs; the bound keeps it finite.
	for range 2 + (maxFreq+1)*(c.small.len+c.main.len) {
		if c.small.head != nil && (c.small.weight > c.smallCap || c.main.head == nil) {
			e := c.small.head
			if e.freq.Load() == 0 {
				return e
			}
			c.small.remove(e)
			e.freq.Store(0)
			e.queue = inMain
			c.main.pushBack(e)
			continue
		}
		e := c.main.head
		if e == nil {
			return nil
		}
		f := e.freq.Load()
		if f == 0 {
			return e
		}
		e.freq.Store(f - 1)
		c.main.remove(e)
		c.main.pushBack(e)
	}
	if c.small.head != nil {
		return c.small.head
	}
	return c.main.head
}

func (c *Cache[K, V]) queue(e *entry[K, V]) *fifo[K, V] {
	if e.queue == inSmall {
		return &c.small
	}
	return &c.main
}

// unlink takes e out of its queue and the totals. c.mu must be held.
func (c *Cache[K, V]) unlink(e *entry[K, V]) {
	c.queue(e).remove(e)
	e.queue = inNone
	c.weight.Add(-e.weight)
	c.len.Add(-1)
}

func (c *Cache[K, V]) notify(e *entry[K, V], cause Cause) {
	if c.onEvict != nil {
		c.onEvict(e.key, e.value, cause)
	}
}
