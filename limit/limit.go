package limit

import (
	"context"
	"hash/maphash"
	"time"
)

// Limiter decides whether one more request under a key may go on now. The local
// limiters of this package ([TokenBucket], [InFlight], and a [Rate] through
// [Rate.Limiter]) and the fleet-wide ones of limit/redis implement it, so the HTTP
// helper in limit/httplimit takes any of them.
//
// Implementations must be safe for concurrent use. Limit returns an error only when it
// could not decide (a canceled ctx, say); a limiter that falls back to something when
// its store is down decides, and returns no error.
type Limiter interface {
	Limit(ctx context.Context, key string) (Decision, error)
}

// Decision is a [Limiter]'s answer for one request.
type Decision struct {
	// Allowed reports whether the request may go on.
	Allowed bool
	// RetryAfter is, for a refused request, how long the client should wait before it
	// tries again (a hint: another request may take the room meanwhile). Zero for an
	// allowed request.
	RetryAfter time.Duration
	// Release, when not nil, gives back what an allowed request holds (an in-flight
	// slot): call it once when the request ends. It is nil for limiters that hold
	// nothing (rate limits) and for refused requests. Calling it more than once is
	// harmless.
	Release func()
}

// hasher hashes keys with a seed of its own, so another process (or another limiter)
// puts keys elsewhere and crafted keys cannot aim at one counter everywhere.
type hasher struct{ seed maphash.Seed }

func newHasher() hasher { return hasher{seed: maphash.MakeSeed()} }

func (h hasher) str(key string) uint64   { return maphash.String(h.seed, key) }
func (h hasher) bytes(key []byte) uint64 { return maphash.Bytes(h.seed, key) }

// ceilPow2 returns the least power of two >= n (n >= 1).
func ceilPow2(n int) int {
	p := 1
	for p < n {
		p <<= 1
	}
	return p
}

// Checker is a [Limiter] that decides at once, with no context, and whose allowed
// request holds a [Token] rather than a func, so that a check allocates nothing: the
// local limiters of this package implement it ([TokenBucket], [InFlight], and a
// [Rate]'s [Rate.Limiter]). Check does not keep key once it returns, so a caller may
// pass a string over bytes it reuses.
type Checker interface {
	Limiter
	// Check decides for one more request under key. When ok, tok holds what the request
	// holds, to release when it ends (the zero Token, which releases nothing, for a rate
	// limit); otherwise retryAfter is how long the client should wait, as in a
	// [Decision].
	Check(key string) (tok Token, ok bool, retryAfter time.Duration)
}

var (
	_ Checker = (*TokenBucket)(nil)
	_ Checker = (*InFlight)(nil)
	_ Checker = rateLimiter{}
)
