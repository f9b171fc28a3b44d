package limit

import (
	"math"
	"sync/atomic"
	"time"
)

// coarseTick is the resolution of a limiter's coarse clock, and coarseIdle how many
// ticks without a reading stop its ticker.
const (
	coarseTick = time.Millisecond
	coarseIdle = 100
)

// clock reads a monotonic time as nanoseconds since the limiter was made, two ways:
// precisely (time.Since, a vDSO call that costs 20–50 ns here, as much as the rest of
// a check), and coarsely (one atomic load of a time a ticker stores every millisecond).
//
// The ticker runs only while the limiter is used: the first coarse reading starts it,
// and it stops by itself after coarseIdle ticks with no reading, so a limiter still
// needs nothing to close and an idle one costs nothing (not even a goroutine: the
// ticker is a timer's function). A coarse time is never ahead
// of the precise one, and behind it by a tick or so (more when the ticker's goroutine
// waits for a CPU). The limiters decide to allow with it, and check a refusal again
// with the precise time: a refusal and its RetryAfter are exact, and an allowed request
// may take the tokens of at most the lag (a millisecond: one request at 1000/s).
//
// A clock must not be copied once used.
type clock struct {
	base    time.Time
	coarse  atomic.Int64               // nanoseconds since base, as of the last tick
	running atomic.Bool                // a ticker updates coarse
	read    atomic.Bool                // coarse was read since the last tick
	timer   atomic.Pointer[time.Timer] // the ticker, made by its first start
	idle    atomic.Int32               // ticks with no reading
}

func (c *clock) init() { c.base = time.Now() }

// now returns the precise time.
func (c *clock) now() int64 { return int64(time.Since(c.base)) }

// fast returns the coarse time while the ticker runs; otherwise it starts the ticker
// and returns the precise time.
func (c *clock) fast() int64 {
	if c.running.Load() {
		if !c.read.Load() {
			c.read.Store(true)
		}
		return c.coarse.Load()
	}
	return c.start()
}

func (c *clock) start() int64 {
	n := c.now()
	c.advance(n)
	if c.running.CompareAndSwap(false, true) {
		c.read.Store(true)
		c.idle.Store(0)
		t := c.timer.Load()
		if t == nil {
			// Made stopped, so that tick, which resets it, runs only once it is stored.
			t = time.AfterFunc(math.MaxInt64, c.tick)
			c.timer.Store(t)
		}
		t.Reset(coarseTick)
	}
	return n
}

// advance moves coarse to n unless it is already later.
func (c *clock) advance(n int64) {
	for {
		old := c.coarse.Load()
		if n <= old || c.coarse.CompareAndSwap(old, n) {
			return
		}
	}
}

// tick updates coarse, then sets itself to run again in coarseTick unless coarseIdle
// ticks passed with no reading. It is a timer's function rather than a goroutine with a
// time.Ticker so that nothing waits between ticks: an idle limiter holds no goroutine,
// and a test in a synctest bubble can end while the timer is set.
func (c *clock) tick() {
	c.advance(c.now())
	if c.read.Swap(false) {
		c.idle.Store(0)
	} else if c.idle.Add(1) >= coarseIdle {
		c.running.Store(false)
		return
	}
	c.timer.Load().Reset(coarseTick)
}
