package limit

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestInFlight: a key holds at most Limit slots; release gives one back, once; a key's
// entry goes with its last request.
func TestInFlight(t *testing.T) {
	f, err := NewInFlight(InFlightOptions{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	a, ok1 := f.Acquire("k")
	b, ok2 := f.AcquireBytes([]byte("k"))
	if !ok1 || !ok2 || f.Count("k") != 2 {
		t.Fatalf("two acquires: %v %v, count %d", ok1, ok2, f.Count("k"))
	}
	if c, ok := f.Acquire("k"); ok {
		c.Release()
		t.Fatal("a third slot over the limit")
	}
	a.Release()
	a.Release() // again: nothing
	if f.Count("k") != 1 {
		t.Fatalf("count %d after one release (twice), want 1", f.Count("k"))
	}
	var zero Token
	zero.Release()
	d, err := f.Limit(context.Background(), "k")
	if err != nil || !d.Allowed || d.Release == nil {
		t.Fatalf("Limit: %+v, %v", d, err)
	}
	if d2, _ := f.Limit(context.Background(), "k"); d2.Allowed || d2.RetryAfter != time.Second {
		t.Fatalf("Limit over the limit: %+v", d2)
	}
	d.Release()
	d.Release()
	b.Release()
	if f.Count("k") != 0 || f.Len() != 0 {
		t.Fatalf("count %d, %d keys after every release", f.Count("k"), f.Len())
	}
}

// TestInFlightMaxKeys: while MaxKeys keys have requests running, a new key is refused;
// a key that ends its requests makes room.
func TestInFlightMaxKeys(t *testing.T) {
	f, err := NewInFlight(InFlightOptions{Limit: 1, MaxKeys: 1})
	if err != nil {
		t.Fatal(err)
	}
	a, ok := f.Acquire("a")
	if !ok {
		t.Fatal("first key refused")
	}
	if _, ok := f.Acquire("b"); ok {
		t.Fatal("a second key past MaxKeys")
	}
	a.Release()
	if b, ok := f.Acquire("b"); !ok {
		t.Fatal("no room after the first key's release")
	} else {
		b.Release()
	}
	// A million keys through a table of 1000, each released: nothing stays.
	g, _ := NewInFlight(InFlightOptions{Limit: 1, MaxKeys: 1000})
	key := make([]byte, 0, 16)
	for i := range 1_000_000 {
		key = strconv.AppendInt(key[:0], int64(i), 10)
		tok, ok := g.AcquireBytes(key)
		if !ok {
			t.Fatalf("key %d refused", i)
		}
		tok.Release()
	}
	if g.Len() != 0 {
		t.Fatalf("%d keys left", g.Len())
	}
	// Memory per key with a request running.
	h, _ := NewInFlight(InFlightOptions{Limit: 1, MaxKeys: 100_000})
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	for i := range 200_000 {
		key = strconv.AppendInt(key[:0], int64(i), 10)
		h.AcquireBytes(key)
	}
	// The table grows to more than 96% of MaxKeys, and a new key is refused when its
	// line of 5 is full: 200,000 keys fill nearly every line, and never more than
	// MaxKeys.
	held := h.Len()
	if held > 100_000 || held < 95_000 {
		t.Fatalf("%d keys held, MaxKeys 100000", held)
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	per := float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc)) / float64(held)
	t.Logf("%.0f bytes of heap per key with a request running", per)
	if per > 64 {
		t.Fatalf("%.0f bytes per key", per)
	}
	runtime.KeepAlive(h)
	if n := testing.AllocsPerRun(100, func() { tok, _ := g.Acquire("x"); tok.Release() }); n != 0 {
		t.Fatalf("Acquire and Release allocate %v times", n)
	}
}

// TestInFlightConcurrent: with goroutines racing on one key, no more than Limit hold a
// slot at once, and everything is given back (run it with -race).
func TestInFlightConcurrent(t *testing.T) {
	const limit = 3
	f, err := NewInFlight(InFlightOptions{Limit: limit})
	if err != nil {
		t.Fatal(err)
	}
	var held, most atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 2000 {
				tok, ok := f.Acquire("shared")
				if !ok {
					continue
				}
				n := held.Add(1)
				for {
					m := most.Load()
					if n <= m || most.CompareAndSwap(m, n) {
						break
					}
				}
				held.Add(-1)
				tok.Release()
			}
		})
	}
	wg.Wait()
	if m := most.Load(); m > limit || m < 1 {
		t.Fatalf("%d held at once, limit %d", m, limit)
	}
	if f.Len() != 0 {
		t.Fatalf("%d keys left", f.Len())
	}
}
