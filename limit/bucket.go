package limit

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"
)

// TokenBucketOptions configures a [TokenBucket].
type TokenBucketOptions struct {
	// Rate is how many requests per second each key may make in the long run. It must
	// be positive.
	Rate float64
	// Burst is how many requests a key may make at once after a pause. If zero, 1.
	Burst int
	// MaxKeys bounds the keys whose state is kept. When it is reached, a new key takes
	// the place of an idle one (one whose bucket is full again, which loses nothing),
	// or else of one not used lately (which gets a full bucket back if it returns).
	// If zero, 65536. Each key takes a 16-byte slot of a table kept between 3/8 and
	// 3/4 full, so 21 to 43 bytes (23 measured with a million keys through a table of
	// 10,000). A shard holds about MaxKeys/64 of them.
	MaxKeys int
}

// TokenBucket limits each key to a rate with a burst: a token bucket per key, kept as
// the generic cell rate algorithm's "theoretical arrival time" (one int64 per key).
//
// Keys are held by 62 bits of a 64-bit hash of them (with a seed of the bucket's own),
// not by value: two keys collide with a chance of about n²/2⁶³ for n keys in the
// table. The table holds at most MaxKeys entries, split over up to 64 shards, each with
// its own lock; when a shard is full, a clock hand sweeps it for an idle entry (its
// bucket full again: dropping it changes nothing) or one whose use bit is clear.
//
// Each shard's table is open addressing in one slice of 16-byte slots (hash and
// arrival time), so a check reads one cache line of it, and takes its shard's lock
// once.
//
// Time is read from a clock the bucket keeps to a millisecond while it is used (an
// atomic load, where reading the system's clock costs as much as the rest of a
// check): a request allowed on it is allowed, and one refused on it is checked again
// on the precise time, so refusals and their wait are exact, and a key may get, over
// its burst, the tokens of the clock's lag (a millisecond: one request at 1000/s).
//
// A TokenBucket is safe for concurrent use. Allow costs no allocation for a key that is
// in the table.
type TokenBucket struct {
	interval int64 // nanoseconds between two tokens
	tol      int64 // how far ahead of now the arrival time may be: (Burst-1) × interval
	h        hasher
	clk      clock
	shards   []bucketShard
}

// A bucket's slot holds its theoretical arrival time in val, on clk, and its use bit in
// bit 0 of the tag: set by a use, cleared by the clock hand.
const usedBit = 1

type bucketShard struct {
	mu   sync.Mutex
	t    table
	hand int
	_    [64]byte // keep two shards' locks off one cache line
}

// NewTokenBucket returns a [TokenBucket] with the given options, or an error naming the
// bad field.
func NewTokenBucket(opts TokenBucketOptions) (*TokenBucket, error) {
	if opts.Burst == 0 {
		opts.Burst = 1
	}
	if opts.MaxKeys == 0 {
		opts.MaxKeys = 65536
	}
	switch {
	case !(opts.Rate > 0) || math.IsInf(opts.Rate, 0) || opts.Rate > 1e9:
		return nil, fmt.Errorf("limit: TokenBucketOptions.Rate %v is not in (0, 1e9]: %w", opts.Rate, ErrOption)
	case opts.Burst < 0 || opts.Burst > 1<<30:
		return nil, fmt.Errorf("limit: TokenBucketOptions.Burst %d is not in [1, 1<<30]: %w", opts.Burst, ErrOption)
	case opts.MaxKeys < 0 || opts.MaxKeys > 1<<30:
		return nil, fmt.Errorf("limit: TokenBucketOptions.MaxKeys %d is not in [1, 1<<30]: %w", opts.MaxKeys, ErrOption)
	}
	interval := int64(math.Round(float64(time.Second) / opts.Rate))
	if interval < 1 {
		interval = 1
	}
	caps := shardCaps(opts.MaxKeys)
	b := &TokenBucket{
		interval: interval,
		tol:      int64(opts.Burst-1) * interval,
		h:        newHasher(),
		shards:   make([]bucketShard, len(caps)),
	}
	b.clk.init()
	for i, c := range caps {
		b.shards[i].t.max = c
	}
	return b, nil
}

// Allow takes a token from key's bucket if it has one, and otherwise says how long
// until it will.
func (b *TokenBucket) Allow(key string) (ok bool, retryAfter time.Duration) {
	return b.allow(b.h.str(key))
}

// AllowBytes is [TokenBucket.Allow] with a key of bytes.
func (b *TokenBucket) AllowBytes(key []byte) (ok bool, retryAfter time.Duration) {
	return b.allow(b.h.bytes(key))
}

// Limit implements [Limiter] with [TokenBucket.Allow].
func (b *TokenBucket) Limit(ctx context.Context, key string) (Decision, error) {
	if err := ctx.Err(); err != nil {
		return Decision{}, err
	}
	ok, wait := b.allow(b.h.str(key))
	return Decision{Allowed: ok, RetryAfter: wait}, nil
}

// Len returns how many keys have state now.
func (b *TokenBucket) Len() int {
	n := 0
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		n += s.t.n
		s.mu.Unlock()
	}
	return n
}

func (b *TokenBucket) allow(h uint64) (bool, time.Duration) {
	now := b.clk.fast()
	tag := tagOf(h)
	s := &b.shards[shardOf(h, len(b.shards))]
	s.mu.Lock()
	i, ok := s.t.lookup(tag)
	if !ok {
		i = s.insert(tag, i, now)
	}
	e := &s.t.slots[i]
	e.tag |= usedBit
	tat := max(e.val, now)
	if tat-now > b.tol {
		// Refused on the coarse clock, which may lag: ask the precise one.
		now = b.clk.now()
		tat = max(e.val, now)
		if tat-now > b.tol {
			s.mu.Unlock()
			return false, time.Duration(tat - b.tol - now)
		}
	}
	e.val = tat + b.interval
	s.mu.Unlock()
	return true, 0
}

// insert makes an entry for tag, its bucket full at now, and returns its index; at is
// where lookup found tag would go, and s.mu is held. When the shard holds its most, an
// entry goes first: the clock hand sweeps the slots, an idle entry (its bucket full
// again) goes at once, and a used one gets its use bit cleared and a second chance.
// Two turns at most, then the last entry the hand passed goes whatever it is.
func (s *bucketShard) insert(tag uint64, at int, now int64) int {
	if s.t.n < s.t.max {
		return s.t.insertAt(at, tag, now)
	}
	slots := s.t.slots
	victim := -1
	for range 2 * len(slots) {
		j := s.hand
		if s.hand++; s.hand >= len(slots) {
			s.hand = 0
		}
		e := &slots[j]
		if e.tag == 0 {
			continue
		}
		victim = j
		if e.val <= now || e.tag&usedBit == 0 {
			break
		}
		e.tag &^= usedBit
	}
	s.t.remove(victim) // moves entries: at no longer holds
	return s.t.insert(tag, now)
}
