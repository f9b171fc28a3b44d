package privacypass

import (
	"hash/maphash"
	"math"
	"math/bits"
	"sync"
)

// nonceStore remembers the nonces of redeemed tokens, per time window, in fixed memory:
// each of its shards keeps two generations (the current window and the one before), each
// an open-addressing table of nonces whose size is fixed when the store is made. A
// generation is wiped and reused when a newer window arrives, so a nonce is remembered
// for as long as a token of its window can be redeemed, and no longer.
//
// It is safe for concurrent use: each shard has its own lock, held for one probe.
type nonceStore struct {
	seed   maphash.Seed // keyed hashing: clients choose nonces, so they must not choose slots
	shards []shard
	mask   uint64 // len(shards)-1
	limit  int    // nonces one generation of a shard takes
	slots  int    // table size of one generation of a shard, a power of two
}

type shard struct {
	mu   sync.Mutex
	gens [2]generation
	_    [64]byte // keeps the locks of neighbouring shards off one cache line
}

type generation struct {
	window int64
	used   int
	zero   bool // the all-zero nonce, which marks an empty slot, was redeemed
	table  [][NonceSize]byte
}

// storeResult says what record did with a nonce.
type storeResult int

const (
	stored storeResult = iota // the nonce is new and now remembered
	replay                    // the nonce was redeemed before in its window
	full                      // the window's table is full: the nonce cannot be remembered
	stale                     // the window is older than both remembered ones
)

// storeShards is how many shards a store of at least minShardNonces per shard gets.
const (
	storeShards    = 16
	minShardNonces = 256
)

// newNonceStore returns a store that takes at least perWindow nonces in each window.
func newNonceStore(perWindow int) *nonceStore {
	n := storeShards
	if perWindow < storeShards*minShardNonces {
		n = 1
	}
	limit := (perWindow + n - 1) / n
	// Load factor at most 3/4 keeps linear probing short.
	slots := 1 << bits.Len(uint(limit*4/3))
	s := &nonceStore{
		seed:   maphash.MakeSeed(),
		shards: make([]shard, n),
		mask:   uint64(n - 1),
		limit:  limit,
		slots:  slots,
	}
	for i := range s.shards {
		for g := range s.shards[i].gens {
			s.shards[i].gens[g].window = math.MinInt64
		}
	}
	return s
}

// bytes returns the most memory the store's tables take once both generations of every
// shard are in use.
func (s *nonceStore) bytes() int64 {
	return int64(len(s.shards)) * 2 * int64(s.slots) * NonceSize
}

// record remembers nonce as redeemed in window, unless it already was.
func (s *nonceStore) record(nonce *[NonceSize]byte, window int64) storeResult {
	h := maphash.Bytes(s.seed, nonce[:])
	sh := &s.shards[h&s.mask]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	g := sh.generation(window, s.slots)
	if g == nil {
		return stale
	}
	if *nonce == ([NonceSize]byte{}) {
		if g.zero {
			return replay
		}
		if g.used >= s.limit {
			return full
		}
		g.zero = true
		g.used++
		return stored
	}
	mask := uint64(len(g.table) - 1)
	// The shard took the low bits; the slot takes the high ones.
	for i := (h >> 32) & mask; ; i = (i + 1) & mask {
		slot := &g.table[i]
		if *slot == *nonce {
			return replay
		}
		if *slot == ([NonceSize]byte{}) {
			if g.used >= s.limit {
				return full
			}
			*slot = *nonce
			g.used++
			return stored
		}
	}
}

// generation returns the generation of window, taking over the older of the two when
// window is newer than both, or nil when window is older than both.
func (sh *shard) generation(window int64, slots int) *generation {
	a, b := &sh.gens[0], &sh.gens[1]
	switch {
	case a.window == window:
		return a
	case b.window == window:
		return b
	}
	old := a
	if b.window < a.window {
		old = b
	}
	if window < old.window || window < a.window && window < b.window {
		return nil
	}
	if old.table == nil {
		old.table = make([][NonceSize]byte, slots)
	} else {
		clear(old.table)
	}
	old.window, old.used, old.zero = window, 0, false
	return old
}
