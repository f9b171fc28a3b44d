package sentry

import (
	"math"
	"sync/atomic"
)

// maxBurst bounds Options.Burst, so that the bucket's arithmetic stays far from
// overflow.
const maxBurst = 1 << 20

// bucket is a token bucket of burst tokens refilled at rate per second, kept as the
// generic cell rate algorithm keeps it: one "theoretical arrival time" (tat) that
// admitting an event pushes forward by one interval, and an event is admitted while
// tat is no further ahead of now than (burst-1) intervals. It is one atomic word, so
// concurrent requests take no lock. Times are nanoseconds on a monotonic clock.
type bucket struct {
	interval  int64 // nanoseconds per token
	tolerance int64 // (burst-1) intervals
	tat       atomic.Int64
}

// newBucket returns a full bucket whose clock starts at now.
func newBucket(rate float64, burst int, now int64) *bucket {
	iv := 1e9 / rate
	if iv > math.MaxInt64/(2*maxBurst) {
		iv = math.MaxInt64 / (2 * maxBurst) // about 73 hours a token: as good as never
	}
	if iv < 1 {
		iv = 1
	}
	b := &bucket{interval: int64(iv), tolerance: int64(burst-1) * int64(iv)}
	b.tat.Store(now)
	return b
}

// allow takes a token at time now, and reports whether there was one.
func (b *bucket) allow(now int64) bool {
	for {
		old := b.tat.Load()
		tat := max(old, now)
		if tat-now > b.tolerance {
			return false
		}
		if b.tat.CompareAndSwap(old, tat+b.interval) {
			return true
		}
	}
}
