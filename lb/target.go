package lb

import (
	"math"
	"sync/atomic"
	"time"
)

// Backend is one server a [LoadBalancer] may send requests to.
type Backend struct {
	// Addr is the backend's "host:port". It identifies the backend: two Backends with
	// the same Addr are the same backend. The hashing algorithms hash it as written, so
	// to map keys as nginx does, write it as in nginx's server line.
	Addr string
	// Weight is the backend's share of traffic relative to the others. If zero, 1.
	// It is at most [MaxWeight].
	Weight int
	// Meta holds free-form labels (zone, version...) for the user; lb does not read it.
	// The balancer keeps a copy.
	Meta map[string]string
}

// MaxWeight is the largest Backend.Weight.
const MaxWeight = 10000

// weight returns the backend's weight with the default applied.
func (b Backend) weight() int {
	if b.Weight <= 0 {
		return 1
	}
	return b.Weight
}

// State bits of a Target; a Target is available when none is set.
const (
	stateDown    = 1 << iota // failed its active health check
	stateEjected             // ejected by outlier detection
)

// Target is a backend as the balancer tracks it: its health, its in-flight requests,
// its latency score. A Target lives as long as its backend stays in the set (a change
// of weight or metadata makes a new Target that inherits the health state). Its
// methods are safe for concurrent use.
type Target[T any] struct {
	backend Backend // immutable
	weight  int64   // immutable, with the default applied
	value   T       // immutable: Options.Attach's result
	lb      *LoadBalancer[T]

	state    atomic.Uint32
	inflight atomic.Int64

	// Peak-EWMA score, packed so that one atomic load reads a consistent pair: the
	// latency in nanoseconds as float32 bits (high half) and the time of the last
	// observation in milliseconds since the balancer's epoch, modulo 2^32 (low half).
	ewma atomic.Uint64

	// Outlier detection.
	consecFail atomic.Int32
	// Guarded by lb.mu:
	ejections  int // times ejected in a row (the backoff multiplier)
	returnedAt time.Duration
	ejectTimer *time.Timer
}

// Backend returns the backend this Target tracks.
func (t *Target[T]) Backend() Backend { return t.backend }

// Addr returns the backend's address.
func (t *Target[T]) Addr() string { return t.backend.Addr }

// Value returns what Options.Attach made for this backend (T's zero value without
// Attach).
func (t *Target[T]) Value() T { return t.value }

// Available reports whether the Target is neither marked down by a health check nor
// ejected.
func (t *Target[T]) Available() bool { return t.state.Load() == 0 }

// Healthy reports whether the last active health checks passed (true when there are
// none).
func (t *Target[T]) Healthy() bool { return t.state.Load()&stateDown == 0 }

// Ejected reports whether outlier detection ejected the backend for now.
func (t *Target[T]) Ejected() bool { return t.state.Load()&stateEjected != 0 }

// InFlight returns the number of picks of this backend not yet released with
// [Pick.Done].
func (t *Target[T]) InFlight() int64 { return t.inflight.Load() }

// Latency returns the backend's peak-EWMA latency score as of now (0 before the first
// observation).
func (t *Target[T]) Latency() time.Duration {
	return time.Duration(t.decayedEWMA(t.lb.now()))
}

// decayedEWMA returns the latency score decayed to now without storing it, so an idle
// backend's score fades and the backend is tried again.
func (t *Target[T]) decayedEWMA(now time.Duration) float64 {
	v, stamp := unpackEWMA(t.ewma.Load())
	if v == 0 {
		return 0
	}
	dt := uint32(now.Milliseconds()) - stamp
	if dt == 0 || dt > 1<<31 {
		return v
	}
	return v * expNeg(float64(dt)*1e6/float64(t.lb.decay))
}

func packEWMA(v float64, now time.Duration) uint64 {
	return uint64(math.Float32bits(float32(v)))<<32 | uint64(uint32(now.Milliseconds()))
}

func unpackEWMA(x uint64) (v float64, stampMillis uint32) {
	return float64(math.Float32frombits(uint32(x >> 32))), uint32(x)
}

// observe records one latency sample. A sample above the score replaces it (the peak);
// one below moves it by an exponential weight that grows with the time since the last
// sample.
func (t *Target[T]) observe(now, rtt time.Duration) {
	r := float64(rtt)
	for {
		old := t.ewma.Load()
		v, stamp := unpackEWMA(old)
		if v != 0 && r <= v {
			dt := uint32(now.Milliseconds()) - stamp
			if dt > 1<<31 {
				dt = 0
			}
			w := expNeg(float64(dt) * 1e6 / float64(t.lb.decay))
			r = v*w + r*(1-w)
		}
		if t.ewma.CompareAndSwap(old, packEWMA(r, now)) {
			return
		}
		r = float64(rtt)
	}
}

// expNeg returns e^-x for x >= 0 to about 5 significant digits, several times faster
// than math.Exp: 2^-(x·log2 e) split into an integer power of two, set in the
// exponent bits, and a fraction by a degree-6 Taylor polynomial.
func expNeg(x float64) float64 {
	if x <= 0 {
		return 1
	}
	if x > 700 {
		return 0
	}
	t := x * math.Log2E
	k := math.Floor(t)
	g := (t - k) * math.Ln2 // in [0, ln 2)
	p := 1 - g*(1-g/2*(1-g/3*(1-g/4*(1-g/5*(1-g/6)))))
	return p * math.Float64frombits(uint64(1023-int64(k))<<52)
}

// resetScore forgets the latency score, so that a backend back from being down is
// scored afresh instead of by the failures that took it down.
func (t *Target[T]) resetScore() { t.ewma.Store(0) }

// setState sets or clears bit and reports whether the Target's availability changed.
func (t *Target[T]) setState(bit uint32, on bool) (changed bool) {
	for {
		old := t.state.Load()
		nw := old &^ bit
		if on {
			nw = old | bit
		}
		if nw == old {
			return false
		}
		if t.state.CompareAndSwap(old, nw) {
			return true
		}
	}
}
