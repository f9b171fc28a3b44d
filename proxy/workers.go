package proxy

import (
	"sync"
	"time"
)

// Requests run on worker goroutines, not on the goroutine of their client connection.
// A connection's goroutine only waits for the next request, so its stack stays at the
// minimum (2 KiB) however deep the phases go; the deep stacks belong to the few workers
// that are busy at a time. That keeps an idle keep-alive connection small.

// workerIdleTimeout is how long an idle worker waits for work before it exits.
const workerIdleTimeout = 10 * time.Second

type worker[C any] struct {
	work      chan *conn[C]
	idleSince int          // the pool's sweep count when the worker went idle
	ex        *exchange[C] // kept between requests, so that taking one costs nothing
}

// workerPool is a LIFO stack of idle workers: the most recently used, whose stack is
// warm, is reused first.
type workerPool[C any] struct {
	mu      sync.Mutex
	idle    []*worker[C]
	stopped bool
	sweeps  int // expireWorkers calls, about one a second: a clock that costs nothing to read
}

// dispatch runs c.work on a worker and returns at once.
func (s *Service[C]) dispatch(c *conn[C]) {
	p := &s.workers
	p.mu.Lock()
	if n := len(p.idle); n > 0 && !p.stopped {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.work <- c
		return
	}
	p.mu.Unlock()
	w := &worker[C]{work: make(chan *conn[C], 1)}
	w.work <- c
	s.wg.Add(1)
	go s.workerLoop(w)
}

func (s *Service[C]) workerLoop(w *worker[C]) {
	defer s.wg.Done()
	for c := range w.work {
		if c.detached.Load() {
			c.resume(w)
		} else {
			c.work(w)
			c.workDone <- struct{}{}
		}
		p := &s.workers
		p.mu.Lock()
		if p.stopped {
			p.mu.Unlock()
			return
		}
		w.idleSince = p.sweeps
		p.idle = append(p.idle, w)
		p.mu.Unlock()
	}
}

// expireWorkers, called about once a second, stops workers idle for longer than
// workerIdleTimeout; with stop, all idle workers, and no worker goes idle again.
func (s *Service[C]) expireWorkers(stop bool) {
	p := &s.workers
	p.mu.Lock()
	p.sweeps++
	if stop {
		p.stopped = true
	}
	// The oldest idle workers are at the bottom of the stack.
	n := 0
	for n < len(p.idle) && (stop || p.sweeps-p.idle[n].idleSince > int(workerIdleTimeout/time.Second)) {
		close(p.idle[n].work)
		n++
	}
	rest := copy(p.idle, p.idle[n:])
	clear(p.idle[rest:])
	p.idle = p.idle[:rest]
	p.mu.Unlock()
}
