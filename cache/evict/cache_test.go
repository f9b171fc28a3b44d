package evict

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"
)

// check verifies the cache's bookkeeping: queues, table and totals agree, and the weight
// is within the capacity.
func (c *Cache[K, V]) check(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	tab := c.table.Load()
	n, w := 0, int64(0)
	for _, q := range []struct {
		f     *fifo[K, V]
		where uint8
	}{{&c.small, inSmall}, {&c.main, inMain}} {
		qn, qw := 0, int64(0)
		var prev *entry[K, V]
		for e := q.f.head; e != nil; e = e.next {
			if e.prev != prev {
				t.Fatalf("broken back link at %v", e.key)
			}
			if e.queue != q.where {
				t.Fatalf("entry %v says queue %d, is in %d", e.key, e.queue, q.where)
			}
			if got := tab.get(e.hash, e.key); got != e {
				t.Fatalf("queued entry %v is not the table's", e.key)
			}
			qn++
			qw += e.weight
			prev = e
		}
		if q.f.tail != prev || q.f.len != qn || q.f.weight != qw {
			t.Fatalf("queue %d: len %d weight %d, counted %d and %d", q.where, q.f.len, q.f.weight, qn, qw)
		}
		n += qn
		w += qw
	}
	if tab.live != n || c.Len() != n || c.Weight() != w {
		t.Fatalf("table holds %d, Len %d, Weight %d; queues hold %d weighing %d", tab.live, c.Len(), c.Weight(), n, w)
	}
	if w > c.capacity {
		t.Fatalf("weight %d over capacity %d", w, c.capacity)
	}
}

func TestNewValidates(t *testing.T) {
	for _, capacity := range []int64{0, -1} {
		_, err := New(Options[string, int]{Capacity: capacity})
		if !errors.Is(err, ErrCapacity) {
			t.Errorf("Capacity %d: error %v, want ErrCapacity", capacity, err)
		}
	}
	for _, tc := range []struct{ capacity, small int64 }{{1, 1}, {9, 1}, {100, 10}, {105, 10}, {math.MaxInt64, math.MaxInt64 / 10}} {
		c, err := New(Options[string, int]{Capacity: tc.capacity})
		if err != nil {
			t.Fatal(err)
		}
		if c.smallCap != tc.small {
			t.Errorf("Capacity %d: small queue %d, want %d", tc.capacity, c.smallCap, tc.small)
		}
	}
}

// TestGetTakesNoLock reads while another goroutine holds the write lock.
func TestGetTakesNoLock(t *testing.T) {
	c, err := New(Options[string, int]{Capacity: 10})
	if err != nil {
		t.Fatal(err)
	}
	c.Set("a", 1, 1)
	c.mu.Lock()
	defer c.mu.Unlock()
	done := make(chan int)
	go func() {
		v, _ := c.Get("a")
		c.Get("absent")
		done <- v
	}()
	select {
	case v := <-done:
		if v != 1 {
			t.Fatalf("Get = %d, want 1", v)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Get waited for the write lock")
	}
}

type evictRecord struct {
	key   string
	value int
	cause Cause
}

func newRecorded(t *testing.T, capacity int64) (*Cache[string, int], *[]evictRecord) {
	t.Helper()
	var got []evictRecord
	c, err := New(Options[string, int]{Capacity: capacity, OnEvict: func(k string, v int, cause Cause) {
		got = append(got, evictRecord{k, v, cause})
	}})
	if err != nil {
		t.Fatal(err)
	}
	return c, &got
}

func TestSetGetRemove(t *testing.T) {
	c, evicted := newRecorded(t, 100)
	if _, ok := c.Get("a"); ok {
		t.Fatal("hit in an empty cache")
	}
	if !c.Set("a", 1, 10) || !c.Set("b", 2, 20) {
		t.Fatal("Set refused in an empty cache")
	}
	if v, ok := c.Get("a"); !ok || v != 1 {
		t.Fatalf("Get(a) = %d, %v", v, ok)
	}
	if c.Len() != 2 || c.Weight() != 30 {
		t.Fatalf("Len %d Weight %d, want 2 and 30", c.Len(), c.Weight())
	}
	if !c.Set("a", 3, 15) {
		t.Fatal("replacing refused")
	}
	if v, _ := c.Get("a"); v != 3 || c.Weight() != 35 {
		t.Fatalf("after replace: a = %d, Weight %d", v, c.Weight())
	}
	if !c.Remove("b") || c.Remove("b") || c.Remove("zzz") {
		t.Fatal("Remove reported wrongly")
	}
	if _, ok := c.Get("b"); ok {
		t.Fatal("removed key still found")
	}
	c.check(t)
	want := []evictRecord{{"a", 1, Replaced}, {"b", 2, Removed}}
	if fmt.Sprint(*evicted) != fmt.Sprint(want) {
		t.Fatalf("OnEvict calls %v, want %v", *evicted, want)
	}
}

func TestTooHeavy(t *testing.T) {
	c, evicted := newRecorded(t, 100)
	if c.Set("big", 1, 101) {
		t.Fatal("an entry heavier than the capacity was stored")
	}
	if !c.Set("big", 1, 100) {
		t.Fatal("an entry as heavy as the capacity was refused")
	}
	if c.Set("big", 2, 101) {
		t.Fatal("a heavier replacement was stored")
	}
	if _, ok := c.Get("big"); ok {
		t.Fatal("the old value stayed after a refused replacement")
	}
	c.check(t)
	want := []evictRecord{{"big", 1, Removed}}
	if fmt.Sprint(*evicted) != fmt.Sprint(want) {
		t.Fatalf("OnEvict calls %v, want %v", *evicted, want)
	}
}

// TestModel drives a cache with random weighted Sets, Gets and Removes and checks it
// against a map kept from Set's results and the OnEvict calls: every entry that leaves is
// reported exactly once, and what is left is what Get finds.
func TestModel(t *testing.T) {
	model := map[string]int{}
	var c *Cache[string, int]
	c, err := New(Options[string, int]{Capacity: 1000, OnEvict: func(k string, v int, cause Cause) {
		if mv, ok := model[k]; !ok || mv != v {
			t.Fatalf("OnEvict(%q, %d, %v) of an entry not stored (model has %d, %v)", k, v, cause, mv, ok)
		}
		delete(model, k)
	}})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200_000 {
		k := strconv.Itoa(int(rng.Int64N(500)))
		switch r := rng.IntN(10); {
		case r < 6:
			if v, ok := c.Get(k); ok != (model[k] != 0) || v != model[k] {
				t.Fatalf("Get(%s) = %d, %v; model has %d", k, v, ok, model[k])
			}
		case r < 9:
			if c.Set(k, i+1, 1+rng.Int64N(60)) {
				model[k] = i + 1
			} else if _, ok := c.Get(k); ok {
				t.Fatalf("refused Set(%s) left a value", k)
			}
		default:
			if c.Remove(k) {
				if _, ok := model[k]; ok {
					t.Fatalf("Remove(%s) left it in the model", k)
				}
			}
		}
		if i%1000 == 0 {
			c.check(t)
		}
	}
	c.check(t)
	if c.Len() != len(model) {
		t.Fatalf("Len %d, model %d", c.Len(), len(model))
	}
	for k, v := range model {
		if got, ok := c.Get(k); !ok || got != v {
			t.Fatalf("Get(%s) = %d, %v; want %d", k, got, ok, v)
		}
	}
}

// TestSameHash shows that keys are compared whole: entries whose hashes are equal are
// told apart by their keys.
func TestSameHash(t *testing.T) {
	tab := newTable[string, int](0)
	for i, k := range []string{"a", "b", "c"} {
		at, free := tab.find(7, k)
		if at >= 0 {
			t.Fatalf("%s found before insertion", k)
		}
		tab.insertAt(free, &entry[string, int]{key: k, value: i, hash: 7})
	}
	for i, k := range []string{"a", "b", "c"} {
		if e := tab.get(7, k); e == nil || e.value != i {
			t.Fatalf("get(%s) = %v", k, e)
		}
	}
	if e := tab.get(7, "d"); e != nil {
		t.Fatalf("get(d) = %v, a key with the same hash", e)
	}
	at, _ := tab.find(7, "a")
	tab.removeAt(at)
	if tab.get(7, "a") != nil || tab.get(7, "c") == nil {
		t.Fatal("removing a broke the probe path of c")
	}
	nt := tab.rebuilt(tab.live)
	if nt.get(7, "b") == nil || nt.get(7, "c") == nil || nt.get(7, "a") != nil || nt.live != 2 {
		t.Fatal("rebuilt table lost or kept the wrong entries")
	}
}

func TestGhostSendsReturningKeysToMain(t *testing.T) {
	c, err := New(Options[string, int]{Capacity: 100})
	if err != nil {
		t.Fatal(err)
	}
	// Fill with keys never read: each Set beyond 100 evicts the small queue's oldest.
	for i := range 100 {
		c.Set("k"+strconv.Itoa(i), i, 1)
	}
	// TinyLFU admits "new" once it has been asked for more often than k0.
	for !c.Set("new", 0, 1) {
	}
	if _, ok := c.Get("k0"); ok {
		t.Fatal("k0 was not evicted")
	}
	if !c.ghost.contains(c.hash("k0")) {
		t.Fatal("evicted k0 is not in the ghost queue")
	}
	c.Get("k0")
	c.Get("k0")
	if !c.Set("k0", 0, 1) {
		t.Fatal("k0 refused on its return")
	}
	c.mu.Lock()
	e := c.table.Load().get(c.hash("k0"), "k0")
	queue := e.queue
	c.mu.Unlock()
	if queue != inMain {
		t.Fatalf("returning k0 queued in %d, want the main queue", queue)
	}
	c.check(t)
}

// TestAdmission shows TinyLFU at work: a one-off key does not displace a popular one.
func TestAdmission(t *testing.T) {
	c, err := New(Options[string, int]{Capacity: 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		k := "hot" + strconv.Itoa(i)
		c.Set(k, i, 1)
		for range 5 {
			c.Get(k)
		}
	}
	// Fewer one-off keys than it takes to age the sketch.
	for i := range 300 {
		c.Set("cold"+strconv.Itoa(i), i, 1)
	}
	for i := range 10 {
		if _, ok := c.Get("hot" + strconv.Itoa(i)); !ok {
			t.Errorf("hot%d was displaced by a scan of one-off keys", i)
		}
	}
	c.check(t)
}

func TestGetAllocs(t *testing.T) {
	c, err := New(Options[string, []byte]{Capacity: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = "/objects/" + strconv.Itoa(i)
		c.Set(keys[i], make([]byte, 10), 10)
	}
	i := 0
	if a := testing.AllocsPerRun(10_000, func() {
		if _, ok := c.Get(keys[i%len(keys)]); !ok {
			t.Fatal("miss")
		}
		i++
	}); a != 0 {
		t.Errorf("Get hit: %v allocs, want 0", a)
	}
	if a := testing.AllocsPerRun(1000, func() { c.Get("absent") }); a != 0 {
		t.Errorf("Get miss: %v allocs, want 0", a)
	}
}

func TestSketch(t *testing.T) {
	s := newSketch(0)
	h := uint64(0xdeadbeefcafe)
	for i := range 20 {
		if got, want := s.estimate(h), min(i, 15); got != want {
			t.Fatalf("after %d increments estimate %d, want %d", i, got, want)
		}
		s.increment(h)
	}
	g := s.grown()
	if g.estimate(h) != 15 || len(g.table) != 2*len(s.table) {
		t.Fatalf("grown sketch: estimate %d, %d words", g.estimate(h), len(g.table))
	}
	// Fill the sample with other keys: the counters are then halved.
	for i := uint64(1); s.samples() < s.sampleSize; i++ {
		s.increment(i * 0x9e3779b97f4a7c15)
	}
	s.maybeReset()
	if got := s.estimate(h); got != 7 {
		t.Fatalf("after the reset estimate %d, want 7", got)
	}
	if n := s.samples(); n >= s.sampleSize/2+1 {
		t.Fatalf("after the reset %d samples of %d", n, s.sampleSize)
	}
}

// TestConcurrent runs writers and lock-free readers of the same keys together (run it
// with -race), then checks the bookkeeping.
func TestConcurrent(t *testing.T) {
	var evictions sync.Map
	c, err := New(Options[string, int]{Capacity: 500, OnEvict: func(k string, v int, _ Cause) {
		evictions.Store(k, v)
	}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			for i := range 20_000 {
				k := strconv.Itoa(int(rng.Int64N(300)))
				switch rng.IntN(8) {
				case 0, 1:
					c.Set(k, i, 1+rng.Int64N(5))
				case 2:
					c.Remove(k)
				default:
					if v, ok := c.Get(k); ok && v < 0 {
						t.Errorf("Get(%s) = %d", k, v)
					}
				}
			}
		})
	}
	wg.Wait()
	c.check(t)
}
