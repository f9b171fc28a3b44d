package lb

import "time"

// Failover is one request's failover state: the backends it tried and its current
// attempt. It is the failover pattern as a helper: keep one in the per-request
// context (its zero value is ready) and call it from four phases of a proxy.
//
//	func (p *MyProxy) UpstreamPeer(ctx context.Context, s *proxy.Session, c *Ctx) (*proxy.Peer, error) {
//		return c.failover.Select(p.lb, s.Request().Path())
//	}
//
//	func (p *MyProxy) FailToConnect(ctx context.Context, s *proxy.Session, c *Ctx, _ *proxy.Peer, err *proxy.Error) *proxy.Error {
//		err.Retry = c.failover.FailToConnect(err, err.Retry)
//		return err
//	}
//
//	func (p *MyProxy) ErrorWhileProxy(ctx context.Context, s *proxy.Session, c *Ctx, _ *proxy.Peer, err *proxy.Error, _ bool) *proxy.Error {
//		err.Retry = c.failover.ErrorWhileProxy(err, err.Source == proxy.Upstream, err.Retry || lb.Idempotent(s.Request().Method))
//		return err
//	}
//
//	func (p *MyProxy) Logging(ctx context.Context, s *proxy.Session, c *Ctx, err error) {
//		c.failover.Done(s.Status(), err)
//	}
//
// Each retry goes to a backend the request has not tried, is asked for only while
// one is left and the balancer's retry budget (Options.RetryBudget) allows it, and
// every attempt's outcome feeds outlier detection and the latency score: connect
// failures, timeouts and 5xx responses count towards ejection.
//
// A Failover is not safe for concurrent use; a request's phases run one at a time.
type Failover[T any] struct {
	l        *LoadBalancer[T]
	attempts Attempts[T]
	pick     Pick[T]
}

// Select chooses the backend for the request's next attempt, one it has not tried,
// and returns its value (Options.Attach's result). Call it from UpstreamPeer with the
// request's hash key (ignored by the algorithms that do not hash). The first call
// counts the request in l's retry budget. It fails with [ErrNoBackend] when no
// backend is left.
func (f *Failover[T]) Select(l *LoadBalancer[T], key string) (T, error) {
	f.pick.Done(Canceled) // an attempt nobody reported
	if f.attempts.Len() == 0 {
		l.budget.Request()
	}
	f.l = l
	p, err := l.Select(key, &f.attempts)
	if err != nil {
		var zero T
		return zero, err
	}
	f.pick = p
	return p.Value(), nil
}

// FailToConnect reports that connecting to the current backend failed with err (a
// connect failure, which counts towards ejection whatever err is) and returns whether
// to retry on another backend: retry (whether retrying is safe; the proxy's Retry
// field) and another backend is left and the retry budget allows it.
func (f *Failover[T]) FailToConnect(err error, retry bool) bool {
	f.pick.Done(ConnectFailure)
	return f.retry(retry)
}

// ErrorWhileProxy reports that the attempt failed with err after the connection was
// made and returns whether to retry on another backend, as FailToConnect does.
// upstream says whether the error came from the backend's side (the proxy's
// err.Source == proxy.Upstream): then a timeout (see [IsTimeout]) counts towards
// ejection, while another error may be the request's fault and does not; an error on
// the client's side (a slow or vanished client) says nothing about the backend and is
// never retried. retry says whether sending the request again is safe: the proxy's
// Retry field, or an idempotent method (see [Idempotent]).
func (f *Failover[T]) ErrorWhileProxy(err error, upstream, retry bool) bool {
	if !upstream {
		f.pick.Done(Canceled)
		return false
	}
	f.pick.Done(OutcomeOf(0, err))
	return f.retry(retry)
}

// retry reports whether to ask for another attempt, and if so takes it from the
// budget.
func (f *Failover[T]) retry(retry bool) bool {
	if !retry || f.l == nil || f.attempts.Len() >= len(f.l.Targets()) {
		return false
	}
	return f.l.budget.Retry()
}

// Done reports how the request ended, from the Logging phase: the response status (0
// if none) and the error that ended it, if any. It releases the current attempt if no
// failure phase did (see [OutcomeOf]); calls after the first do nothing.
func (f *Failover[T]) Done(status int, err error) {
	f.pick.Done(OutcomeOf(status, err))
}

// DoneLatency is Done with the latency sample given instead of measured from Select
// (see [Pick.DoneLatency]): for PeakEWMA, the upstream's own time to answer, such as
// a proxy Session's UpstreamResponse minus its UpstreamConnected.
func (f *Failover[T]) DoneLatency(status int, err error, rtt time.Duration) {
	f.pick.DoneLatency(OutcomeOf(status, err), rtt)
}

// Attempts returns the number of backends the request tried, for an access log.
func (f *Failover[T]) Attempts() int { return f.attempts.Len() }

// Addr returns the address of the current attempt's backend, or "" before Select and
// after Done.
func (f *Failover[T]) Addr() string { return f.pick.Addr() }
