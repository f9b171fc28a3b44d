package admin

import (
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// The recent past is kept in a ring of one-second slots: slot i holds the second whose
// Unix time is congruent to i modulo ringSize. A slot is cleared when a new second
// claims it, under the window's mutex; every other update is an atomic add.
const (
	ringSize = 64 // a power of two above 61: the last 60 whole seconds and the current one

	// rateShort and rateLong are the windows of the request and error rates, in whole
	// seconds; latencyWindow is the window of the latency percentiles.
	rateShort     = 10
	rateLong      = 60
	latencyWindow = 60
)

// The latency histogram has log-scale buckets over microseconds: values below subBuckets
// have a bucket each, and each octave above has subBuckets buckets of equal width, so a
// bucket is at most 1/subBuckets (12.5%) of its lower bound wide. The last bucket takes
// everything from 2^maxOctave µs (about 2m14s) up.
const (
	subBits    = 3
	subBuckets = 1 << subBits
	maxOctave  = 27
	numBuckets = subBuckets + (maxOctave-subBits)*subBuckets + 1
)

// bucketOf returns the histogram bucket of a latency of us microseconds.
func bucketOf(us uint64) int {
	if us < subBuckets {
		return int(us)
	}
	o := bits.Len64(us) - 1 // us is in [2^o, 2^(o+1))
	if o >= maxOctave {
		return numBuckets - 1
	}
	sub := int(us>>(o-subBits)) & (subBuckets - 1)
	return subBuckets + (o-subBits)*subBuckets + sub
}

// bucketBounds returns the bucket's range of microseconds, [lo, hi).
func bucketBounds(i int) (lo, hi float64) {
	if i < subBuckets {
		return float64(i), float64(i + 1)
	}
	if i >= numBuckets-1 {
		lo = math.Ldexp(1, maxOctave)
		return lo, lo
	}
	o := (i-subBuckets)/subBuckets + subBits
	sub := (i - subBuckets) % subBuckets
	w := math.Ldexp(1, o-subBits)
	return float64(subBuckets+sub) * w, float64(subBuckets+sub+1) * w
}

// slot is one second of the recent past.
type slot struct {
	sec      atomic.Int64 // the Unix second it holds; 0: none yet
	requests atomic.Uint64
	errors   atomic.Uint64
	samples  atomic.Uint64 // latency samples (requests other than tunnels)
	hist     [numBuckets]atomic.Uint64
}

// window is a service's recent past: request and error counts and latencies per second.
type window struct {
	mu    sync.Mutex // serialises the clearing of a slot for a new second
	slots [ringSize]slot
}

// slotFor returns the slot of second sec, clearing it if it held an older second, or
// nil if sec is too old to be kept (it was claimed by a newer second already).
func (w *window) slotFor(sec int64) *slot {
	s := &w.slots[sec&(ringSize-1)]
	if s.sec.Load() == sec {
		return s
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch cur := s.sec.Load(); {
	case cur == sec:
	case cur > sec:
		return nil
	default:
		s.requests.Store(0)
		s.errors.Store(0)
		s.samples.Store(0)
		for i := range s.hist {
			s.hist[i].Store(0)
		}
		s.sec.Store(sec)
	}
	return s
}

// record counts a request that ended at end, an error or not, with latency d if it is
// a sample (d >= 0).
func (w *window) record(end time.Time, isErr bool, d time.Duration) {
	s := w.slotFor(end.Unix())
	if s == nil {
		return
	}
	s.requests.Add(1)
	if isErr {
		s.errors.Add(1)
	}
	if d >= 0 {
		s.samples.Add(1)
		s.hist[bucketOf(uint64(d/time.Microsecond))].Add(1)
	}
}

// counts sums the requests and errors of the n whole seconds before now's second.
func (w *window) counts(now int64, n int) (requests, errors uint64) {
	for sec := now - int64(n); sec < now; sec++ {
		s := &w.slots[sec&(ringSize-1)]
		if s.sec.Load() != sec {
			continue
		}
		requests += s.requests.Load()
		errors += s.errors.Load()
	}
	return requests, errors
}

// latency sums the histograms of the n seconds up to and including now's second into h
// and returns the number of samples.
func (w *window) latency(now int64, n int, h *[numBuckets]uint64) uint64 {
	var total uint64
	for sec := now - int64(n) + 1; sec <= now; sec++ {
		s := &w.slots[sec&(ringSize-1)]
		if s.sec.Load() != sec {
			continue
		}
		total += s.samples.Load()
		for i := range s.hist {
			h[i] += s.hist[i].Load()
		}
	}
	return total
}

// quantile returns the q-quantile (0 < q <= 1) of the histogram h of total samples, in
// milliseconds, interpolating within the bucket it falls in; 0 without samples.
func quantile(h *[numBuckets]uint64, total uint64, q float64) float64 {
	if total == 0 {
		return 0
	}
	rank := q * float64(total) // the rank-th smallest sample, counting from 1
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, n := range h {
		if n == 0 {
			continue
		}
		if float64(seen+n) >= rank {
			lo, hi := bucketBounds(i)
			frac := (rank - float64(seen)) / float64(n)
			return (lo + (hi-lo)*frac) / 1e3
		}
		seen += n
	}
	// The sum of h is below total only while a slot is being written: take the last
	// bucket with samples.
	for i := numBuckets - 1; i >= 0; i-- {
		if h[i] != 0 {
			_, hi := bucketBounds(i)
			return hi / 1e3
		}
	}
	return 0
}
