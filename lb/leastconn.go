package lb

import (
	"math/rand/v2"
	"time"
)

// leastConnWindow is how many backends LeastConn compares per pick.
const leastConnWindow = 32

// leastConnPicker scans the targets from a random start for the fewest in-flight
// requests per unit of weight: all of them up to 32, else 32 consecutive ones (a
// sample that keeps the pick's cost bounded, as Envoy's least-request does with its
// random choices).
type leastConnPicker[T any] struct{}

func (leastConnPicker[T]) pick(s *snapshot[T], _ string, a *Attempts[T], _ time.Duration) *Target[T] {
	n := len(s.targets)
	start := rand.IntN(n)
	var best *Target[T]
	var bestIn, bestW int64
	for i := range min(n, leastConnWindow) {
		j := start + i
		if j >= n {
			j -= n
		}
		t := s.targets[j]
		if t.state.Load() != 0 {
			continue
		}
		in := t.inflight.Load()
		// in/t.weight < bestIn/best.weight, without division.
		if best != nil && in*bestW >= bestIn*t.weight {
			continue
		}
		if a.Tried(t) {
			continue
		}
		best, bestIn, bestW = t, in, t.weight
	}
	if best == nil && n > leastConnWindow {
		return scan(s, a)
	}
	return best
}
