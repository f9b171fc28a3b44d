package proxy

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// errBodyTooSlow is the cause of a request that ended because its client sent the body
// slower than ServiceOptions.MinRequestBodyRate.
var errBodyTooSlow = errors.New("proxy: request body slower than the minimum rate")

// Defaults of ServiceOptions.MinRequestBodyRate and MinRequestBodyRateGrace, those of
// Apache's mod_reqtimeout ("body=20,MinRate=500").
const (
	defaultMinBodyRate      = 500
	defaultMinBodyRateGrace = 20 * time.Second
)

// bodyRate holds the waits for one request body to a minimum rate: counted over the
// time spent waiting on the client only (the time the peer takes to accept the body
// does not count against the client), the body must bring at least min bytes a second
// once grace has passed. Each wait is bounded so that the body falls below that rate
// only if the wait times out. The zero bodyRate sets no minimum.
type bodyRate struct {
	min    int64         // bytes a second; 0: no minimum
	grace  time.Duration // waiting time allowed before any byte counts
	waited time.Duration // time spent waiting on the client for this body so far
	since  time.Time     // when the current wait began; zero if none
	bound  bool          // the current wait is bounded by the rate, not by the timeout
}

// maxMinBodyRate bounds ServiceOptions.MinRequestBodyRate (1 GiB/s).
const maxMinBodyRate = 1 << 30

// newBodyRate returns the bodyRate of the service's options.
func newBodyRate(o *ServiceOptions) bodyRate {
	if o.MinRequestBodyRate < 0 {
		return bodyRate{}
	}
	r := bodyRate{min: int64(o.MinRequestBodyRate), grace: durOr(o.MinRequestBodyRateGrace, defaultMinBodyRateGrace)}
	if r.min == 0 {
		r.min = defaultMinBodyRate
	}
	return r
}

// wait begins a wait on the client at now and returns its bound: timeout, or less if
// the body, with received bytes so far, would fall below the minimum rate sooner.
func (b *bodyRate) wait(now time.Time, timeout time.Duration, received int64) time.Duration {
	b.since, b.bound = now, false
	if b.min <= 0 {
		return timeout
	}
	credit := b.grace - b.waited
	secs := received / b.min
	if secs > int64((timeout-credit)/time.Second) {
		return timeout // (also keeps the sum below from overflowing)
	}
	rem := received % b.min // (below min, which Validate bounds: no overflow)
	credit += time.Duration(secs)*time.Second + time.Duration(rem)*time.Second/time.Duration(b.min)
	if credit >= timeout {
		return timeout
	}
	b.bound = true
	return max(credit, 0)
}

// end ends the wait begun by wait, if any, and returns err, marked with errBodyTooSlow
// when the wait timed out on the minimum rate.
func (b *bodyRate) end(err error) error {
	if b.since.IsZero() {
		return err
	}
	b.waited += time.Since(b.since)
	b.since = time.Time{}
	var ne net.Error
	if b.bound && err != nil && errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%w: %w", errBodyTooSlow, err)
	}
	return err
}
