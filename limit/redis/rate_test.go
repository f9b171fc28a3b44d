package redis

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// TestRateShared: two processes (two clients, two limiters) share one limit.
func TestRateShared(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	mk := func() *Rate {
		st := newStates()
		r, err := NewRate(RateOptions{Store: st.store(srv.client(nil), "t:shared:"), Rate: 0.01, Burst: 10})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b := mk(), mk()
	allowed := 0
	for i := range 20 {
		l := a
		if i%2 == 1 {
			l = b
		}
		d, err := l.Limit(ctx, "client-1")
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed {
			allowed++
		} else if d.RetryAfter < 99*time.Second || d.RetryAfter > 100*time.Second {
			t.Fatalf("RetryAfter %v, want about 100s (one token at 0.01/s)", d.RetryAfter)
		}
	}
	if allowed != 10 {
		t.Fatalf("%d of 20 requests allowed across two processes, want the burst of 10", allowed)
	}
	if d, _ := b.Limit(ctx, "client-2"); !d.Allowed {
		t.Fatal("another key was refused")
	}
	if !a.Up() || !b.Up() {
		t.Fatal("a limiter is not using Redis")
	}
	// The bucket's key expires once the bucket is full again: 10 tokens at 0.01/s.
	ttl, err := srv.client(nil).PTTL(ctx, "t:shared:r:client-1").Result()
	if err != nil || ttl <= 990*time.Second || ttl > 1001*time.Second {
		t.Fatalf("the key's TTL is %v, %v; want about 1000s", ttl, err)
	}
}

// TestRateRefill: tokens come back at Rate, by Redis's clock.
func TestRateRefill(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	st := newStates()
	r, err := NewRate(RateOptions{Store: st.store(srv.client(nil), "t:refill:"), Rate: 20, Burst: 1})
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := r.Limit(ctx, "k"); !d.Allowed {
		t.Fatal("first request refused")
	}
	d, err := r.Limit(ctx, "k")
	if err != nil || d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > 50*time.Millisecond {
		t.Fatalf("second request: %+v, %v; want refused, RetryAfter in (0, 50ms]", d, err)
	}
	time.Sleep(d.RetryAfter + 2*time.Millisecond) // the time the limiter asked for
	if d, err := r.Limit(ctx, "k"); err != nil || !d.Allowed {
		t.Fatalf("after RetryAfter: %+v, %v", d, err)
	}
}

// TestRateFallback: Redis killed mid-test: the fallback decides, per its mode, and the
// limiter says so once; Redis back: it is used again, and says so once.
func TestRateFallback(t *testing.T) {
	tests := []struct {
		name     string
		fallback Fallback
		allowed  int // of 10 requests while Redis is down, with a burst of 3
	}{
		{"local", FallbackLocal, 3},
		{"open", FailOpen, 10},
		{"closed", FailClosed, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startRedis(t)
			ctx := context.Background()
			st := newStates()
			var dials atomic.Int64
			opts := RateOptions{Store: st.store(srv.client(&dials), "t:fb:"), Rate: 0.01, Burst: 3}
			opts.Store.Fallback = tt.fallback
			r, err := NewRate(opts)
			if err != nil {
				t.Fatal(err)
			}
			for range 3 { // the fleet's burst, used up in Redis
				if d, _ := r.Limit(ctx, "k"); !d.Allowed {
					t.Fatal("refused before the burst was used")
				}
			}
			srv.Kill()
			st.wait(t, false, func() { r.Limit(ctx, "warm") })
			allowed := 0
			for range 10 {
				d, err := r.Limit(ctx, "k")
				if err != nil {
					t.Fatal(err)
				}
				if d.Allowed {
					allowed++
				} else if tt.fallback == FailClosed && d.RetryAfter != opts.Store.RetryInterval {
					t.Fatalf("fail closed: RetryAfter %v, want RetryInterval", d.RetryAfter)
				}
			}
			if allowed != tt.allowed {
				t.Fatalf("%d of 10 allowed while Redis is down, want %d", allowed, tt.allowed)
			}
			srv.Start()
			st.wait(t, true, func() { r.Limit(ctx, "poke") })
			if !r.Up() {
				t.Fatal("Up is false after Redis came back")
			}
			// Redis has the fleet's state again: k used its burst there.
			if d, _ := r.Limit(ctx, "k2"); !d.Allowed {
				t.Fatal("a new key refused after Redis came back")
			}
			if n, err := srv.client(nil).Exists(ctx, "t:fb:r:k2").Result(); err != nil || n != 1 {
				t.Fatalf("the key is not in Redis after it came back: %v, %v", n, err)
			}
			want := []string{"WARN limit/redis: Redis unreachable, using the fallback", "INFO limit/redis: Redis reachable again, using it"}
			if got := st.logged(); !slices.Equal(got, want) {
				t.Fatalf("logged %q, want %q", got, want)
			}
		})
	}
}

// TestRateCircuit: while Redis is down, requests do not dial it; one per RetryInterval
// tries.
func TestRateCircuit(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	st := newStates()
	var dials atomic.Int64
	opts := RateOptions{Store: st.store(srv.client(&dials), "t:circ:"), Rate: 1}
	opts.Store.Fallback = FailOpen
	opts.Store.RetryInterval = time.Hour
	r, err := NewRate(opts)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := r.Limit(ctx, "k"); !d.Allowed {
		t.Fatal("refused")
	}
	srv.Kill()
	st.wait(t, false, func() { r.Limit(ctx, "k") })
	before := dials.Load()
	for range 1000 {
		if d, err := r.Limit(ctx, "k"); err != nil || !d.Allowed {
			t.Fatalf("fallback: %+v, %v", d, err)
		}
	}
	if n := dials.Load() - before; n != 0 {
		t.Fatalf("%d dials of a dead Redis within RetryInterval", n)
	}
}

// TestRateSlow: a Redis slower than Timeout counts as down.
func TestRateSlow(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	st := newStates()
	c := srv.client(nil)
	opts := RateOptions{Store: st.store(c, "t:slow:"), Rate: 1, Burst: 1}
	opts.Store.Timeout = 50 * time.Millisecond
	opts.Store.Fallback = FailOpen
	r, err := NewRate(opts)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := r.Limit(ctx, "k"); !d.Allowed {
		t.Fatal("refused")
	}
	// Redis stops answering for a while (CLIENT PAUSE holds every client's commands).
	if err := srv.client(nil).Do(ctx, "CLIENT", "PAUSE", "2000", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	d, err := r.Limit(ctx, "k")
	if err != nil || !d.Allowed || r.Up() {
		t.Fatalf("slow Redis: %+v, %v, up %v; want fail open", d, err, r.Up())
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("the call took %v, Timeout is 50ms", took)
	}
	if s := <-st.ch; s {
		t.Fatal("state change to up")
	}
}

func TestRateCanceled(t *testing.T) {
	srv := startRedis(t)
	st := newStates()
	r, err := NewRate(RateOptions{Store: st.store(srv.client(nil), "t:c:"), Rate: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Limit(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if !r.Up() || len(st.logged()) != 0 {
		t.Fatal("the caller's cancel counted against Redis")
	}
}

func TestOptions(t *testing.T) {
	good := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	defer good.Close()
	noCtx := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"})
	defer noCtx.Close()
	tests := []struct {
		name  string
		build func() error
		field string
	}{
		{"rate good", func() error { _, err := NewRate(RateOptions{Store: StoreOptions{Client: good}, Rate: 1}); return err }, ""},
		{"no client", func() error { _, err := NewRate(RateOptions{Rate: 1}); return err }, "RateOptions.Store.Client"},
		{"no ctx timeout", func() error { _, err := NewRate(RateOptions{Store: StoreOptions{Client: noCtx}, Rate: 1}); return err }, "RateOptions.Store.Client"},
		{"timeout", func() error {
			_, err := NewRate(RateOptions{Store: StoreOptions{Client: good, Timeout: -1}, Rate: 1})
			return err
		}, "RateOptions.Store.Timeout"},
		{"retry", func() error {
			_, err := NewRate(RateOptions{Store: StoreOptions{Client: good, RetryInterval: -1}, Rate: 1})
			return err
		}, "RateOptions.Store.RetryInterval"},
		{"fallback", func() error {
			_, err := NewRate(RateOptions{Store: StoreOptions{Client: good, Fallback: 9}, Rate: 1})
			return err
		}, "RateOptions.Store.Fallback"},
		{"rate", func() error { _, err := NewRate(RateOptions{Store: StoreOptions{Client: good}}); return err }, "RateOptions.Rate"},
		{"burst", func() error {
			_, err := NewRate(RateOptions{Store: StoreOptions{Client: good}, Rate: 1, Burst: -1})
			return err
		}, "RateOptions.Burst"},
		{"maxkeys", func() error {
			_, err := NewRate(RateOptions{Store: StoreOptions{Client: good}, Rate: 1, MaxKeys: -1})
			return err
		}, "RateOptions.MaxKeys"},
		{"inflight maxkeys", func() error {
			_, err := NewInFlight(InFlightOptions{Store: StoreOptions{Client: good}, Limit: 1, MaxKeys: -1})
			return err
		}, "InFlightOptions.MaxKeys"},
		{"inflight limit", func() error { _, err := NewInFlight(InFlightOptions{Store: StoreOptions{Client: good}}); return err }, "InFlightOptions.Limit"},
		{"inflight client", func() error { _, err := NewInFlight(InFlightOptions{Limit: 1}); return err }, "InFlightOptions.Store.Client"},
		{"lease", func() error {
			_, err := NewInFlight(InFlightOptions{Store: StoreOptions{Client: good}, Limit: 1, Lease: time.Millisecond})
			return err
		}, "InFlightOptions.Lease"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.build()
			if tt.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrOption) || strings.Count(err.Error(), tt.field) != 1 {
				t.Fatalf("error %v: want one naming %s once", err, tt.field)
			}
		})
	}
}
