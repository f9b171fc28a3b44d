package prometheus

import (
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"
)

// The duration histograms are the package's own rather than client_golang's: a
// request observes two (its duration and its upstream's time to first byte), and
// client_golang's Observe takes a float of seconds, finds its bucket by float
// comparisons and adds to the sum with a compare-and-swap loop. These count whole
// nanoseconds: a bucket found by integer comparisons, and two atomic additions. At
// each scrape they are handed to client_golang as constant histograms, so the
// exposition is client_golang's own.

// durationVec is a family of duration histograms, one per set of label values; it is a
// prom.Collector.
type durationVec struct {
	desc   *prom.Desc
	bounds []int64   // the upper bounds in nanoseconds: ⌊bucket × 1e9⌋
	upper  []float64 // the same in seconds, as the options gave them

	mu     sync.Mutex // guards series, added to only (a service's series live as long as the Metrics)
	series []*durationHist
	byKey  map[string]*durationHist
}

// durationHist is one histogram of a durationVec. Its counts are per bucket, not
// cumulative; the count of observations is their sum, read at a scrape, so that it
// always matches the buckets (the sum may lag them by an observation in progress).
type durationHist struct {
	bounds []int64
	counts []atomic.Uint64 // len(bounds)+1: the last holds those above every bound
	sum    atomic.Int64    // nanoseconds
	labels []string
}

func newDurationVec(ns, name, help string, buckets []float64, labels []string) *durationVec {
	v := &durationVec{
		desc:   prom.NewDesc(prom.BuildFQName(ns, "", name), help, labels, nil),
		bounds: make([]int64, len(buckets)),
		upper:  buckets,
		byKey:  make(map[string]*durationHist),
	}
	for i, b := range buckets {
		// An integer number of nanoseconds n is at most b seconds exactly when it is
		// at most ⌊b × 1e9⌋ (bounds past the int64 range are clamped).
		ns := math.Floor(b * 1e9)
		switch {
		case ns >= math.MaxInt64:
			v.bounds[i] = math.MaxInt64
		case ns <= math.MinInt64:
			v.bounds[i] = math.MinInt64
		default:
			v.bounds[i] = int64(ns)
		}
	}
	return v
}

// with returns the histogram of the label values lv, made the first time. The
// Metrics call it once per service (and Label value) and keep the result.
func (v *durationVec) with(lv ...string) *durationHist {
	key := strings.Join(lv, "\xff")
	v.mu.Lock()
	defer v.mu.Unlock()
	if h, ok := v.byKey[key]; ok {
		return h
	}
	h := &durationHist{bounds: v.bounds, counts: make([]atomic.Uint64, len(v.bounds)+1), labels: append([]string(nil), lv...)}
	v.byKey[key] = h
	v.series = append(v.series, h)
	return h
}

// observe counts one duration.
func (h *durationHist) observe(d time.Duration) {
	n := int64(d)
	i := 0
	for i < len(h.bounds) && n > h.bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(n)
}

// Describe implements prom.Collector.
func (v *durationVec) Describe(ch chan<- *prom.Desc) { ch <- v.desc }

// Collect implements prom.Collector.
func (v *durationVec) Collect(ch chan<- prom.Metric) {
	v.mu.Lock()
	series := v.series[:len(v.series):len(v.series)]
	v.mu.Unlock()
	for _, h := range series {
		buckets := make(map[float64]uint64, len(v.upper))
		var count uint64
		for i, ub := range v.upper {
			count += h.counts[i].Load()
			buckets[ub] = count
		}
		count += h.counts[len(v.upper)].Load()
		ch <- prom.MustNewConstHistogram(v.desc, count, float64(h.sum.Load())/1e9, buckets, h.labels...)
	}
}
