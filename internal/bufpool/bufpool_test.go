package bufpool

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPool(t *testing.T) {
	p := New(0)
	if p.Size() != DefaultSize {
		t.Fatalf("size %d", p.Size())
	}
	b := p.Get()
	if len(b) != DefaultSize || p.InUse() != 1 {
		t.Fatalf("len %d, in use %d", len(b), p.InUse())
	}
	p.Put(b)
	if p.InUse() != 0 {
		t.Fatalf("in use %d after Put", p.InUse())
	}
	small := New(64)
	if got := len(small.Get()); got != 64 {
		t.Fatalf("len %d", got)
	}
}

func TestNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	p := New(1024)
	p.Put(p.Get())
	allocs := testing.AllocsPerRun(1000, func() { p.Put(p.Get()) })
	if allocs > 0.1 {
		t.Fatalf("allocs per Get/Put: %v", allocs)
	}
}
