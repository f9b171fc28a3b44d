package observe

import "time"

// Backend is one backend of a [Balancer] as a metrics scrape or a status page sees it.
type Backend struct {
	// Addr is the backend's address.
	Addr string
	// Weight is its weight in the balancer's selection.
	Weight int
	// Healthy is false when active health checks marked it down; Ejected is true while
	// outlier detection keeps it out; Available is true when the balancer may choose it.
	Healthy, Ejected, Available bool
	// InFlight is the number of requests it has in flight through the balancer.
	InFlight int64
	// Latency is its decayed EWMA latency, 0 before any sample.
	Latency time.Duration
}

// Balancer is a set of backends whose state can be listed: lb.LoadBalancer is one.
type Balancer interface {
	// Name identifies the balancer.
	Name() string
	// AppendBackends appends the state of each backend to dst, in the balancer's
	// order, and returns the extended slice. It is safe for concurrent use.
	AppendBackends(dst []Backend) []Backend
}

// Health is a change of a backend's health, as a balancer reports it.
type Health struct {
	// Balancer is the balancer's name, Backend the backend's address.
	Balancer, Backend string
	// Cause says what changed: "active-check", "ejection" or "ejection-end".
	Cause string
	// Healthy is the backend's health by Cause after the change: false when a check
	// marked it down or outlier detection ejected it. Available is whether the
	// balancer may now choose it.
	Healthy, Available bool
	// Err is the failed check's error when an active check marked it down.
	Err error
	// Time is when the change happened.
	Time time.Time
}

// HealthObserver sees the health changes of the balancers it is given to
// (lb.Options.Observers). HealthChange runs on the goroutine that noticed the change
// (a health check, or a request's outcome); it must not block and must be safe for
// concurrent use.
type HealthObserver interface {
	HealthChange(h Health)
}
