package limit

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestClock: the coarse time trails the precise one by at most a tick while it is read,
// and its ticker stops once it is not, leaving the precise time.
func TestClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var c clock
		c.init()
		if got := c.fast(); got != 0 || !c.running.Load() {
			t.Fatalf("first reading %d, running %v; want 0 from the precise clock, and the ticker started", got, c.running.Load())
		}
		for range 50 {
			time.Sleep(3 * time.Millisecond / 2)
			synctest.Wait()
			now, fast := c.now(), c.fast()
			if fast > now || now-fast > int64(coarseTick) {
				t.Fatalf("coarse %v for a precise %v", time.Duration(fast), time.Duration(now))
			}
		}
		time.Sleep((coarseIdle + 2) * coarseTick) // no readings
		synctest.Wait()
		if c.running.Load() {
			t.Fatalf("the ticker still runs after %d idle ticks", coarseIdle+2)
		}
		time.Sleep(time.Second)
		if fast, now := c.fast(), c.now(); fast != now {
			t.Fatalf("reading after a pause: %v, want the precise %v", time.Duration(fast), time.Duration(now))
		}
	})
}

// TestClockLagRefusal: a bucket whose coarse clock lags behind does not refuse a request
// the precise time allows, and says exactly how long to wait.
func TestClockLagRefusal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := NewTokenBucket(TokenBucketOptions{Rate: 1, Burst: 1})
		if err != nil {
			t.Fatal(err)
		}
		if ok, _ := b.Allow("k"); !ok {
			t.Fatal("first request refused")
		}
		time.Sleep(time.Second)
		b.clk.coarse.Store(int64(100 * time.Millisecond)) // as if the ticker fell behind
		b.clk.running.Store(true)
		if ok, wait := b.Allow("k"); !ok {
			t.Fatalf("refused on a lagging clock, retry after %v; the precise time allows it", wait)
		}
		time.Sleep(300 * time.Millisecond)
		if ok, wait := b.Allow("k"); ok || wait != 700*time.Millisecond {
			t.Fatalf("%v, retry after %v; want refused, 700ms", ok, wait)
		}
		r, err := NewRate(RateOptions{Window: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		l := r.Limiter(1)
		if d, _ := l.Limit(t.Context(), "k"); !d.Allowed {
			t.Fatal("first request refused")
		}
		time.Sleep(2 * time.Second)                // the first window slid out
		r.clk.coarse.Store(int64(time.Second) - 1) // still in it, by the lagging clock
		r.clk.running.Store(true)
		if d, _ := l.Limit(t.Context(), "k"); !d.Allowed {
			t.Fatalf("refused on a lagging clock: %+v", d)
		}
	})
}
