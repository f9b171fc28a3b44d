package evict

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/maypok86/otter/v2"
)

const (
	benchKeys  = 1 << 16
	benchTrace = 1 << 20
)

// benchData returns benchKeys string keys and a Zipf (alpha 1.0) trace of indexes into
// them.
func benchData() ([]string, []uint64) {
	keys := make([]string, benchKeys)
	for i := range keys {
		keys[i] = "https://example.com/objects/" + strconv.Itoa(i) + "?v=1"
	}
	return keys, zipfTrace(1, benchTrace, benchKeys, 1.0)
}

// BenchmarkGetParallel measures concurrent reads of a full cache holding every key (so
// every Get hits), ours against otter's, with string keys drawn from a Zipf trace. Besides
// the wall time per read it reports the process's CPU time per read (cpu-ns/op), which
// other load on the machine disturbs less.
func BenchmarkGetParallel(b *testing.B) {
	keys, tr := benchData()
	b.Run("evict", func(b *testing.B) {
		c, err := New(Options[string, int]{Capacity: benchKeys})
		if err != nil {
			b.Fatal(err)
		}
		for i, k := range keys {
			c.Set(k, i, 1)
		}
		if c.Len() != benchKeys {
			b.Fatalf("Len %d, want %d", c.Len(), benchKeys)
		}
		var start atomic.Uint64
		b.ReportAllocs()
		b.ResetTimer()
		cpu := processCPU()
		b.RunParallel(func(pb *testing.PB) {
			i := start.Add(benchTrace / 7)
			for pb.Next() {
				c.Get(keys[tr[i%benchTrace]])
				i++
			}
		})
		reportCPU(b, cpu)
	})
	b.Run("otter", func(b *testing.B) {
		c := otter.Must(&otter.Options[string, int]{MaximumSize: benchKeys})
		for i, k := range keys {
			c.Set(k, i)
		}
		c.CleanUp()
		var start atomic.Uint64
		b.ReportAllocs()
		b.ResetTimer()
		cpu := processCPU()
		b.RunParallel(func(pb *testing.PB) {
			i := start.Add(benchTrace / 7)
			for pb.Next() {
				c.GetIfPresent(keys[tr[i%benchTrace]])
				i++
			}
		})
		reportCPU(b, cpu)
	})
}

// reportCPU reports the process's CPU time per op since start.
func reportCPU(b *testing.B, start time.Duration) {
	if end := processCPU(); start >= 0 && end >= 0 {
		b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkGet measures one goroutine's hits.
func BenchmarkGet(b *testing.B) {
	keys, tr := benchData()
	c, err := New(Options[string, int]{Capacity: benchKeys})
	if err != nil {
		b.Fatal(err)
	}
	for i, k := range keys {
		c.Set(k, i, 1)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.Get(keys[tr[i%benchTrace]])
		i++
	}
}

// BenchmarkSet measures a cache-aside client's misses: Get, then Set, over a Zipf trace
// with a cache holding a tenth of the keys.
func BenchmarkSet(b *testing.B) {
	keys, tr := benchData()
	c, err := New(Options[string, int]{Capacity: benchKeys / 10})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := keys[tr[i%benchTrace]]
		if _, ok := c.Get(k); !ok {
			c.Set(k, i, 1)
		}
		i++
	}
}
