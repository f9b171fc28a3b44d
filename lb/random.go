package lb

import (
	"math/rand/v2"
	"time"
)

// randomPicker picks at random in proportion to weight, by binary search over the
// cumulative weights.
type randomPicker struct {
	cum []uint64 // cum[i] is the sum of the weights of targets 0..i
}

func newRandomPicker(ts []*Target) *randomPicker {
	p := &randomPicker{cum: make([]uint64, len(ts))}
	var sum uint64
	for i, t := range ts {
		sum += uint64(t.weight)
		p.cum[i] = sum
	}
	return p
}

func (p *randomPicker) pick(s *snapshot, _ string, a *Attempts, _ time.Duration) *Target {
	total := p.cum[len(p.cum)-1]
	for range maxWalk {
		r := rand.Uint64N(total)
		lo, hi := 0, len(p.cum)-1
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if p.cum[m] > r {
				hi = m
			} else {
				lo = m + 1
			}
		}
		if t := s.targets[lo]; usable(t, a) {
			return t
		}
	}
	return scan(s, a)
}
