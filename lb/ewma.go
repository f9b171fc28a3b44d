package lb

import (
	"math/rand/v2"
	"time"
)

// unseenLatency is the latency assumed for a backend with no sample yet.
const unseenLatency = float64(time.Millisecond)

// ewmaPicker is power of two choices on the peak-EWMA cost: latency score times
// (in-flight + 1), divided by weight.
type ewmaPicker[T any] struct{}

func (p ewmaPicker[T]) pick(s *snapshot[T], _ string, a *Attempts[T], now time.Duration) *Target[T] {
	n := len(s.targets)
	if n == 1 {
		if t := s.targets[0]; usable(t, a) {
			return t
		}
		return nil
	}
	for range 3 {
		// Two distinct indexes from one random number (Lemire's multiply-shift).
		r := rand.Uint64()
		i := int((r & 0xffffffff) * uint64(n) >> 32)
		j := int((r >> 32) * uint64(n-1) >> 32)
		if j >= i {
			j++
		}
		x, y := s.targets[i], s.targets[j]
		ux, uy := usable(x, a), usable(y, a)
		switch {
		case ux && uy:
			if cost(y, now) < cost(x, now) {
				return y
			}
			return x
		case ux:
			return x
		case uy:
			return y
		}
	}
	return scan(s, a)
}

// cost is t's peak-EWMA cost at now.
func cost[T any](t *Target[T], now time.Duration) float64 {
	lat := t.decayedEWMA(now)
	in := float64(t.inflight.Load())
	if lat == 0 {
		// No sample yet (a new backend, or one back from being down): free while idle,
		// so it gets a request at once, then scored as unseenLatency per request.
		return unseenLatency * in / float64(t.weight)
	}
	return lat * (in + 1) / float64(t.weight)
}
