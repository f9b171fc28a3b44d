package memory

import (
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/cache"
)

// TestHeapBound feeds a 64 MiB store 1 GiB of distinct objects (256 MiB under -short) of
// mixed sizes, with realistic heads, and checks that the live heap it holds, measured
// after a collection, stays within 64 MiB plus 10%, and that the accounting does not
// overstate it either. Distinct objects are mostly refused by the admission policy once
// the store is full, so a second run draws the keys of 200,000 objects from a Zipf
// distribution: popular keys are admitted and committed again with new bodies of new
// sizes, and the store evicts all the time.
func TestHeapBound(t *testing.T) {
	t.Run("distinct", func(t *testing.T) { testHeapBound(t, false) })
	t.Run("zipf", func(t *testing.T) { testHeapBound(t, true) })
}

func testHeapBound(t *testing.T, popular bool) {
	const maxBytes = 64 << 20
	total := int64(1 << 30)
	if testing.Short() {
		total = 256 << 20
	}
	rng := rand.New(rand.NewPCG(3, 4))
	src := make([]byte, 1<<20)
	for i := range src {
		src[i] = byte(rng.Uint32())
	}
	heap := func() int64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	base := heap()

	s := newStore(t, Options{MaxBytes: maxBytes, MaxObjectBytes: 1 << 20})
	zipf := rand.NewZipf(rng, 1.1, 1, 200_000-1)
	var written int64
	for i := 0; written < total; i++ {
		id := i
		if popular {
			id = int(zipf.Uint64())
		}
		var size int
		switch r := rng.IntN(100); {
		case r < 70:
			size = 200 + rng.IntN(8<<10)
		case r < 95:
			size = 8<<10 + rng.IntN(56<<10)
		default:
			size = 64<<10 + rng.IntN(960<<10)
		}
		key := "https://www.example.com/assets/" + strconv.Itoa(id) + "/file.bin?v=" + strconv.Itoa(id%1000)
		m := testMeta(200,
			"Date", "Sun, 06 Dec 2026 23:59:59 GMT",
			"Content-Type", "application/octet-stream",
			"Content-Length", strconv.Itoa(size),
			"Cache-Control", "public, max-age=86400",
			"ETag", `"`+strconv.Itoa(i)+`-`+strconv.Itoa(size)+`"`,
			"Last-Modified", "Sat, 05 Dec 2026 10:00:00 GMT",
			"Server", "origin/1.0",
			"Vary", "Accept-Encoding",
			"X-Request-Id", strconv.FormatUint(rng.Uint64(), 16),
		)
		m.ResponseTime = time.Unix(int64(i), 0)
		if i%2 == 0 {
			m.Size = int64(size) // announced: the writer allocates it up front
		}
		w, err := s.Create(key, m)
		if err != nil {
			t.Fatal(err)
		}
		for left := size; left > 0; {
			n := min(left, 16<<10)
			off := rng.IntN(len(src) - n)
			if _, err := w.Write(src[off : off+n]); err != nil {
				t.Fatal(err)
			}
			left -= n
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		written += int64(size)
	}
	used := heap() - base
	st := s.Stats()
	t.Logf("wrote %d MiB; store holds %d objects, accounts %.1f MiB, heap %.1f MiB (%.1f%% of MaxBytes); %d evictions, %d rejections",
		written>>20, st.Objects, float64(st.Bytes)/(1<<20), float64(used)/(1<<20), 100*float64(used)/maxBytes, st.Evictions, st.Rejections)
	if used > maxBytes+maxBytes/10 {
		t.Errorf("heap %d bytes, over 64 MiB plus 10%%", used)
	}
	if st.Bytes > maxBytes {
		t.Errorf("accounted %d bytes, over MaxBytes", st.Bytes)
	}
	if used < st.Bytes*3/4 {
		t.Errorf("heap %d bytes, under three quarters of the %d accounted: the accounting overstates", used, st.Bytes)
	}
	if st.Evictions == 0 {
		t.Error("no evictions")
	}
	runtime.KeepAlive(s)
	runtime.KeepAlive(src)
	var _ cache.Storage = s
}
