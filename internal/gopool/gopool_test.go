package gopool

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestReuse: a function given after another one returned runs on the same goroutine
// (and so on the stack the first one grew); the deferred Stop ends it, which goleak
// checks.
func TestReuse(t *testing.T) {
	p := NewFuncs(4)
	defer p.Stop()
	ids := make(chan uint64, 2)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		p.Go(func() {
			defer wg.Done()
			ids <- goroutineID()
		})
		wg.Wait() // the first is back in the pool before the second is given
		waitIdle(t, p, 1)
	}
	if a, b := <-ids, <-ids; a != b {
		t.Fatalf("the second function ran on goroutine %d, not on the idle one (%d)", b, a)
	}
}

// TestMaxIdle: no more than the pool's bound of goroutines stay idle; the others end.
func TestMaxIdle(t *testing.T) {
	p := NewFuncs(2)
	defer p.Stop()
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		p.Go(func() {
			defer wg.Done()
			<-release
		})
	}
	close(release)
	wg.Wait()
	waitIdle(t, p, 2)
	time.Sleep(50 * time.Millisecond)
	if n := p.Idle(); n != 2 {
		t.Fatalf("%d idle goroutines, want 2 (the bound)", n)
	}
}

// TestExpire: an idle goroutine ends after about IdleTimeout, by the pool's sweeps.
func TestExpire(t *testing.T) {
	p := NewFuncs(4)
	defer p.Stop()
	done := make(chan struct{})
	p.Go(func() { close(done) })
	<-done
	waitIdle(t, p, 1)
	// Run the sweeps of IdleTimeout at once rather than wait for them.
	for range int(IdleTimeout/sweepEvery) + 1 {
		p.expire()
	}
	if n := p.Idle(); n != 0 {
		t.Fatalf("%d idle goroutines after IdleTimeout's sweeps, want 0", n)
	}
	p.mu.Lock()
	due := p.sweep != nil
	p.mu.Unlock()
	if due {
		t.Fatal("a sweep is still scheduled with no idle goroutine")
	}
}

// TestStop: after Stop, a function still runs, on a goroutine that then ends (goleak
// checks that none is left).
func TestStop(t *testing.T) {
	p := NewFuncs(4)
	p.Stop()
	done := make(chan struct{})
	p.Go(func() { close(done) })
	<-done
	time.Sleep(10 * time.Millisecond)
	if n := p.Idle(); n != 0 {
		t.Fatalf("%d idle goroutines after Stop, want 0", n)
	}
}

// waitIdle waits until p has n idle goroutines (the last function returned does not
// mean its goroutine is back in the pool yet).
func waitIdle[W, S any](t *testing.T, p *Pool[W, S], n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); p.Idle() != n; {
		if time.Now().After(deadline) {
			t.Fatalf("%d idle goroutines, want %d", p.Idle(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// goroutineID returns the running goroutine's id, from its stack's first line
// ("goroutine N [running]:").
func goroutineID() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	var id uint64
	for _, c := range b[len("goroutine "):] {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uint64(c-'0')
	}
	return id
}

// TestState: a goroutine's state is kept from one piece of work to the next, and a
// WaitGroup given to New counts the goroutines until Stop ends them.
func TestState(t *testing.T) {
	var wg sync.WaitGroup
	sums := make(chan int, 2)
	p := New(4, &wg, func(sum *int, n int) {
		*sum += n
		sums <- *sum
	})
	p.Go(1)
	if s := <-sums; s != 1 {
		t.Fatalf("first sum %d, want 1", s)
	}
	waitIdle(t, p, 1)
	p.Go(2)
	if s := <-sums; s != 3 {
		t.Fatalf("second sum %d, want 3 (the state of the first piece's goroutine)", s)
	}
	waitIdle(t, p, 1)
	p.Stop()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the WaitGroup still counts a goroutine after Stop")
	}
}
