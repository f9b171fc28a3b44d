package limit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// RateOptions configures a [Rate].
type RateOptions struct {
	// Window is the length of the counting window; the rate is interpolated over the
	// last two windows. If zero, 1s.
	Window time.Duration
	// Width is the number of counters per row of the count-min sketch, rounded up to a
	// power of two. A key's count is over-estimated by at most e/Width of all the events
	// of the window, with probability 1-e^-Depth. If zero, 2048; at most 1<<24.
	Width int
	// Depth is the number of rows (independent hashes) of the sketch. If zero, 4; at
	// most 16.
	Depth int
}

// Rate estimates, per key, how many events happened over a sliding window, with a
// count-min sketch: a fixed table of Depth × Width counters for each of three windows
// (the current one, the previous one, and the next one, cleared ahead of time). A key is
// hashed onto one counter per row, and its count is the least of them, so a count is
// never under-estimated and is over-estimated only through collisions.
//
// Its memory is fixed when it is made, 3 × Depth × Width × 8 bytes (192 KiB with the
// default 4 × 2048), however many distinct keys it sees: a million client addresses
// cost what ten do, and only the accuracy changes. Keys are never stored.
//
// The rate of a key is the count of the previous window, weighted by the part of it
// still inside the sliding window, plus the count of the current one, divided by the
// window's length: a client cannot double its budget by sending at a window's edge.
//
// Its [Limiter] reads the time from a clock kept to a millisecond while it is used, as
// [TokenBucket] does: a request is counted in the window that clock is in (so up to a
// millisecond late at a window's turn), and a refusal is checked again on the precise
// time. Observe and Rate read the precise time.
//
// A Rate is safe for concurrent use. Observe is one atomic add per row and takes no
// lock, except once per window: the goroutine that first sees a new window moves to it
// and clears the table for the one after (Depth × Width stores), while the others that
// see it wait.
type Rate struct {
	window int64 // nanoseconds
	width  int
	depth  int
	mask   uint64
	h      hasher
	clk    clock
	epoch  atomic.Int64      // the current window's number, since clk.base
	mu     sync.Mutex        // held to move to a new window
	tables [3][]atomic.Int64 // window e uses tables[e%3]; depth rows of width counters
}

// NewRate returns a [Rate] with the given options, or an error naming the bad field.
func NewRate(opts RateOptions) (*Rate, error) {
	if opts.Window == 0 {
		opts.Window = time.Second
	}
	if opts.Width == 0 {
		opts.Width = 2048
	}
	if opts.Depth == 0 {
		opts.Depth = 4
	}
	switch {
	case opts.Window < time.Millisecond:
		return nil, fmt.Errorf("limit: RateOptions.Window %v is under 1ms: %w", opts.Window, ErrOption)
	case opts.Width < 1 || opts.Width > 1<<24:
		return nil, fmt.Errorf("limit: RateOptions.Width %d is not in [1, 1<<24]: %w", opts.Width, ErrOption)
	case opts.Depth < 1 || opts.Depth > 16:
		return nil, fmt.Errorf("limit: RateOptions.Depth %d is not in [1, 16]: %w", opts.Depth, ErrOption)
	}
	w := ceilPow2(opts.Width)
	r := &Rate{
		window: int64(opts.Window),
		width:  w,
		depth:  opts.Depth,
		mask:   uint64(w - 1),
		h:      newHasher(),
	}
	r.clk.init()
	for i := range r.tables {
		r.tables[i] = make([]atomic.Int64, w*opts.Depth)
	}
	return r, nil
}

// ErrOption is wrapped by the errors of the constructors of this package for a bad
// option.
var ErrOption = errors.New("limit: invalid option")

// MemoryBytes returns the bytes the counters take: 3 × Depth × Width × 8.
func (r *Rate) MemoryBytes() int { return 3 * r.depth * r.width * 8 }

// Window returns the window's length.
func (r *Rate) Window() time.Duration { return time.Duration(r.window) }

// Observe counts n events for key in the current window and returns the estimated
// count of key's events in it, these included.
func (r *Rate) Observe(key string, n int64) int64 {
	cur, _ := r.observe(r.h.str(key), n, r.clk.now())
	return cur
}

// ObserveBytes is [Rate.Observe] with a key of bytes; the same bytes make the same key
// as the string of them.
func (r *Rate) ObserveBytes(key []byte, n int64) int64 {
	cur, _ := r.observe(r.h.bytes(key), n, r.clk.now())
	return cur
}

// Rate returns the estimated rate of key's events per second over the last window,
// sliding: the previous window's count weighted by its part still inside, plus the
// current one's.
func (r *Rate) Rate(key string) float64 {
	return r.rate(r.h.str(key), r.clk.now())
}

// RateBytes is [Rate.Rate] with a key of bytes.
func (r *Rate) RateBytes(key []byte) float64 {
	return r.rate(r.h.bytes(key), r.clk.now())
}

// advance returns the number of the window that now is in, moving to it first if no
// goroutine did yet. Moving to window e clears the table of window e+1 (it held e-2,
// which no reader needs any more), so the tables written during a window are not
// cleared under their writers. After a pause of two windows or more every table is
// stale: those of e and e-1 are cleared before e is published. Moves take a lock, once
// per window; the goroutines that see the new window meanwhile wait for it.
func (r *Rate) advance(now int64) int64 {
	e := now / r.window
	if cur := r.epoch.Load(); e <= cur {
		return cur
	}
	return r.turn(e)
}

// turn moves to window e, once per window, under the lock.
func (r *Rate) turn(e int64) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.epoch.Load()
	if e <= cur {
		return cur
	}
	if e > cur+1 {
		// Nothing was counted in windows e-1 and e.
		clear(r.tables[e%3])
		clear(r.tables[(e+2)%3])
	}
	r.epoch.Store(e)
	clear(r.tables[(e+1)%3])
	return e
}

// row returns the counter index of hash h in row i: double hashing from h's halves.
func (r *Rate) row(h uint64, i int) int {
	h1, h2 := h, (h>>32)|1
	return i*r.width + int((h1+uint64(i)*h2)&r.mask)
}

func (r *Rate) estimate(t []atomic.Int64, h uint64) int64 {
	m := int64(math.MaxInt64)
	for i := range r.depth {
		if v := t[r.row(h, i)].Load(); v < m {
			m = v
		}
	}
	return m
}

// observe adds n to h's counters in the current window and returns its estimates for
// the current and the previous windows, and the window's number.
func (r *Rate) observe(h uint64, n int64, now int64) (cur, prev int64) {
	e := r.advance(now)
	t := r.tables[e%3]
	cur = math.MaxInt64
	for i := range r.depth {
		if v := t[r.row(h, i)].Add(n); v < cur {
			cur = v
		}
	}
	return cur, r.estimate(r.tables[(e+2)%3], h)
}

// counts returns h's estimates for the window now is in and the one before, without
// changing anything, and how far into its window now is, in [0, 1).
func (r *Rate) counts(h uint64, now int64) (cur, prev int64, frac float64) {
	e := now / r.window
	frac = float64(now-e*r.window) / float64(r.window)
	last := r.epoch.Load()
	switch {
	case e <= last:
		cur = r.estimate(r.tables[last%3], h)
		prev = r.estimate(r.tables[(last+2)%3], h)
		if e < last {
			frac = 0
		}
	case e == last+1: // no event yet in this window
		prev = r.estimate(r.tables[last%3], h)
	}
	return cur, prev, frac
}

func (r *Rate) rate(h uint64, now int64) float64 {
	cur, prev, frac := r.counts(h, now)
	return (float64(prev)*(1-frac) + float64(cur)) / time.Duration(r.window).Seconds()
}

// Limiter returns a [Limiter] (a [Checker]) that counts each request in r under its key and refuses
// it when key's rate, this request included, is over perSecond. Refused requests count
// too, so a client that keeps sending over the limit stays refused until it slows
// down. Its RetryAfter is when the rate, without more requests, falls low enough for
// one more. It panics unless perSecond × Window is at least 1 (one request per window).
func (r *Rate) Limiter(perSecond float64) Limiter {
	if !(perSecond*time.Duration(r.window).Seconds() >= 1) || math.IsInf(perSecond, 0) {
		panic("limit: Rate.Limiter: perSecond × Window must be at least 1")
	}
	return rateLimiter{r: r, perWindow: perSecond * time.Duration(r.window).Seconds()}
}

type rateLimiter struct {
	r         *Rate
	perWindow float64 // the limit, as events per window
}

func (l rateLimiter) Limit(ctx context.Context, key string) (Decision, error) {
	if err := ctx.Err(); err != nil {
		return Decision{}, err
	}
	_, ok, wait := l.Check(key)
	return Decision{Allowed: ok, RetryAfter: wait}, nil
}

// Check implements [Checker]; the token is the zero [Token], as a rate limit holds
// nothing.
func (l rateLimiter) Check(key string) (Token, bool, time.Duration) {
	r := l.r
	now := r.clk.fast()
	h := r.h.str(key)
	cur, prev := r.observe(h, 1, now)
	e := r.epoch.Load()
	frac := 0.0
	if now >= e*r.window {
		frac = float64(now-e*r.window) / float64(r.window)
	}
	if float64(prev)*(1-frac)+float64(cur) <= l.perWindow {
		return Token{}, true, 0
	}
	// Refused on the coarse clock, which may lag: ask the precise one.
	cur, prev, frac = r.counts(h, r.clk.now())
	if float64(prev)*(1-frac)+float64(cur) <= l.perWindow {
		return Token{}, true, 0
	}
	// The next request counts too: wait until there is room for one.
	wait := retryAfter(float64(cur), float64(prev), frac, l.perWindow-1)
	return Token{}, false, time.Duration(wait * float64(r.window))
}

// retryAfter returns, in windows, how long until prev×(1-f)+cur falls to limit when
// nothing more is counted, from f, how far into the current window now is: 0 when it
// already is at most limit.
func retryAfter(cur, prev, f, limit float64) float64 {
	if prev*(1-f)+cur <= limit {
		return 0
	}
	if cur < limit && prev > 0 {
		// Within this window, as the previous one slides out.
		g := 1 - (limit-cur)/prev
		return math.Max(g-f, 0)
	}
	// In the next window, as this one slides out.
	return (1 - f) + (1 - limit/cur)
}
