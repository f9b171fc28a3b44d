package limit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// InFlightOptions configures an [InFlight].
type InFlightOptions struct {
	// Limit is how many requests of one key may run at once. It must be positive.
	Limit int
	// MaxKeys bounds the keys with requests running. A key with none takes no room; a
	// new key is refused while its shard is full (the table is split into up to 64
	// shards of MaxKeys/64 keys each, so a little before MaxKeys keys in all). If zero,
	// 65536.
	MaxKeys int
	// RetryAfter is the hint a refused request gets, in its [Decision]: how long a
	// request runs is not known here. If zero, 1s.
	RetryAfter time.Duration
}

// InFlight counts, per key, the requests still running, and refuses one more when a key
// has Limit of them. A request holds its slot from Acquire until its [Token] is
// released, at the request's end; a key's entry is removed when its count falls to zero,
// so the table holds only keys with work running, at most MaxKeys of them (a 16-byte
// slot each in a table between 3/8 and 3/4 full, 21 to 43 bytes: 42 measured with
// 100,000). The table does not shrink: it keeps the room of the most keys it held.
//
// Keys are held by 62 bits of a 64-bit hash of them, as in [TokenBucket]. An InFlight is safe for
// concurrent use; Acquire costs no allocation.
type InFlight struct {
	limit  int32
	retry  time.Duration
	h      hasher
	shards []flightShard
}

// An in-flight slot holds its key's count of running requests in val.
type flightShard struct {
	mu sync.Mutex
	t  table
	_  [64]byte
}

// NewInFlight returns an [InFlight] with the given options, or an error naming the bad
// field.
func NewInFlight(opts InFlightOptions) (*InFlight, error) {
	if opts.MaxKeys == 0 {
		opts.MaxKeys = 65536
	}
	if opts.RetryAfter == 0 {
		opts.RetryAfter = time.Second
	}
	switch {
	case opts.Limit < 1 || opts.Limit > 1<<30:
		return nil, fmt.Errorf("limit: InFlightOptions.Limit %d is not in [1, 1<<30]: %w", opts.Limit, ErrOption)
	case opts.MaxKeys < 0 || opts.MaxKeys > 1<<30:
		return nil, fmt.Errorf("limit: InFlightOptions.MaxKeys %d is not in [1, 1<<30]: %w", opts.MaxKeys, ErrOption)
	case opts.RetryAfter < 0:
		return nil, fmt.Errorf("limit: InFlightOptions.RetryAfter %v is negative: %w", opts.RetryAfter, ErrOption)
	}
	caps := shardCaps(opts.MaxKeys)
	f := &InFlight{limit: int32(opts.Limit), retry: opts.RetryAfter, h: newHasher(), shards: make([]flightShard, len(caps))}
	for i, c := range caps {
		f.shards[i].t.max = c
	}
	return f, nil
}

// Token is an acquired slot. Release gives it back; releasing a Token again, or its zero
// value, does nothing. Do not copy a Token (each copy could release the slot once) nor
// release one Token from two goroutines at once.
type Token struct {
	f *InFlight
	h uint64
}

// Release gives the slot back.
func (t *Token) Release() {
	if t.f == nil {
		return
	}
	t.f.release(t.h)
	t.f = nil
}

// Acquire takes a slot for key if it has one free, and returns its token; ok is false
// (and the token empty) when key already has Limit requests running, or when key is new
// and its shard of the table is full (see MaxKeys).
func (f *InFlight) Acquire(key string) (tok Token, ok bool) {
	return f.acquire(f.h.str(key))
}

// AcquireBytes is [InFlight.Acquire] with a key of bytes.
func (f *InFlight) AcquireBytes(key []byte) (tok Token, ok bool) {
	return f.acquire(f.h.bytes(key))
}

// Limit implements [Limiter] with [InFlight.Acquire]; the Decision's Release gives the
// slot back, and may be called from any goroutine. It allocates one small object per
// allowed request.
func (f *InFlight) Limit(ctx context.Context, key string) (Decision, error) {
	if err := ctx.Err(); err != nil {
		return Decision{}, err
	}
	h := f.h.str(key)
	if _, ok := f.acquire(h); !ok {
		return Decision{RetryAfter: f.retry}, nil
	}
	r := &onceRelease{f: f, h: h}
	return Decision{Allowed: true, Release: r.release}, nil
}

type onceRelease struct {
	f    *InFlight
	h    uint64
	done atomic.Bool
}

func (r *onceRelease) release() {
	if r.done.CompareAndSwap(false, true) {
		r.f.release(r.h)
	}
}

// Count returns how many requests of key are running.
func (f *InFlight) Count(key string) int {
	h := f.h.str(key)
	s := &f.shards[shardOf(h, len(f.shards))]
	s.mu.Lock()
	n := int64(0)
	if i := s.t.find(tagOf(h)); i >= 0 {
		n = s.t.slots[i].val
	}
	s.mu.Unlock()
	return int(n)
}

// Len returns how many keys have requests running.
func (f *InFlight) Len() int {
	n := 0
	for i := range f.shards {
		s := &f.shards[i]
		s.mu.Lock()
		n += s.t.n
		s.mu.Unlock()
	}
	return n
}

func (f *InFlight) acquire(h uint64) (Token, bool) {
	tag := tagOf(h)
	s := &f.shards[shardOf(h, len(f.shards))]
	s.mu.Lock()
	if i, ok := s.t.lookup(tag); ok {
		e := &s.t.slots[i]
		if e.val >= int64(f.limit) {
			s.mu.Unlock()
			return Token{}, false
		}
		e.val++
	} else {
		if s.t.n >= s.t.max {
			s.mu.Unlock()
			return Token{}, false
		}
		s.t.insertAt(i, tag, 1)
	}
	s.mu.Unlock()
	return Token{f: f, h: h}, true
}

func (f *InFlight) release(h uint64) {
	s := &f.shards[shardOf(h, len(f.shards))]
	s.mu.Lock()
	if i := s.t.find(tagOf(h)); i >= 0 {
		if e := &s.t.slots[i]; e.val > 1 {
			e.val--
		} else {
			s.t.remove(i)
		}
	}
	s.mu.Unlock()
}
