package limit

import (
	"context"
	"fmt"
	"math"
	"time"
)

// TokenBucketOptions configures a [TokenBucket].
type TokenBucketOptions struct {
	// Rate is how many requests per second each key may make in the long run. It must
	// be positive.
	Rate float64
	// Burst is how many requests a key may make at once after a pause. If zero, 1.
	Burst int
	// MaxKeys bounds the keys whose state is kept. A key goes in one line of 5 entries
	// that its hash picks; when that line is full, the new key takes the place of the
	// entry whose bucket is nearest to full: an idle one (its bucket full again, which
	// loses nothing) if the line has one, or else the one that loses least (it gets a
	// full bucket back if it returns). Keys spread over the lines at random, so a line
	// may fill before the table does: size MaxKeys to twice the keys that should keep
	// their state or more (see [TokenBucket]). If zero, 65536; at most 1<<26. The table
	// is made whole with the TokenBucket: 64 bytes per 5 keys, 12.8 bytes a key (820
	// KiB for 65536, 820 MiB for 1<<26).
	MaxKeys int
}

// TokenBucket limits each key to a rate with a burst: a token bucket per key, kept as
// the generic cell rate algorithm's "theoretical arrival time" (one int64 per key).
//
// Keys are held by a 64-bit hash of them (with a seed of the bucket's own), not by
// value, in a table of cache lines of 5 entries each: the hash picks a line and a
// 32-bit tag, and a check reads and changes that one line, under a lock bit of its
// own, with no lock or counter shared with other keys. Two keys whose hashes pick one
// line and one tag (a new key's chance: one in 860 million or less) share a bucket,
// so each gets fewer tokens, never more, until the entry goes. A full line evicts its
// entry nearest to full (see MaxKeys); with the table holding half of MaxKeys, 11% of
// the lines are full, with a quarter 0.9%.
//
// Time is read from a clock the bucket keeps to a millisecond while it is used (an
// atomic load, where reading the system's clock costs as much as the rest of a
// check): a request allowed on it is allowed, and one refused on it is checked again
// on the precise time, so refusals and their wait are exact, and a key may get, over
// its burst, the tokens of the clock's lag (a millisecond: one request at 1000/s).
//
// A TokenBucket is safe for concurrent use. Allow costs no allocation.
type TokenBucket struct {
	interval int64 // nanoseconds between two tokens
	tol      int64 // how far ahead of now the arrival time may be: (Burst-1) × interval
	h        hasher
	clk      clock
	t        table // the values are the theoretical arrival times, on clk
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
	case opts.MaxKeys < 0 || opts.MaxKeys > 1<<26:
		// The table is made whole at once: 1<<26 keys take 820 MiB.
		return nil, fmt.Errorf("limit: TokenBucketOptions.MaxKeys %d is not in [1, 1<<26]: %w", opts.MaxKeys, ErrOption)
	}
	interval := int64(math.Round(float64(time.Second) / opts.Rate))
	if interval < 1 {
		interval = 1
	}
	b := &TokenBucket{
		interval: interval,
		tol:      int64(opts.Burst-1) * interval,
		h:        newHasher(),
		t:        newTable(opts.MaxKeys),
	}
	b.clk.init()
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

// Len returns how many keys have state now. It takes each line's lock in turn: a pass
// over the table, for tests and metrics rather than for each request.
func (b *TokenBucket) Len() int { return b.t.len() }

// Check implements [Checker] with [TokenBucket.Allow]; the token is the zero [Token],
// as a rate limit holds nothing.
func (b *TokenBucket) Check(key string) (tok Token, ok bool, retryAfter time.Duration) {
	ok, retryAfter = b.allow(b.h.str(key))
	return Token{}, ok, retryAfter
}

func (b *TokenBucket) allow(h uint64) (bool, time.Duration) {
	if ok, _ := b.check(h, b.clk.fast()); ok {
		return true, 0
	}
	// Refused on the coarse clock, which may lag: check again on the precise one, read
	// without the line's lock held, so that the lock is held for a few loads and stores
	// even when a client over its limit sends many requests at once.
	return b.check(h, b.clk.now())
}

// check takes a token from the bucket of hash h at now if it has one, and otherwise
// says how long until it will. A refusal changes nothing but the line's entries (a new
// key's entry is made, full).
func (b *TokenBucket) check(h uint64, now int64) (bool, time.Duration) {
	l, room, tag := b.t.locate(h)
	l.lock() // the lines of a table never move
	i := l.find(tag, room)
	if i < 0 {
		i = l.evict(room)
		l.tags[i], l.vals[i] = tag, now
	}
	tat := max(l.vals[i], now)
	if tat-now > b.tol {
		l.unlock()
		return false, time.Duration(tat - b.tol - now)
	}
	l.vals[i] = tat + b.interval
	l.unlock()
	return true, 0
}

// evict returns a slot of the line, among its first room, for a new key: an
// empty one if there is one, or else the one with the earliest arrival time, the
// bucket nearest to full. An idle entry (its bucket full again now) is the earliest
// or as early, so dropping it changes nothing; a busy one is the one whose key would
// have had its bucket full soonest, the least a returning key can gain. The lock is
// held.
func (l *line) evict(room int) int {
	if i := l.free(room); i >= 0 {
		return i
	}
	j := 0
	for i := 1; i < room; i++ {
		if l.vals[i] < l.vals[j] {
			j = i
		}
	}
	return j
}
