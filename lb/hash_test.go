package lb_test

import (
	"strconv"
	"testing"

	"github.com/gotthard-proxy/gotthard/lb"
)

// remapFraction returns the share of nkeys keys whose backend changes when backend
// drop is removed from bs.
func remapFraction(t testing.TB, algo lb.Algorithm, bs []lb.Backend, drop, nkeys int) float64 {
	t.Helper()
	l := newLB(t, algo, bs)
	before := make([]string, nkeys)
	for i := range before {
		before[i] = pickAddr(t, l, "k"+strconv.Itoa(i), nil)
	}
	rest := append(append([]lb.Backend{}, bs[:drop]...), bs[drop+1:]...)
	if err := l.SetBackends(rest); err != nil {
		t.Fatal(err)
	}
	moved := 0
	for i := range before {
		got := pickAddr(t, l, "k"+strconv.Itoa(i), nil)
		if got != before[i] {
			moved++
			// Ketama moves only the removed backend's keys; Maglev may move a few
			// more (its tables are rebuilt), which the fraction bounds below.
			if algo == lb.Ketama && before[i] != bs[drop].Addr {
				t.Fatalf("%v: key %d moved from %s, which stayed, to %s", algo, i, before[i], got)
			}
		}
	}
	return float64(moved) / float64(nkeys)
}

// TestRemapOnRemoval: removing one of N backends moves about 1/N of the keys, and only
// the removed backend's keys for Ketama.
func TestRemapOnRemoval(t *testing.T) {
	for _, algo := range []lb.Algorithm{lb.Ketama, lb.Maglev} {
		for _, n := range []int{5, 10, 50} {
			t.Run(algo.String()+"/"+strconv.Itoa(n), func(t *testing.T) {
				bs := backends(n)
				frac := remapFraction(t, algo, bs, n/2, 20000)
				want := 1 / float64(n)
				t.Logf("%v, %d backends: %.2f%% of keys moved (ideal %.2f%%)", algo, n, frac*100, want*100)
				if frac < want*0.5 || frac > want*1.6 {
					t.Fatalf("%.3f of keys moved, want about %.3f", frac, want)
				}
			})
		}
	}
}
