package gopool

import (
	"sync"
	"time"
)

// IdleTimeout is about how long an idle goroutine waits for work before it exits.
const IdleTimeout = 10 * time.Second

// sweepEvery is how often a pool with idle goroutines looks for those idle longer than
// IdleTimeout.
const sweepEvery = time.Second

// Pool is a set of idle goroutines that run the functions given to Go. Its zero value
// is not usable: make one with New. It is safe for concurrent use.
type Pool struct {
	max int // the most idle goroutines kept

	mu      sync.Mutex
	idle    []*worker // a LIFO stack: the most recently idle, with the warmest stack, on top
	stopped bool
	sweeps  int         // the sweeps run: a clock that costs nothing to read
	sweep   *time.Timer // runs the next sweep while there are idle goroutines; nil when none is due
}

type worker struct {
	work      chan func()
	idleSince int // the pool's sweeps when the worker went idle
}

// New returns a pool that keeps at most maxIdle idle goroutines (at least 1).
func New(maxIdle int) *Pool {
	return &Pool{max: max(maxIdle, 1)}
}

// Go runs f on an idle goroutine of the pool, or on a new one, and returns at once.
// After Stop, f runs on a new goroutine that ends with it.
func (p *Pool) Go(f func()) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.work <- f
		return
	}
	p.mu.Unlock()
	w := &worker{work: make(chan func(), 1)}
	w.work <- f
	go p.loop(w)
}

func (p *Pool) loop(w *worker) {
	for f := range w.work {
		f()
		if !p.putIdle(w) {
			return
		}
	}
}

// putIdle makes w idle; it reports false when w must exit instead: the pool is
// stopped or has its most idle goroutines already.
func (p *Pool) putIdle(w *worker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped || len(p.idle) >= p.max {
		return false
	}
	w.idleSince = p.sweeps
	p.idle = append(p.idle, w)
	if p.sweep == nil {
		p.sweep = time.AfterFunc(sweepEvery, p.expire)
	}
	return true
}

// expire ends the goroutines idle for longer than IdleTimeout, and schedules the next
// sweep if some are left.
func (p *Pool) expire() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sweeps++
	if p.stopped {
		return
	}
	// The oldest idle goroutines are at the bottom of the stack.
	n := 0
	for n < len(p.idle) && p.sweeps-p.idle[n].idleSince > int(IdleTimeout/sweepEvery) {
		close(p.idle[n].work)
		n++
	}
	rest := copy(p.idle, p.idle[n:])
	clear(p.idle[rest:])
	p.idle = p.idle[:rest]
	if len(p.idle) > 0 {
		p.sweep.Reset(sweepEvery)
	} else {
		p.sweep = nil
	}
}

// Idle returns the number of idle goroutines.
func (p *Pool) Idle() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// Stop ends the idle goroutines, and those busy once their function returns. Go still
// runs functions, each on a goroutine of its own.
func (p *Pool) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	p.stopped = true
	for _, w := range p.idle {
		close(w.work)
	}
	clear(p.idle)
	p.idle = nil
	if p.sweep != nil {
		p.sweep.Stop()
		p.sweep = nil
	}
}
