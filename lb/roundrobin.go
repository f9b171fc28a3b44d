package lb

import (
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// maxSchedule bounds the round-robin schedule; larger total weights are scaled down.
const maxSchedule = 1 << 16

// roundRobinPicker walks a precomputed smooth weighted round-robin schedule with an
// atomic counter: the order nginx's algorithm gives, without its lock.
type roundRobinPicker[T any] struct {
	sched []uint16 // indexes into the snapshot's targets
	next  atomic.Uint64
}

func newRoundRobinPicker[T any](ts []*Target[T]) *roundRobinPicker[T] {
	ws := make([]int64, len(ts))
	var g, total int64
	for i, t := range ts {
		ws[i] = t.weight
		g = gcd(g, t.weight)
	}
	for i := range ws {
		ws[i] /= g
		total += ws[i]
	}
	if total > maxSchedule {
		scale := float64(maxSchedule) / float64(total)
		total = 0
		for i := range ws {
			ws[i] = max(1, int64(float64(ws[i])*scale))
			total += ws[i]
		}
	}
	return &roundRobinPicker[T]{sched: smoothSchedule(ws, total)}
}

// smoothSchedule returns one period of nginx's smooth weighted round robin: at each
// step every backend's current weight grows by its weight, the largest is chosen
// (the first one on ties) and loses the total.
func smoothSchedule(ws []int64, total int64) []uint16 {
	cur := make([]int64, len(ws))
	sched := make([]uint16, 0, total)
	for range total {
		best := -1
		for i, w := range ws {
			cur[i] += w
			if best < 0 || cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		sched = append(sched, uint16(best))
	}
	return sched
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// maxWalk bounds the steps a picker takes past unavailable backends before it falls
// back to a scan.
const maxWalk = 16

func (p *roundRobinPicker[T]) pick(s *snapshot[T], _ string, a *Attempts[T], _ time.Duration) *Target[T] {
	n := uint64(len(p.sched))
	for range min(len(p.sched), maxWalk) {
		// Each step takes the next slot of the shared sequence, so an unavailable
		// backend's share goes to the others in proportion to their weights.
		t := s.targets[p.sched[(p.next.Add(1)-1)%n]]
		if usable(t, a) {
			return t
		}
	}
	return scan(s, a)
}

// scan returns a usable target, starting at a random one, or nil.
func scan[T any](s *snapshot[T], a *Attempts[T]) *Target[T] {
	n := len(s.targets)
	start := rand.IntN(n)
	for i := range n {
		if t := s.targets[(start+i)%n]; usable(t, a) {
			return t
		}
	}
	return nil
}
