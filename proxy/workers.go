package proxy

import (
	"runtime"

	"github.com/gotthard-proxy/gotthard/internal/gopool"
)

// Requests run on worker goroutines, not on the goroutine of their client connection.
// A connection's goroutine only waits for the next request, so its stack stays at the
// minimum (2 KiB) however deep the phases go; the deep stacks belong to the few workers
// that are busy at a time. That keeps an idle keep-alive connection small. The workers
// are a gopool.Pool of the service's: a worker that finished waits up to
// gopool.IdleTimeout for the next connection with work, its stack and its exchange
// kept; at most maxIdleWorkers wait so.

// worker is a worker goroutine's own state.
type worker[C any] struct {
	ex *exchange[C] // kept between requests, so that taking one costs nothing
}

// workerPool is the service's workers.
type workerPool[C any] = gopool.Pool[*conn[C], worker[C]]

// maxIdleWorkers is the most workers a service keeps idle: enough for the requests
// of a busy moment to find one, few enough that a burst's workers and their exchanges
// are not all kept.
func maxIdleWorkers() int { return max(256, 64*runtime.GOMAXPROCS(0)) }

// newWorkers makes the service's workers (their goroutines count in s.wg).
func (s *Service[C]) newWorkers() *workerPool[C] {
	return gopool.New(maxIdleWorkers(), &s.wg, s.runWork)
}

// runWork is a worker's piece of work: c's work, or its resumption after it detached.
func (s *Service[C]) runWork(w *worker[C], c *conn[C]) {
	if c.detached.Load() {
		c.resume(w)
		return
	}
	c.work(w)
	c.workDone <- struct{}{}
}

// dispatch runs c.work on a worker and returns at once.
func (s *Service[C]) dispatch(c *conn[C]) { s.workers.Go(c) }
