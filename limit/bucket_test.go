package limit

import (
	"context"
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
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	b, err := NewTokenBucket(TokenBucketOptions{Rate: 1, Burst: 1, MaxKeys: maxKeys})
	if err != nil {
		t.Fatal(err)
	}
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
	// Allocated since the bucket was made (the checks allocate nothing, so this is its
	// table), and held on the heap still.
	per := float64(m1.TotalAlloc-m0.TotalAlloc) / maxKeys
	held := float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc)) / maxKeys
	t.Logf("%.1f bytes allocated per key held, %.1f held on the heap", per, held)
	if per < 12.8 || per > 16 || held > 16 {
		t.Fatalf("%.1f bytes allocated per key, %.1f held; want 12.8 and the TokenBucket's own", per, held)
	}
	runtime.KeepAlive(b)
	if a := testing.AllocsPerRun(100, func() { b.Allow("client-999999") }); a != 0 {
		t.Fatalf("Allow of a known key allocates %v times", a)
	}
}

// TestBucketEviction: a full line drops an idle entry before a busy one, and the busy
// one whose bucket is nearest to full before the others.
func TestBucketEviction(t *testing.T) {
	b, err := NewTokenBucket(TokenBucketOptions{Rate: 1, Burst: 1, MaxKeys: lineSlots})
	if err != nil {
		t.Fatal(err)
	}
	l := &b.t.lines[0]
	// Keys 1 to 5 fill the one line; each is told apart by its tag, the hash's low bits.
	for k := uint64(1); k <= lineSlots; k++ {
		if ok, _ := b.allow(k); !ok {
			t.Fatalf("key %d refused", k)
		}
	}
	held := func() (ks []uint64) {
		for k := uint64(1); k <= 2*lineSlots; k++ {
			if l.find(uint32(k), lineSlots) >= 0 {
				ks = append(ks, k)
			}
		}
		return ks
	}
	if got := held(); !slices.Equal(got, []uint64{1, 2, 3, 4, 5}) {
		t.Fatalf("%v held", got)
	}
	now := b.clk.now()
	for i := range l.vals {
		l.vals[i] = now + int64(time.Hour) + int64(i) // every bucket empty for an hour
	}
	l.vals[l.find(4, lineSlots)] = now - 1 // key 4 is idle: its bucket is full
	b.allow(6)
	if got := held(); !slices.Equal(got, []uint64{1, 2, 3, 5, 6}) {
		t.Fatalf("after key 6: %v held; want the idle key 4 dropped", got)
	}
	l.vals[l.find(6, lineSlots)] = now + int64(time.Hour) + 10
	l.vals[l.find(3, lineSlots)] = now + int64(time.Minute) // nearest to full
	b.allow(7)
	if got := held(); !slices.Equal(got, []uint64{1, 2, 5, 6, 7}) {
		t.Fatalf("after key 7: %v held; want key 3, nearest to full, dropped", got)
	}
	if ok, _ := b.allow(2); ok {
		t.Fatal("key 2, kept, lost its state")
	}
	if ok, _ := b.allow(3); !ok {
		t.Fatal("key 3, dropped, is not back with a full bucket")
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
