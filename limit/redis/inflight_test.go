package redis

import (
	"context"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/limit"
)

func newInFlight(t *testing.T, opts InFlightOptions) *InFlight {
	t.Helper()
	f, err := NewInFlight(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func mustLimit(t *testing.T, l limit.Limiter, key string, want bool) limit.Decision {
	t.Helper()
	d, err := l.Limit(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if d.Allowed != want {
		t.Fatalf("Limit(%q): allowed %v, want %v", key, d.Allowed, want)
	}
	return d
}

// TestInFlightShared: two processes share one in-flight limit; a release on one makes
// room for the other; released leases leave nothing in Redis.
func TestInFlightShared(t *testing.T) {
	srv := startRedis(t)
	a := newInFlight(t, InFlightOptions{Store: newStates().store(srv.client(nil), "t:if:"), Limit: 3})
	b := newInFlight(t, InFlightOptions{Store: newStates().store(srv.client(nil), "t:if:"), Limit: 3})
	a1 := mustLimit(t, a, "k", true)
	mustLimit(t, a, "k", true)
	b1 := mustLimit(t, b, "k", true)
	if d := mustLimit(t, b, "k", false); d.RetryAfter != time.Second {
		t.Fatalf("RetryAfter %v, want the default 1s", d.RetryAfter)
	}
	mustLimit(t, a, "k", false)
	mustLimit(t, b, "other", true).Release()
	a1.Release()
	a1.Release() // again: nothing
	b2 := mustLimit(t, b, "k", true)
	mustLimit(t, a, "k", false)
	if a.Held() != 1 || b.Held() != 2 {
		t.Fatalf("held: a %d, b %d; want 1, 2", a.Held(), b.Held())
	}
	b1.Release()
	b2.Release()
	if n, _ := srv.client(nil).ZCard(context.Background(), "t:if:f:k").Result(); n != 1 {
		t.Fatalf("%d leases in Redis, want 1", n)
	}
}

// TestLeaseExpiry: a process that dies holding slots loses them when its leases expire;
// a live one keeps its slots by renewing them.
func TestLeaseExpiry(t *testing.T) {
	srv := startRedis(t)
	watch := srv.client(nil)
	expired := keyEvents(t, watch, "expired")
	renewed := keyEvents(t, watch, "expire")
	opts := func() InFlightOptions {
		return InFlightOptions{Store: newStates().store(srv.client(nil), "t:lease:"), Limit: 2, Lease: time.Second}
	}
	live := newInFlight(t, opts())
	other := newInFlight(t, opts())

	// The live process holds a slot of "kept" across several renewals (over one Lease).
	mustLimit(t, live, "kept", true)
	mustLimit(t, other, "kept", true)
	other.Close() // "crashes": it neither renews nor releases
	start := time.Now()
	for events := 0; events < 6; { // 2 acquires, then 4 renewals, every Lease/3
		select {
		case k := <-renewed:
			if k == "t:lease:f:kept" {
				events++
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no lease renewal within 10s")
		}
	}
	if time.Since(start) < time.Second {
		t.Fatalf("4 renewals took %v, under one Lease", time.Since(start))
	}
	// The dead process's lease is gone; the live one's is still there.
	if d := mustLimit(t, other, "kept", true); d.Release == nil {
		t.Fatal("no Release")
	}
	mustLimit(t, other, "kept", false)

	// A process dies holding both slots of "dead": they come back when the set expires.
	dead := newInFlight(t, opts())
	mustLimit(t, dead, "dead", true)
	mustLimit(t, dead, "dead", true)
	dead.Close()
	mustLimit(t, live, "dead", false)
	deadline := time.After(10 * time.Second)
	for k := ""; k != "t:lease:f:dead"; {
		select {
		case k = <-expired:
		case <-deadline:
			t.Fatal("the dead process's leases did not expire within 10s")
		}
	}
	mustLimit(t, live, "dead", true)
}

// TestInFlightFallback: with Redis down, the local fallback counts slots of the same
// limit, and gives them back; with Redis back, Redis counts again.
func TestInFlightFallback(t *testing.T) {
	srv := startRedis(t)
	st := newStates()
	f := newInFlight(t, InFlightOptions{Store: st.store(srv.client(nil), "t:iffb:"), Limit: 2})
	held := mustLimit(t, f, "k", true)
	srv.Kill()
	held.Release() // Redis is down: the release cannot reach it, and does not block
	st.wait(t, false, func() {})
	l1 := mustLimit(t, f, "k", true)
	l2 := mustLimit(t, f, "k", true)
	mustLimit(t, f, "k", false)
	l1.Release()
	mustLimit(t, f, "k", true).Release()
	l2.Release()
	srv.Start()
	st.wait(t, true, func() {
		if d, err := f.Limit(context.Background(), "poke"); err == nil && d.Release != nil {
			d.Release()
		}
	})
	r1 := mustLimit(t, f, "k", true)
	if n, _ := srv.client(nil).ZCard(context.Background(), "t:iffb:f:k").Result(); n != 1 || f.Held() != 1 {
		t.Fatalf("%d leases in Redis, %d held, want 1, 1", n, f.Held())
	}
	r1.Release()
}
