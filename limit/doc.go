// Package limit holds rate and concurrency limits for a proxy, kept in this process:
//
//   - [Rate] estimates each key's events per second over a sliding window with a
//     count-min sketch of fixed size: a million distinct keys take the memory ten do.
//   - [TokenBucket] limits each key to a rate with a burst, with at most MaxKeys keys of
//     state and idle ones evicted.
//   - [InFlight] limits each key's requests running at once; a key's state goes when
//     its last request ends.
//
// The keyed ones keep a key's state in one cache line that the key's hash picks, of
// 5 entries with a lock bit of its own: a check touches that line and no lock or
// counter of other keys, which is what a check of a key among a million costs (a
// cache miss) and what lets checks on many cores not wait for each other.
//
// Each implements [Limiter] (a [Rate] through [Rate.Limiter]), the interface the HTTP
// helper in limit/httplimit takes, which answers 429 with Retry-After, and [Checker],
// its form without a context whose allowed requests hold a [Token]: a check of any of
// them allocates nothing. Package
// limit/redis has limiters of the same shapes whose state lives in Redis, so a limit
// holds across a fleet of processes, with one of these as the fallback when Redis is
// down.
//
// Keys are any strings or byte slices (a client address, a header's value, a route):
// they are hashed with a seed of each limiter's own and never stored. The limiters need
// nothing to close. While one is used, [TokenBucket] and a [Rate]'s [Limiter] keep the
// time to a millisecond with a timer of their own, read with one atomic load instead
// of the system's clock; the timer stops after 100ms without a check, and a refusal is
// always checked on the precise time (see [TokenBucket]).
//
// A limit kept per process is a limit per process: behind a load balancer spreading
// clients over N proxies, a client gets up to N times it. Use limit/redis when that
// matters.
//
// A RequestFilter that refuses clients over 10 requests a second, bursts of 20:
//
//	tb, err := limit.NewTokenBucket(limit.TokenBucketOptions{Rate: 10, Burst: 20})
//	...
//	if ok, wait := tb.Allow(clientIP); !ok {
//		// answer 429 with Retry-After: wait (limit/httplimit does this)
//	}
//
// See docs/modules-limits.md for the figures (memory, accuracy, cost).
package limit
