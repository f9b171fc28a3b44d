package limit

import (
	"context"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestTokenBucket: a key gets Burst at once, then Rate a second, and a refusal says
// when the next token comes.
func TestTokenBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := NewTokenBucket(TokenBucketOptions{Rate: 2, Burst: 3})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if ok, _ := b.Allow("k"); !ok {
				t.Fatalf("request %d of the burst refused", i)
			}
		}
		ok, wait := b.Allow("k")
		if ok || wait != 500*time.Millisecond {
			t.Fatalf("past the burst: %v, retry after %v; want refused, 500ms", ok, wait)
		}
		if ok, _ := b.AllowBytes([]byte("other")); !ok {
			t.Fatal("another key was refused")
		}
		time.Sleep(wait - time.Millisecond)
		if ok, wait := b.Allow("k"); ok || wait != time.Millisecond {
			t.Fatalf("1ms early: %v, %v", ok, wait)
		}
		time.Sleep(time.Millisecond)
		if d, err := b.Limit(context.Background(), "k"); err != nil || !d.Allowed || d.Release != nil {
			t.Fatalf("on time: %+v, %v", d, err)
		}
		if ok, _ := b.Allow("k"); ok {
			t.Fatal("a second request on one token")
		}
		time.Sleep(10 * time.Second) // full again, no more than Burst
		for i := range 3 {
			if ok, _ := b.Allow("k"); !ok {
				t.Fatalf("request %d after a pause refused", i)
			}
		}
		if ok, _ := b.Allow("k"); ok {
			t.Fatal("a pause gave more than Burst")
		}
	})
}

// TestTokenBucketMillionKeys: a million keys leave at most MaxKeys entries, and the
// memory stays bounded.
func TestTokenBucketMillionKeys(t *testing.T) {
	const maxKeys = 10_000
	b, err := NewTokenBucket(TokenBucketOptions{Rate: 1, Burst: 1, MaxKeys: maxKeys})
	if err != nil {
		t.Fatal(err)
	}
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	key := make([]byte, 0, 32)
	for i := range 1_000_000 {
		key = strconv.AppendInt(append(key[:0], "client-"...), int64(i), 10)
		if ok, _ := b.AllowBytes(key); !ok {
			t.Fatalf("new key %d refused", i)
		}
	}
	if n := b.Len(); n != maxKeys {
		t.Fatalf("%d keys held, want %d", n, maxKeys)
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	per := float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc)) / maxKeys
	t.Logf("%.0f bytes of heap per key held", per)
	if per > 128 {
		t.Fatalf("%.0f bytes per key held", per)
	}
	runtime.KeepAlive(b)
	if a := testing.AllocsPerRun(100, func() { b.Allow("client-999999") }); a != 0 {
		t.Fatalf("Allow of a known key allocates %v times", a)
	}
}

// TestBucketEviction: a full shard drops an idle entry before a busy one, and a busy one
// not used lately before one in use.
func TestBucketEviction(t *testing.T) {
	s := &bucketShard{t: table{max: 3}}
	key := func(k uint64) uint64 { return tagOf(k << 2) }
	entry := func(k uint64) *slot {
		i := s.t.find(key(k))
		if i < 0 {
			return nil
		}
		return &s.t.slots[i]
	}
	insert := func(k uint64, now int64) {
		at, _ := s.t.lookup(key(k))
		s.insert(key(k), at, now)
	}
	held := func() (ks []uint64) {
		for k := uint64(1); k <= 5; k++ {
			if entry(k) != nil {
				ks = append(ks, k)
			}
		}
		return ks
	}
	for k := uint64(1); k <= 3; k++ {
		insert(k, 0)
		e := entry(k)
		e.val, e.tag = 100, e.tag|usedBit // busy and used
	}
	entry(2).val = 5 // key 2 is idle at time 10
	insert(4, 10)
	if got := held(); s.t.n != 3 || !slices.Equal(got, []uint64{1, 3, 4}) {
		t.Fatalf("after key 4: %v held (n %d); want the idle key 2 dropped", got, s.t.n)
	}
	entry(4).val = 100
	entry(1).tag &^= usedBit // every entry busy; key 1 not used since the last sweep
	entry(3).tag |= usedBit
	entry(4).tag |= usedBit
	insert(5, 10)
	if got := held(); !slices.Equal(got, []uint64{3, 4, 5}) {
		t.Fatalf("after key 5: %v held; want key 1, not used lately, dropped", got)
	}
}

// TestTable: entries inserted and removed in any order stay reachable, through growth
// and removals that shift entries back, on keys that collide on purpose.
func TestTable(t *testing.T) {
	var tb table
	tb.max = 1000
	want := map[uint64]int64{}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		// Few distinct homes: long runs of probes, wrapping around the end.
		k := tagOf(uint64(rng.IntN(300))<<40 | uint64(rng.IntN(8))<<2)
		if j := tb.find(k); j >= 0 {
			if tb.slots[j].val != want[k] {
				t.Fatalf("step %d: %x holds %d, want %d", i, k, tb.slots[j].val, want[k])
			}
			tb.remove(j)
			delete(want, k)
		} else {
			if _, ok := want[k]; ok {
				t.Fatalf("step %d: %x lost", i, k)
			}
			tb.insert(k, int64(i))
			want[k] = int64(i)
		}
		if tb.n != len(want) {
			t.Fatalf("step %d: n %d, want %d", i, tb.n, len(want))
		}
	}
	for k, v := range want {
		if j := tb.find(k); j < 0 || tb.slots[j].val != v {
			t.Fatalf("%x: slot %d", k, j)
		}
	}
}

// TestTokenBucketConcurrent: goroutines sharing a key never get more than Burst tokens
// while time stands still, and the table stays within MaxKeys (run it with -race).
func TestTokenBucketConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := NewTokenBucket(TokenBucketOptions{Rate: 1, Burst: 50, MaxKeys: 4096})
		if err != nil {
			t.Fatal(err)
		}
		small, err := NewTokenBucket(TokenBucketOptions{Rate: 1, MaxKeys: 128})
		if err != nil {
			t.Fatal(err)
		}
		var allowed atomic.Int64
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 200 {
					if ok, _ := b.Allow("shared"); ok {
						allowed.Add(1)
					}
					b.Allow(strconv.Itoa(g*1000 + i))
					small.Allow(strconv.Itoa(g*1000 + i))
				}
			})
		}
		wg.Wait()
		if got := allowed.Load(); got != 50 {
			t.Fatalf("%d requests allowed on a burst of 50", got)
		}
		if small.Len() != 128 {
			t.Fatalf("%d keys held, MaxKeys 128", small.Len())
		}
	})
}
