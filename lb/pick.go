package lb

import (
	"context"
	"errors"
	"net"
	"os"
	"time"
)

// Outcome says how an attempt on a backend went; [Pick.Done] feeds it to the latency
// score and to outlier detection.
type Outcome uint8

const (
	// Success: the backend answered with a status below 500.
	Success Outcome = iota
	// ServerError: the backend answered with a 5xx status.
	ServerError
	// ConnectFailure: connecting to the backend failed.
	ConnectFailure
	// Failure: the attempt failed after the connection was made (a read or write
	// error, a malformed response) for a reason that may be the request's own.
	Failure
	// Timeout: the backend did not answer in time (a connect, read, write or total
	// timeout). Like ConnectFailure and ServerError it counts towards ejection: a
	// backend that accepts connections and never answers is ejected as nginx marks
	// such a server down.
	Timeout
	// Canceled: the attempt ended for a reason that says nothing about the backend
	// (the client went away, a phase refused the request). It releases the pick only.
	Canceled
)

// String returns the outcome's name.
func (o Outcome) String() string {
	switch o {
	case Success:
		return "success"
	case ServerError:
		return "server-error"
	case ConnectFailure:
		return "connect-failure"
	case Failure:
		return "failure"
	case Timeout:
		return "timeout"
	case Canceled:
		return "canceled"
	}
	return "unknown"
}

// statusClientClosedRequest is the status a proxy logs for a client that went away
// before its response began (nginx's 499; proxy.StatusClientClosedRequest).
const statusClientClosedRequest = 499

// OutcomeOf maps a response status (0 when no response came) and the error that ended
// an attempt to an Outcome: 499 (the client went away before its response began) is
// Canceled, 5xx is a ServerError, another status a Success (the backend answered); with
// no status, a timeout (see [IsTimeout]) is a Timeout, an error that wraps
// [context.Canceled] (the attempt was cut by the proxy, as a proxy Service's closing
// does) or no error Canceled, another error a Failure. Use it in ErrorWhileProxy with
// status 0 and the phase's error when the error came from the backend's side, and in
// the Logging phase with the session's status.
func OutcomeOf(status int, err error) Outcome {
	switch {
	case status == statusClientClosedRequest:
		return Canceled
	case status >= 500:
		return ServerError
	case status == 0 && err != nil && IsTimeout(err):
		return Timeout
	case status == 0 && errors.Is(err, context.Canceled):
		return Canceled
	case status == 0 && err != nil:
		return Failure
	case status == 0:
		return Canceled
	}
	return Success
}

// IsTimeout reports whether err is a timeout: a [net.Error] whose Timeout method says
// so (the proxy's connect, read, write and total timeouts are), or an error that wraps
// [os.ErrDeadlineExceeded] or [context.DeadlineExceeded].
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() ||
		errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded)
}

// Pick is one selection of a backend: the handle the caller releases with [Pick.Done]
// when the attempt ends. Keep it in the per-request context. The zero Pick selects
// nothing and its Done does nothing. A Pick is not safe for concurrent use.
type Pick[T any] struct {
	t     *Target[T]
	start time.Duration // since the balancer's epoch
}

// Target returns the chosen backend's Target, or nil for the zero Pick.
func (p *Pick[T]) Target() *Target[T] { return p.t }

// Addr returns the chosen backend's address ("" for the zero Pick).
func (p *Pick[T]) Addr() string {
	if p.t == nil {
		return ""
	}
	return p.t.backend.Addr
}

// Value returns what Options.Attach made for the chosen backend: the peer to return
// from UpstreamPeer, typed. It is T's zero value for the zero Pick.
func (p *Pick[T]) Value() T {
	if p.t == nil {
		var zero T
		return zero
	}
	return p.t.value
}

// Done releases the pick: the backend's in-flight count goes down, the time since the
// selection becomes a latency sample (failures count as at least the failure penalty),
// and the outcome feeds outlier detection. Calls after the first do nothing, so both a
// failure phase and Logging may call it.
func (p *Pick[T]) Done(o Outcome) { p.finish(o, -1) }

// DoneLatency is Done with the latency sample given by the caller instead of measured
// from the selection: for example the time from a proxy Session's UpstreamConnected to
// its UpstreamResponse, which leaves out the client's own delays. It reads no clock.
func (p *Pick[T]) DoneLatency(o Outcome, rtt time.Duration) { p.finish(o, max(rtt, 0)) }

// finish releases the pick; rtt < 0 means measure it from the selection.
func (p *Pick[T]) finish(o Outcome, rtt time.Duration) {
	t := p.t
	if t == nil {
		return
	}
	p.t = nil
	t.inflight.Add(-1)
	l := t.lb
	if o == Canceled {
		return
	}
	if l.algo == PeakEWMA {
		var now time.Duration
		if rtt < 0 {
			now = l.now()
			rtt = now - p.start
		} else {
			now = p.start + rtt
		}
		if o != Success {
			rtt = max(rtt, l.failurePenalty)
		}
		t.observe(now, rtt)
	}
	l.outlierResult(t, o)
}

// maxTracked is how many tried backends an Attempts remembers.
const maxTracked = 8

// Attempts remembers which backends a request already tried, so that
// [LoadBalancer.Select] picks another one on a retry. Keep one in the per-request
// context; its zero value is ready to use. It remembers the last 8 backends tried. An
// Attempts is not safe for concurrent use.
type Attempts[T any] struct {
	tried [maxTracked]*Target[T]
	n     int // total added
}

// Len returns the number of selections recorded.
func (a *Attempts[T]) Len() int { return a.n }

// Tried reports whether t was already selected for this request.
func (a *Attempts[T]) Tried(t *Target[T]) bool {
	if a == nil {
		return false
	}
	for i := range min(a.n, maxTracked) {
		if a.tried[i] == t {
			return true
		}
	}
	return false
}

// Reset forgets every backend tried.
func (a *Attempts[T]) Reset() { *a = Attempts[T]{} }

func (a *Attempts[T]) add(t *Target[T]) {
	if a == nil {
		return
	}
	a.tried[a.n%maxTracked] = t
	a.n++
}
