package evict

import (
	"math"
	"math/rand/v2"
	"sort"
)

// zipf draws key indexes 0..n-1 with P(i) proportional to 1/(i+1)^alpha, for any
// alpha > 0 (math/rand/v2's Zipf needs alpha > 1).
type zipf struct {
	cdf []float64
	rng *rand.Rand
}

func newZipf(seed uint64, n int, alpha float64) *zipf {
	cdf := make([]float64, n)
	sum := 0.0
	for i := range n {
		sum += 1 / math.Pow(float64(i+1), alpha)
		cdf[i] = sum
	}
	for i := range cdf {
		cdf[i] /= sum
	}
	return &zipf{cdf: cdf, rng: rand.New(rand.NewPCG(seed, seed^0x5eed))}
}

func (z *zipf) next() uint64 {
	u := z.rng.Float64()
	return uint64(sort.SearchFloat64s(z.cdf, u))
}

// zipfTrace returns requests for keys drawn from a Zipf distribution. Key ids are
// scattered so that popularity is not ordered by id.
func zipfTrace(seed uint64, requests, keys int, alpha float64) []uint64 {
	z := newZipf(seed, keys, alpha)
	perm := rand.New(rand.NewPCG(seed+1, 7)).Perm(keys)
	tr := make([]uint64, requests)
	for i := range tr {
		tr[i] = uint64(perm[z.next()])
	}
	return tr
}

// scanTrace returns Zipf requests (alpha) interrupted, every period requests, by a scan
// of scanLen keys that are asked for once and never again.
func scanTrace(seed uint64, requests, keys int, alpha float64, period, scanLen int) []uint64 {
	z := newZipf(seed, keys, alpha)
	perm := rand.New(rand.NewPCG(seed+1, 7)).Perm(keys)
	tr := make([]uint64, 0, requests)
	next := uint64(keys)
	for len(tr) < requests {
		for i := 0; i < period-scanLen && len(tr) < requests; i++ {
			tr = append(tr, uint64(perm[z.next()]))
		}
		for i := 0; i < scanLen && len(tr) < requests; i++ {
			tr = append(tr, next)
			next++
		}
	}
	return tr
}
