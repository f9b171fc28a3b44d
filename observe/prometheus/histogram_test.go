package prometheus

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestDurationHistogram: the package's duration histogram exposes what client_golang's
// histogram does for the same observations, at the bounds exactly and around them.
func TestDurationHistogram(t *testing.T) {
	buckets := DefaultBuckets()
	v := newDurationVec("t", "d_seconds", "help", buckets, []string{"service"})
	h := v.with("s")
	ref := prom.NewHistogram(prom.HistogramOpts{Name: "ref", Buckets: buckets})
	observe := func(d time.Duration) {
		h.observe(d)
		ref.Observe(d.Seconds())
	}
	for _, b := range buckets {
		at := time.Duration(math.Round(b * 1e9))
		observe(at - 1)
		observe(at)
		observe(at + 1)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		observe(time.Duration(rng.Int64N(int64(20 * time.Second))))
	}
	observe(0)

	var got, want dto.Metric
	ch := make(chan prom.Metric, 1)
	v.Collect(ch)
	if err := (<-ch).Write(&got); err != nil {
		t.Fatal(err)
	}
	if err := ref.Write(&want); err != nil {
		t.Fatal(err)
	}
	g, w := got.GetHistogram(), want.GetHistogram()
	if g.GetSampleCount() != w.GetSampleCount() {
		t.Errorf("count %d, want %d", g.GetSampleCount(), w.GetSampleCount())
	}
	if d := math.Abs(g.GetSampleSum() - w.GetSampleSum()); d > 1e-6*w.GetSampleSum() {
		t.Errorf("sum %v, want %v", g.GetSampleSum(), w.GetSampleSum())
	}
	if len(g.GetBucket()) != len(w.GetBucket()) {
		t.Fatalf("%d buckets, want %d", len(g.GetBucket()), len(w.GetBucket()))
	}
	for i, b := range w.GetBucket() {
		if gb := g.GetBucket()[i]; gb.GetUpperBound() != b.GetUpperBound() || gb.GetCumulativeCount() != b.GetCumulativeCount() {
			t.Errorf("bucket le=%v holds %d, want le=%v holding %d", gb.GetUpperBound(), gb.GetCumulativeCount(),
				b.GetUpperBound(), b.GetCumulativeCount())
		}
	}
	if l := got.GetLabel(); len(l) != 1 || l[0].GetName() != "service" || l[0].GetValue() != "s" {
		t.Errorf("labels %v", l)
	}
	if v.with("s") != h {
		t.Error("the same label values gave another histogram")
	}
}

// BenchmarkDurationObserve is one observation of a request's duration.
func BenchmarkDurationObserve(b *testing.B) {
	h := newDurationVec("t", "d_seconds", "help", DefaultBuckets(), []string{"service"}).with("s")
	d := 3 * time.Millisecond
	for b.Loop() {
		h.observe(d)
	}
}

// BenchmarkDurationObserveClientGolang is the same observation on client_golang's
// histogram, for comparison.
func BenchmarkDurationObserveClientGolang(b *testing.B) {
	h := prom.NewHistogram(prom.HistogramOpts{Name: "ref", Buckets: DefaultBuckets()})
	d := 3 * time.Millisecond
	for b.Loop() {
		h.Observe(d.Seconds())
	}
}
