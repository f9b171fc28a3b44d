package limit

import (
	"context"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestRateAccuracy: for a Zipf mix of keys, no count is under-estimated, and at most
// e^-Depth of the keys are over-estimated by more than e/Width of all events, the
// count-min sketch's bound; the heavy keys are within 1%.
func TestRateAccuracy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) { // time stands still: one window
		const events = 1_000_000
		r, err := NewRate(RateOptions{Window: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		z := rand.NewZipf(rand.New(rand.NewPCG(1, 2)), 1.1, 1, 200_000)
		exact := map[uint64]int64{}
		var key []byte
		for range events {
			k := z.Uint64()
			exact[k]++
			key = strconv.AppendUint(key[:0], k, 10)
			r.ObserveBytes(key, 1)
		}
		bound := math.E / float64(r.width) * events
		delta := math.Exp(-float64(r.depth))
		var over int
		var sumErr float64
		for k, n := range exact {
			est := r.Observe(strconv.FormatUint(k, 10), 0)
			if est < n {
				t.Fatalf("key %d: estimate %d under the exact count %d", k, est, n)
			}
			if float64(est-n) > bound {
				over++
			}
			sumErr += float64(est - n)
		}
		frac := float64(over) / float64(len(exact))
		t.Logf("%d events, %d keys, %d KiB: mean over-estimate %.1f events (bound %.0f); %.4f of keys over the bound (δ %.4f)",
			events, len(exact), r.MemoryBytes()>>10, sumErr/float64(len(exact)), bound, frac, delta)
		if mean := sumErr / float64(len(exact)); mean > bound/8 {
			t.Errorf("mean over-estimate %.1f, over an eighth of the bound %.0f", mean, bound)
		}
		if frac > delta {
			t.Fatalf("%.4f of the keys are over the bound e/Width×N = %.0f, more than δ = %.4f", frac, bound, delta)
		}
	})
}

// TestRateSliding: the rate slides: the previous window counts for the part of it still
// inside, and a pause of two windows forgets everything.
func TestRateSliding(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, err := NewRate(RateOptions{Window: time.Second, Width: 64, Depth: 2})
		if err != nil {
			t.Fatal(err)
		}
		near := func(what string, got, want float64) {
			t.Helper()
			if math.Abs(got-want) > 1e-9 {
				t.Fatalf("%s: rate %v, want %v", what, got, want)
			}
		}
		if got := r.Observe("a", 100); got != 100 {
			t.Fatalf("Observe returned %d, want 100", got)
		}
		near("in window 0", r.Rate("a"), 100)
		near("another key", r.RateBytes([]byte("b")), 0)
		time.Sleep(1500 * time.Millisecond) // half into window 1, nothing observed yet
		near("half into window 1", r.Rate("a"), 50)
		if got := r.Observe("a", 10); got != 10 {
			t.Fatalf("Observe in a new window returned %d, want 10", got)
		}
		near("half into window 1, 10 more", r.Rate("a"), 60)
		time.Sleep(750 * time.Millisecond)
		near("a quarter into window 2", r.Rate("a"), 7.5)
		r.Observe("a", 4)
		near("after 4 more", r.Rate("a"), 11.5)
		time.Sleep(3 * time.Second) // window 5: everything is old
		near("after a pause", r.Rate("a"), 0)
		if got := r.Observe("a", 1); got != 1 {
			t.Fatalf("Observe after a pause returned %d, want 1: old counts were not cleared", got)
		}
		// Windows 6 and 7 go by with traffic: moving to window 7 clears the table of
		// window 8, which held window 5.
		for range 2 {
			time.Sleep(time.Second)
			r.Observe("z", 1)
		}
		time.Sleep(time.Second)
		if got := r.Observe("a", 1); got != 1 {
			t.Fatalf("Observe in window 8 returned %d, want 1: the table of window 5 was not cleared", got)
		}
	})
}

// TestRateLimiter: a Rate as a Limiter refuses past perSecond, with a RetryAfter after
// which a request is allowed again.
func TestRateLimiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, err := NewRate(RateOptions{Window: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		l := r.Limiter(10)
		ctx := context.Background()
		for i := range 10 {
			if d, err := l.Limit(ctx, "c"); err != nil || !d.Allowed {
				t.Fatalf("request %d refused: %+v, %v", i, d, err)
			}
		}
		d, err := l.Limit(ctx, "c")
		if err != nil || d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > 2*time.Second {
			t.Fatalf("request 11: %+v, %v; want refused with 0 < RetryAfter <= 2s", d, err)
		}
		if d, _ := l.Limit(ctx, "other"); !d.Allowed {
			t.Fatal("another key was refused")
		}
		time.Sleep(d.RetryAfter + time.Millisecond)
		if d, err := l.Limit(ctx, "c"); err != nil || !d.Allowed {
			t.Fatalf("after RetryAfter: %+v, %v; want allowed", d, err)
		}
	})
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	r, _ := NewRate(RateOptions{})
	if _, err := r.Limiter(1).Limit(canceled, "k"); err == nil {
		t.Fatal("a canceled context gave no error")
	}
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		name                string
		cur, prev, f, limit float64
		want                float64
	}{
		{"under", 5, 5, 0.5, 10, 0},
		{"previous slides out", 5, 20, 0.25, 10, 0.5},
		{"current over", 20, 0, 0.5, 10, 1},
		{"both over", 20, 40, 0, 10, 1.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := retryAfter(tt.cur, tt.prev, tt.f, tt.limit)
			if math.Abs(got-tt.want) > 1e-9 {
				t.Fatalf("retryAfter = %v, want %v", got, tt.want)
			}
			if got > 0 { // at that time the rate is at the limit
				f := tt.f + got
				var at float64
				if f < 1 {
					at = tt.prev*(1-f) + tt.cur
				} else {
					at = tt.cur * (2 - f)
				}
				if at > tt.limit+1e-9 {
					t.Fatalf("after %v windows the count is %v, over %v", got, at, tt.limit)
				}
			}
		})
	}
}

// TestRateMillionKeys: a million distinct keys cost no memory beyond the fixed table.
func TestRateMillionKeys(t *testing.T) {
	r, err := NewRate(RateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	key := make([]byte, 0, 32)
	for i := range 1_000_000 {
		key = strconv.AppendInt(append(key[:0], "10.0."...), int64(i), 10)
		r.ObserveBytes(key, 1)
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<10 {
		t.Fatalf("a million keys allocated %d bytes", grew)
	}
	if r.MemoryBytes() != 3*4*2048*8 {
		t.Fatalf("MemoryBytes %d", r.MemoryBytes())
	}
	if a := testing.AllocsPerRun(100, func() { r.Observe("k", 1) }); a != 0 {
		t.Fatalf("Observe allocates %v times", a)
	}
}

// TestRateConcurrent: counts from many goroutines add up (run it with -race).
func TestRateConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, err := NewRate(RateOptions{Window: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 1000 {
					r.Observe("shared", 1)
					r.Observe(strconv.Itoa(g*1000+i), 1)
					r.Rate("shared")
				}
			})
		}
		wg.Wait()
		if got := r.Observe("shared", 0); got < 8000 || got > 8000+8000/10 {
			t.Fatalf("shared count %d, want 8000 (a little more from collisions)", got)
		}
	})
}
