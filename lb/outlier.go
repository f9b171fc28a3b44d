package lb

import (
	"fmt"
	"time"
)

// OutlierOptions configures passive outlier detection: backends whose attempts fail
// in a row are ejected (Select skips them) for a time that grows with each ejection,
// then return by themselves. The zero value means the defaults given for each field.
type OutlierOptions struct {
	// Disabled turns outlier detection off.
	Disabled bool
	// ConsecutiveFailures is how many connect failures, timeouts or 5xx responses in a
	// row eject a backend (nginx's max_fails; 1 ejects at the first). If zero, 5.
	ConsecutiveFailures int
	// BaseEjection is the first ejection's length; the n-th ejection in a row lasts n
	// times as long. If zero, 10s.
	BaseEjection time.Duration
	// MaxEjection caps an ejection's length; a backend that stays in for this long
	// starts again from BaseEjection. If zero, 5 minutes.
	MaxEjection time.Duration
	// MaxEjectedPercent caps the share of backends ejected at once (at least one may
	// always be). If zero, 50.
	MaxEjectedPercent int
}

func (o OutlierOptions) withDefaults() (OutlierOptions, error) {
	switch {
	case o.ConsecutiveFailures < 0:
		return o, fmt.Errorf("lb: Options.Outlier.ConsecutiveFailures: %d is negative", o.ConsecutiveFailures)
	case o.BaseEjection < 0:
		return o, fmt.Errorf("lb: Options.Outlier.BaseEjection: %v is negative", o.BaseEjection)
	case o.MaxEjection < 0:
		return o, fmt.Errorf("lb: Options.Outlier.MaxEjection: %v is negative", o.MaxEjection)
	case o.MaxEjectedPercent < 0 || o.MaxEjectedPercent > 100:
		return o, fmt.Errorf("lb: Options.Outlier.MaxEjectedPercent: %d not in 0..100", o.MaxEjectedPercent)
	}
	if o.ConsecutiveFailures == 0 {
		o.ConsecutiveFailures = 5
	}
	if o.BaseEjection == 0 {
		o.BaseEjection = 10 * time.Second
	}
	if o.MaxEjection == 0 {
		o.MaxEjection = 5 * time.Minute
	}
	if o.MaxEjection < o.BaseEjection {
		o.MaxEjection = o.BaseEjection
	}
	if o.MaxEjectedPercent == 0 {
		o.MaxEjectedPercent = 50
	}
	return o, nil
}

// outlierResult feeds one attempt's outcome to outlier detection.
func (l *LoadBalancer[T]) outlierResult(t *Target[T], o Outcome) {
	if l.outlier.Disabled {
		return
	}
	switch o {
	case Success:
		if t.consecFail.Load() != 0 {
			t.consecFail.Store(0)
		}
		return
	case ConnectFailure, ServerError, Timeout:
	default:
		return // a read or write error may be the request's fault
	}
	if int(t.consecFail.Add(1)) < l.outlier.ConsecutiveFailures {
		return
	}
	l.eject(t, l.now())
}

// eject ejects t unless it already is, it left the set, or the cap is reached.
func (l *LoadBalancer[T]) eject(t *Target[T], now time.Duration) {
	if ev, ok := l.ejectLocked(t, now); ok {
		l.notify(ev)
	}
}

func (l *LoadBalancer[T]) ejectLocked(t *Target[T], now time.Duration) (HealthEvent, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.snap.Load()
	if t.state.Load()&stateEjected != 0 || s.byAddr[t.backend.Addr] != t {
		return HealthEvent{}, false
	}
	limit := max(1, len(s.targets)*l.outlier.MaxEjectedPercent/100)
	if int(l.ejected.Load()) >= limit {
		return HealthEvent{}, false
	}
	if t.ejections > 0 && now-t.returnedAt > l.outlier.MaxEjection {
		t.ejections = 0
	}
	t.ejections++
	d := min(time.Duration(t.ejections)*l.outlier.BaseEjection, l.outlier.MaxEjection)
	t.setState(stateEjected, true)
	t.consecFail.Store(0)
	l.ejected.Add(1)
	l.ejections.Add(1)
	t.ejectTimer = time.AfterFunc(d, func() { l.unejectTarget(t) })
	return HealthEvent{Backend: t.backend, Cause: Ejection, Duration: d}, true
}

// unejectTarget ends t's ejection, if t is still in the set.
func (l *LoadBalancer[T]) unejectTarget(t *Target[T]) {
	l.mu.Lock()
	if l.snap.Load().byAddr[t.backend.Addr] != t || !t.setState(stateEjected, false) {
		l.mu.Unlock()
		return
	}
	t.ejectTimer = nil
	t.resetScore()
	t.returnedAt = l.now()
	l.ejected.Add(-1)
	l.mu.Unlock()
	l.notify(HealthEvent{Backend: t.backend, Cause: EjectionEnd, Healthy: true, Available: t.Available()})
}

// inherit gives nt, which replaces t, t's health and ejection. l.mu is held.
func (l *LoadBalancer[T]) inherit(nt, t *Target[T]) {
	nt.state.Store(t.state.Load())
	nt.ejections = t.ejections
	nt.returnedAt = t.returnedAt
	if t.ejectTimer != nil {
		t.ejectTimer.Stop()
		t.ejectTimer = nil
	}
	if nt.state.Load()&stateEjected != 0 {
		// The remaining time is not carried over: the ejection restarts at its base.
		nt.ejectTimer = time.AfterFunc(l.outlier.BaseEjection, func() { l.unejectTarget(nt) })
	}
}

// retire stops the timer of t, which left the set (replaced by nt if not nil). l.mu is
// held.
func (l *LoadBalancer[T]) retire(t, nt *Target[T]) {
	if t.ejectTimer != nil {
		t.ejectTimer.Stop()
		t.ejectTimer = nil
	}
	if nt == nil && t.state.Load()&stateEjected != 0 {
		l.ejected.Add(-1)
	}
}
