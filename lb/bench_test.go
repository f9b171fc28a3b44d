package lb_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/lb"
)

// BenchmarkSelect picks from 100 backends with each algorithm, releasing each pick.
func BenchmarkSelect(b *testing.B) {
	bs := backends(100)
	for i := range bs {
		bs[i].Addr = "10.0." + strconv.Itoa(i/250) + "." + strconv.Itoa(i%250+1) + ":8080"
		bs[i].Weight = 1 + i%3
	}
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "/api/users/" + strconv.Itoa(i*7919)
	}
	for _, algo := range allAlgorithms {
		b.Run(algo.String(), func(b *testing.B) {
			l := newLB(b, algo, bs)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				p, err := l.Select(keys[i&1023], nil)
				if err != nil {
					b.Fatal(err)
				}
				p.Done(lb.Success)
				i++
			}
		})
	}
}

// BenchmarkSelectLatency is BenchmarkSelect with the latency given by the caller
// (Pick.DoneLatency), as a proxy that has the upstream timing at hand does it.
func BenchmarkSelectLatency(b *testing.B) {
	bs := backends(100)
	for i := range bs {
		bs[i].Addr = "10.0." + strconv.Itoa(i/250) + "." + strconv.Itoa(i%250+1) + ":8080"
		bs[i].Weight = 1 + i%3
	}
	for _, algo := range allAlgorithms {
		b.Run(algo.String(), func(b *testing.B) {
			l := newLB(b, algo, bs)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				p, err := l.Select("/api/users/42", nil)
				if err != nil {
					b.Fatal(err)
				}
				p.DoneLatency(lb.Success, time.Duration(100+i%50)*time.Microsecond)
				i++
			}
		})
	}
}

// BenchmarkSelectParallel is BenchmarkSelect from every P at once.
func BenchmarkSelectParallel(b *testing.B) {
	bs := backends(100)
	for i := range bs {
		bs[i].Addr = "10.0.1." + strconv.Itoa(i+1) + ":8080"
	}
	for _, algo := range allAlgorithms {
		b.Run(algo.String(), func(b *testing.B) {
			l := newLB(b, algo, bs)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var a lb.Attempts[string]
				for pb.Next() {
					a.Reset()
					p, err := l.Select("/a/key", &a)
					if err != nil {
						b.Error(err)
						return
					}
					p.Done(lb.Success)
				}
			})
		})
	}
}

// BenchmarkBuild measures building each algorithm's tables for 100 backends (what a
// backend set change costs).
func BenchmarkBuild(b *testing.B) {
	bs := backends(100)
	for i := range bs {
		bs[i].Addr = "10.0.1." + strconv.Itoa(i+1) + ":8080"
	}
	for _, algo := range allAlgorithms {
		b.Run(algo.String(), func(b *testing.B) {
			l := newLB(b, algo, bs)
			b.ReportAllocs()
			odd := false
			for b.Loop() {
				// Alternate two sets so that every call rebuilds.
				set := bs
				if odd {
					set = bs[1:]
				}
				odd = !odd
				if err := l.SetBackends(set); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMaglevRemap reports the share of keys that move when one of 100 backends
// is removed (ideal: 1%).
func BenchmarkMaglevRemap(b *testing.B) {
	bs := backends(100)
	for i := range bs {
		bs[i].Addr = "10.0.1." + strconv.Itoa(i+1) + ":8080"
	}
	var frac float64
	for b.Loop() {
		frac = remapFraction(b, lb.Maglev, bs, 50, 20000)
	}
	b.ReportMetric(frac*100, "%moved")
}

func BenchmarkRetryBudget(b *testing.B) {
	bud, err := lb.NewRetryBudget(lb.RetryBudgetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		bud.Request()
	}
}
