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

// Pool runs pieces of work of type W, each on a goroutine of its own, which then waits
// for the next piece (a LIFO: the most recently idle, with the warmest stack, first).
// Each goroutine has a state of type S of its own, kept between pieces; it starts as
// the zero S. Make one with New. It is safe for concurrent use.
type Pool[W, S any] struct {
	// Immutable.
	run func(*S, W)
	max int             // the most idle goroutines kept
	wg  *sync.WaitGroup // counts the goroutines, if not nil

	mu      sync.Mutex
	idle    []*worker[W, S]
	stopped bool
	sweeps  int         // the sweeps run: a clock that costs nothing to read
	sweep   *time.Timer // runs the next sweep while there are idle goroutines; nil when none is due
}

type worker[W, S any] struct {
	work      chan W
	idleSince int // the pool's sweeps when the worker went idle
	state     S
}

// New returns a pool that runs each piece of work w as run(state, w), keeping at most
// maxIdle idle goroutines (at least 1). wg, if not nil, counts the pool's goroutines:
// after Stop, its Wait returns once the last one ended.
func New[W, S any](maxIdle int, wg *sync.WaitGroup, run func(*S, W)) *Pool[W, S] {
	return &Pool[W, S]{run: run, max: max(maxIdle, 1), wg: wg}
}

// Go runs w on an idle goroutine of the pool, or on a new one, and returns at once.
// After Stop, w runs on a new goroutine that ends with it.
func (p *Pool[W, S]) Go(w W) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		g := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		g.work <- w
		return
	}
	p.mu.Unlock()
	g := &worker[W, S]{work: make(chan W, 1)}
	g.work <- w
	if p.wg != nil {
		p.wg.Add(1)
	}
	go p.loop(g)
}

func (p *Pool[W, S]) loop(g *worker[W, S]) {
	if p.wg != nil {
		defer p.wg.Done()
	}
	for w := range g.work {
		p.run(&g.state, w)
		if !p.putIdle(g) {
			return
		}
	}
}

// putIdle makes g idle; it reports false when g must exit instead: the pool is
// stopped or has its most idle goroutines already.
func (p *Pool[W, S]) putIdle(g *worker[W, S]) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped || len(p.idle) >= p.max {
		return false
	}
	g.idleSince = p.sweeps
	p.idle = append(p.idle, g)
	if p.sweep == nil {
		p.sweep = time.AfterFunc(sweepEvery, p.expire)
	}
	return true
}

// expire ends the goroutines idle for longer than IdleTimeout, and schedules the next
// sweep if some are left.
func (p *Pool[W, S]) expire() {
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
func (p *Pool[W, S]) Idle() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// Stop ends the idle goroutines, and the busy ones once their piece of work is done.
// Go still runs work, each piece on a goroutine of its own.
func (p *Pool[W, S]) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	p.stopped = true
	for _, g := range p.idle {
		close(g.work)
	}
	clear(p.idle)
	p.idle = nil
	if p.sweep != nil {
		p.sweep.Stop()
		p.sweep = nil
	}
}

// Func is a piece of work that is a function: a Pool[Func, struct{}] made by NewFuncs
// runs functions.
type Func func()

// NewFuncs returns a pool that runs functions (see New).
func NewFuncs(maxIdle int) *Pool[Func, struct{}] {
	return New(maxIdle, nil, func(_ *struct{}, f Func) { f() })
}
