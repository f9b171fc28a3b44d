package lb

import (
	"fmt"
	"math"
	"net/http"
	"sync/atomic"
	"time"
)

// RetryBudgetOptions configures a RetryBudget. The zero value allows retries of up to
// 20% of requests over a 10s window, plus 10 per second.
type RetryBudgetOptions struct {
	// Ratio is the share of requests that may be retried, over Window. If zero, 0.2;
	// negative means none beyond MinPerSecond.
	Ratio float64
	// MinPerSecond is the retries allowed per second whatever the traffic, so that a
	// quiet service can still retry. If zero, 10; negative means none.
	MinPerSecond int
	// Window is how far back requests and retries are counted. If zero, 10s. It is cut
	// into 10 slots, so counts leave it a tenth at a time.
	Window time.Duration
}

const budgetSlots = 10

// RetryBudget caps retries at a share of requests, as Envoy's and Finagle's retry
// budgets do, so that a failing fleet is not hit with a storm of retries on top of its
// load. Call Request once per request and Retry before each retry. Its methods are
// safe for concurrent use, take no lock and allocate nothing.
type RetryBudget struct {
	ratio   float64
	min     float64 // retries allowed per window whatever the traffic
	slotDur time.Duration
	epoch   time.Time
	slots   [budgetSlots]budgetSlot

	allowed, denied atomic.Uint64
}

type budgetSlot struct {
	epoch    atomic.Int64 // the slot's period number
	requests atomic.Int64
	retries  atomic.Int64
}

// NewRetryBudget returns a RetryBudget; it fails if Window is negative or Ratio is not
// a finite number.
func NewRetryBudget(o RetryBudgetOptions) (*RetryBudget, error) {
	return newRetryBudget("RetryBudgetOptions", o)
}

// newRetryBudget is NewRetryBudget with the name its errors give the options.
func newRetryBudget(field string, o RetryBudgetOptions) (*RetryBudget, error) {
	switch {
	case o.Window < 0:
		return nil, fmt.Errorf("lb: %s.Window: %v is negative", field, o.Window)
	case math.IsNaN(o.Ratio) || math.IsInf(o.Ratio, 0):
		return nil, fmt.Errorf("lb: %s.Ratio: %v is not a number", field, o.Ratio)
	}
	if o.Ratio == 0 {
		o.Ratio = 0.2
	}
	if o.MinPerSecond == 0 {
		o.MinPerSecond = 10
	}
	if o.Window == 0 {
		o.Window = 10 * time.Second
	}
	b := &RetryBudget{
		ratio:   max(o.Ratio, 0),
		min:     float64(max(o.MinPerSecond, 0)) * o.Window.Seconds(),
		slotDur: max(o.Window/budgetSlots, 1),
		epoch:   time.Now(),
	}
	return b, nil
}

// slot returns the current slot, emptied if it belonged to an older period.
func (b *RetryBudget) slot() (*budgetSlot, int64) {
	e := int64(time.Since(b.epoch) / b.slotDur)
	s := &b.slots[e%budgetSlots]
	if old := s.epoch.Load(); old != e && s.epoch.CompareAndSwap(old, e) {
		// Counts added by other goroutines between the swap and these stores may be
		// lost; the budget is an estimate.
		s.requests.Store(0)
		s.retries.Store(0)
	}
	return s, e
}

// Request records one request (its first attempt).
func (b *RetryBudget) Request() {
	s, _ := b.slot()
	s.requests.Add(1)
}

// Retry reports whether the budget allows one more retry now, and if so counts it.
func (b *RetryBudget) Retry() bool {
	cur, e := b.slot()
	var requests, retries int64
	for i := range b.slots {
		s := &b.slots[i]
		if se := s.epoch.Load(); se > e-budgetSlots && se <= e {
			requests += s.requests.Load()
			retries += s.retries.Load()
		}
	}
	if float64(retries) >= b.min+b.ratio*float64(requests) {
		b.denied.Add(1)
		return false
	}
	cur.retries.Add(1)
	b.allowed.Add(1)
	return true
}

// Allowed returns the number of retries the budget allowed.
func (b *RetryBudget) Allowed() uint64 { return b.allowed.Load() }

// Denied returns the number of retries the budget refused.
func (b *RetryBudget) Denied() uint64 { return b.denied.Load() }

// Idempotent reports whether a request with this method may be sent twice without a
// different effect (RFC 9110 §9.2.2): GET, HEAD, OPTIONS, TRACE, PUT, DELETE. Only such
// requests should be retried after the connection to the backend was made.
func Idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}
