package lb

import (
	"math/rand/v2"
	"time"
)

// randomPicker picks at random in proportion to weight, by binary search over the
// cumulative weights.
type randomPicker[T any] struct {
	cum []uint64 // cum[i] is the sum of the weights of targets 0..i
}

func newRandomPicker[T any](ts []*Target[T]) *randomPicker[T] {
	p := &randomPicker[T]{cum: make([]uint64, len(ts))}
	var sum uint64
	for i, t := range ts {
		sum += uint64(t.weight)
		p.cum[i] = sum
	}
	return p
}

func (p *randomPicker[T]) pick(s *snapshot[T], _ string, a *Attempts[T], _ time.Duration) *Target[T] {
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
