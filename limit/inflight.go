package limit

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// InFlightOptions configures an [InFlight].
type InFlightOptions struct {
	// Limit is how many requests of one key may run at once. It must be positive.
	Limit int
	// MaxKeys bounds the keys with requests running. A key with none takes no room; a
	// key goes in one line of 5 entries that its hash picks, and once the table has
	// grown to MaxKeys (or a little under: see [InFlight]) a new key is refused while
	// its line is full, which may come before MaxKeys keys in all: size it to four
	// times the keys expected to have requests running at once or more. If zero,
	// 65536. The table grows with the keys, from 4 KiB or less to at most 12.8 bytes a
	// key of MaxKeys (820 KiB for 65536), and does not shrink.
	MaxKeys int
	// RetryAfter is the hint a refused request gets, in its [Decision]: how long a
	// request runs is not known here. If zero, 1s.
	RetryAfter time.Duration
}

// InFlight counts, per key, the requests still running, and refuses one more when a key
// has Limit of them. A request holds its slot from Acquire until its [Token] is
// released, at the request's end; a key's entry is removed when its count falls to zero,
// so the table holds only keys with work running, at most MaxKeys of them.
//
// Keys are held by a 64-bit hash of them, in a table of cache lines of 5 entries, as in
// [TokenBucket]: an Acquire or a release reads and changes one line, under a lock bit
// of its own. The lines are few while few keys have requests running, and double when
// a new key finds its line full, up to MaxKeys/5 of them (more than 96% of that,
// rounded down to m×2ᵏ lines with m in [32, 64)); growing copies the table once, and
// holds up only the checks that come to a line already copied meanwhile. An entry is never evicted,
// since its count is of requests still running: once the table is as big as it may
// be, a new key whose line is full is refused (a chance of 0.02% with MaxKeys/10 keys
// running, 0.9% with MaxKeys/4, 11% with MaxKeys/2). Two keys share a count only when
// their whole 64-bit hashes are equal (a chance of about n/2⁶³ for a new key among n),
// and then their requests together are held to Limit: stricter, never looser. A
// release always finds the entry its Acquire counted in (the entry lives while its
// count is above zero, and moves with the key's hash), so it never takes from another
// key's count.
//
// An InFlight is safe for concurrent use; Acquire costs no allocation.
type InFlight struct {
	limit int64
	retry time.Duration
	h     hasher
	t     *growTable // the values are hash bits over the counts of running requests
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
	return &InFlight{limit: int64(opts.Limit), retry: opts.RetryAfter, h: newHasher(), t: newGrowTable(opts.MaxKeys)}, nil
}

// Token is an acquired slot of an [InFlight]. Release gives it back; releasing a Token
// again, or its zero value (what a rate limit's [Checker] returns: it holds nothing),
// does nothing. Do not copy a Token (each copy could release the slot once) nor
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
// and its line of the table is full (see MaxKeys).
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

// Check implements [Checker] with [InFlight.Acquire]; a refusal's retryAfter is
// RetryAfter.
func (f *InFlight) Check(key string) (tok Token, ok bool, retryAfter time.Duration) {
	if tok, ok = f.acquire(f.h.str(key)); !ok {
		return Token{}, false, f.retry
	}
	return tok, true, 0
}

// Count returns how many requests of key are running.
func (f *InFlight) Count(key string) int {
	h := f.h.str(key)
	l, _ := f.t.lock(h)
	n := int64(0)
	if i := l.findHash(h, f.t.room); i >= 0 {
		n = flightCount(l.vals[i])
	}
	l.unlock()
	return int(n)
}

// Len returns how many keys have requests running. It takes each line's lock in turn: a
// pass over the table, for tests and metrics rather than for each request.
func (f *InFlight) Len() int { return f.t.len() }

func (f *InFlight) acquire(h uint64) (Token, bool) {
	for {
		l, s := f.t.lock(h)
		if i := l.findHash(h, f.t.room); i >= 0 {
			if flightCount(l.vals[i]) >= f.limit {
				l.unlock()
				return Token{}, false
			}
			l.vals[i]++
			l.unlock()
			return Token{f: f, h: h}, true
		}
		if i := l.free(f.t.room); i >= 0 {
			l.tags[i], l.vals[i] = tagOf(h), flightVal(h, 1)
			l.unlock()
			return Token{f: f, h: h}, true
		}
		l.unlock()
		if !f.t.grow(s) {
			return Token{}, false // the line is full, and the table as big as may be
		}
	}
}

func (f *InFlight) release(h uint64) {
	l, _ := f.t.lock(h)
	if i := l.findHash(h, f.t.room); i >= 0 {
		if flightCount(l.vals[i]) > 1 {
			l.vals[i]--
		} else {
			l.tags[i], l.vals[i] = 0, 0
		}
	}
	l.unlock()
}
