package limit

import (
	"math"
	"strconv"
	"sync"
	"testing"
	"unsafe"
)

// TestTableRoom: a table's lines start on cache lines, hold maxKeys entries in all,
// and every hash picks one of them.
func TestTableRoom(t *testing.T) {
	for _, n := range []int{1, 2, 4, 5, 6, 9, 10, 11, 1000, 65536} {
		tb := newTable(n)
		room := 0
		for i := range tb.lines {
			r := lineSlots
			if i == len(tb.lines)-1 {
				r = tb.last
			}
			if r < 1 || r > lineSlots {
				t.Fatalf("maxKeys %d: line %d has room %d", n, i, r)
			}
			room += r
		}
		if room != n {
			t.Fatalf("maxKeys %d: room %d", n, room)
		}
		if p := uintptr(unsafe.Pointer(&tb.lines[0])); p%lineSize != 0 {
			t.Fatalf("maxKeys %d: lines at %#x, not on a cache line", n, p)
		}
		for _, h := range []uint64{0, 1, 1 << 63, math.MaxUint64} {
			l, r, tag := tb.locate(h)
			i := (uintptr(unsafe.Pointer(l)) - uintptr(unsafe.Pointer(&tb.lines[0]))) / lineSize
			if i >= uintptr(len(tb.lines)) || tag == 0 || i == uintptr(len(tb.lines)-1) && r != tb.last {
				t.Fatalf("maxKeys %d: hash %#x picks line %d of %d, room %d, tag %d", n, h, i, len(tb.lines), r, tag)
			}
		}
	}
}

// TestGrowTableRoom: a growing table starts small, and its room, grown whole, is at
// most maxKeys and more than 96% of it.
func TestGrowTableRoom(t *testing.T) {
	for _, n := range []int{1, 3, 5, 9, 10, 64, 320, 321, 1000, 65536, 100_000, 1 << 20, 1 << 30} {
		g := newGrowTable(n)
		start := len(g.cur.Load().lines)
		most := g.maxLines * g.room
		if start > 63 || most > n || float64(most) < 0.96*float64(n-lineSlots+1) {
			t.Fatalf("maxKeys %d: %d lines at first, room %d grown whole (%d lines)", n, start, most, g.maxLines)
		}
		if g.maxLines%start != 0 || (g.maxLines/start)&(g.maxLines/start-1) != 0 {
			t.Fatalf("maxKeys %d: %d lines do not grow to %d by doubling", n, start, g.maxLines)
		}
	}
}

// TestInFlightGrow: a million keys with a request running each, in a table of room for
// four million: it grows from a few lines, no entry is lost on the way, and each
// release finds its key's entry.
func TestInFlightGrow(t *testing.T) {
	const keys = 1_000_000
	f, err := NewInFlight(InFlightOptions{Limit: 2, MaxKeys: 4 * keys})
	if err != nil {
		t.Fatal(err)
	}
	start := len(f.t.cur.Load().lines)
	toks := make([]Token, keys)
	key := make([]byte, 0, 16)
	refused := 0
	for i := range toks {
		key = strconv.AppendInt(key[:0], int64(i), 10)
		var ok bool
		if toks[i], ok = f.AcquireBytes(key); !ok {
			refused++
		}
	}
	held := f.Len()
	lines := len(f.t.cur.Load().lines)
	t.Logf("%d keys held, %d refused, %d lines (%d at first, %d at most)", held, refused, lines, start, f.t.maxLines)
	// Refusals come only with the table grown whole and a line full: with a million
	// keys in room for four, 0.9% of lines are full.
	if held != keys-refused || refused > keys/50 || lines <= start {
		t.Fatalf("%d keys held, %d refused, %d lines", held, refused, lines)
	}
	if refused > 0 && lines != f.t.maxLines {
		t.Fatalf("%d keys refused with %d lines, %d allowed", refused, lines, f.t.maxLines)
	}
	for i := 0; i < keys; i += 997 {
		k := strconv.Itoa(i)
		if want := map[bool]int{true: 1}[toks[i].f != nil]; f.Count(k) != want {
			t.Fatalf("key %s: count %d, want %d", k, f.Count(k), want)
		}
	}
	for i := range toks {
		toks[i].Release()
	}
	if n := f.Len(); n != 0 {
		t.Fatalf("%d keys left after every release", n)
	}
}

// TestInFlightGrowConcurrent: goroutines acquire and release their own keys and a
// shared one while the table grows under them; no count is lost or goes over the
// limit (run it with -race).
func TestInFlightGrowConcurrent(t *testing.T) {
	const limit = 3
	f, err := NewInFlight(InFlightOptions{Limit: limit, MaxKeys: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Go(func() {
			var mine []Token
			for i := range 4000 {
				k := strconv.Itoa(g*100_000 + i)
				tok, ok := f.Acquire(k)
				if !ok {
					errs <- "key " + k + " refused"
					return
				}
				mine = append(mine, tok)
				if s, ok := f.Acquire("shared"); ok {
					if n := f.Count("shared"); n > limit {
						errs <- "shared count " + strconv.Itoa(n)
						return
					}
					s.Release()
				}
				if i%3 == 0 { // some keys end their requests as others come
					mine[len(mine)-1].Release()
				}
			}
			for _, k := range []int{0, 1, 3999} {
				want := 1
				if k%3 == 0 {
					want = 0
				}
				if n := f.Count(strconv.Itoa(g*100_000 + k)); n != want {
					errs <- "key count " + strconv.Itoa(n)
					return
				}
			}
			for i := range mine {
				mine[i].Release()
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	if n := f.Len(); n != 0 {
		t.Fatalf("%d keys left", n)
	}
	if len(f.t.cur.Load().lines) < 8*4000*2/3/lineSlots {
		t.Fatalf("the table did not grow: %d lines", len(f.t.cur.Load().lines))
	}
}

// TestCollision: two hashes that pick one line and one tag of a TokenBucket share a
// bucket, so together they get Burst, not more; two keys of an InFlight whose hashes
// share a tag but not their high bits keep counts of their own, through growth.
func TestCollision(t *testing.T) {
	b, err := NewTokenBucket(TokenBucketOptions{Rate: 1e-3, Burst: 3, MaxKeys: lineSlots})
	if err != nil {
		t.Fatal(err)
	}
	h1, h2 := uint64(1)<<40|7, uint64(2)<<40|7 // one line (the only one), one tag
	allowed := 0
	for range 3 {
		for _, h := range []uint64{h1, h2} {
			if ok, _ := b.allow(h); ok {
				allowed++
			}
		}
	}
	if allowed != 3 || b.Len() != 1 {
		t.Fatalf("two colliding keys got %d tokens of a burst of 3, %d entries", allowed, b.Len())
	}

	f, err := NewInFlight(InFlightOptions{Limit: 1, MaxKeys: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	// Same tag, one line while the table is small (the first 1/64 of the hashes), lines
	// apart once it has grown: each is its own key.
	a, b2 := uint64(0x0000_0001)<<32|42, uint64(0x0100_0000)<<32|42
	if f.t.cur.Load().line(a) != f.t.cur.Load().line(b2) {
		t.Fatal("the keys do not share a line at first")
	}
	ta, ok1 := f.acquire(a)
	tb, ok2 := f.acquire(b2)
	if !ok1 || !ok2 {
		t.Fatalf("keys sharing a tag: %v %v", ok1, ok2)
	}
	for f.t.grow(f.t.cur.Load()) {
		if len(f.t.cur.Load().lines) == f.t.maxLines {
			break
		}
	}
	if f.t.cur.Load().line(a) == f.t.cur.Load().line(b2) {
		t.Fatal("the keys share a line after the table grew")
	}
	if _, ok := f.acquire(a); ok {
		t.Fatal("key a got a second slot after the table grew")
	}
	ta.Release()
	ta.Release()
	if _, ok := f.acquire(b2); ok {
		t.Fatal("a's release gave b a second slot")
	}
	tb.Release()
	if n := f.Len(); n != 0 {
		t.Fatalf("%d keys left", n)
	}
}
