package evict

import (
	"fmt"
	"testing"

	"github.com/maypok86/otter/v2"
)

type hitTrace struct {
	name     string
	trace    func() []uint64
	capacity int
}

func hitTraces(short bool) []hitTrace {
	const keys = 100_000
	requests := 1_000_000
	if short {
		requests = 200_000
	}
	var ts []hitTrace
	for _, alpha := range []float64{0.8, 1.0, 1.2} {
		for _, pct := range []int{1, 10} {
			ts = append(ts, hitTrace{
				name:     fmt.Sprintf("zipf%.1f/cap%d%%", alpha, pct),
				trace:    func() []uint64 { return zipfTrace(uint64(alpha*100), requests, keys, alpha) },
				capacity: keys * pct / 100,
			})
		}
	}
	for _, pct := range []int{1, 10} {
		ts = append(ts, hitTrace{
			name:     fmt.Sprintf("zipf1.0+scans/cap%d%%", pct),
			trace:    func() []uint64 { return scanTrace(42, requests, keys, 1.0, 100_000, 20_000) },
			capacity: keys * pct / 100,
		})
	}
	return ts
}

// ratioOurs replays tr through a Cache as a cache-aside client does (Get, and Set on a
// miss) and returns the hit ratio.
func ratioOurs(t testing.TB, tr []uint64, capacity int) float64 {
	c, err := New(Options[uint64, uint64]{Capacity: int64(capacity)})
	if err != nil {
		t.Fatal(err)
	}
	hits := 0
	for _, k := range tr {
		if _, ok := c.Get(k); ok {
			hits++
		} else {
			c.Set(k, k, 1)
		}
	}
	if c.Len() > capacity {
		t.Fatalf("%d entries in a cache of %d", c.Len(), capacity)
	}
	return float64(hits) / float64(len(tr))
}

func ratioOtter(t testing.TB, tr []uint64, capacity int) float64 {
	c := otter.Must(&otter.Options[uint64, uint64]{MaximumSize: capacity})
	hits := 0
	for _, k := range tr {
		if _, ok := c.GetIfPresent(k); ok {
			hits++
		} else {
			c.Set(k, k)
		}
	}
	return float64(hits) / float64(len(tr))
}

// TestHitRatio replays each trace through a Cache and through otter's W-TinyLFU cache of
// the same capacity, and fails if ours hits less often. Under -short the traces have 200k
// requests instead of 1M; under -race it is skipped, as it runs in one goroutine and the
// race detector makes it slow.
func TestHitRatio(t *testing.T) {
	if raceEnabled {
		t.Skip("single-goroutine replay; slow under the race detector")
	}
	for _, ht := range hitTraces(testing.Short()) {
		t.Run(ht.name, func(t *testing.T) {
			tr := ht.trace()
			ours := ratioOurs(t, tr, ht.capacity)
			theirs := ratioOtter(t, tr, ht.capacity)
			t.Logf("| %s | %.4f | %.4f |", ht.name, ours, theirs)
			if ours < theirs {
				t.Errorf("hit ratio %.4f, otter's %.4f", ours, theirs)
			}
		})
	}
}
