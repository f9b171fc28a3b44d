package sentry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	sentrygo "github.com/getsentry/sentry-go"

	"github.com/gotthard-proxy/gotthard/observe"
)

// ErrFlushTimeout is returned by [Observer.Run] when the events had not all been
// handed over to Sentry when Options.FlushTimeout ran out.
var ErrFlushTimeout = errors.New("sentry: flush timed out, events may be lost")

// Observer reports a service's panics and failures to Sentry; it is an
// [observe.Observer] that acts at RequestEnd only. It is also a server background
// service by its method set (Name, Run), whose Run flushes the events when the server
// stops. An Observer is safe for concurrent use; make one with [New].
type Observer struct {
	observe.Base

	c config
	// The rate limits: one for the panics, one for the other failures, so that a
	// storm of 502s does not hide a panic.
	panics, failures *bucket
	base             time.Time    // the origin of the buckets' monotonic clock
	now              func() int64 // nanoseconds since base

	dropped  atomic.Uint64
	reported atomic.Uint64

	maxPending int             // the most events being handed over at once
	httpTr     *http.Transport // of the client made from a DSN

	// mu guards the count of events being handed over and the channel closed when
	// that count falls to zero, which Flush and Close wait on.
	mu      sync.Mutex
	pending int
	idle    chan struct{} // nil while pending is 0
	closed  bool

	closeOnce sync.Once
}

// New returns an Observer configured by opts, after checking them; an error names the
// bad field. With Options.DSN it makes a sentry-go client, which [Observer.Close]
// closes.
func New(opts Options) (*Observer, error) {
	c, err := validate(opts)
	if err != nil {
		return nil, err
	}
	o := &Observer{c: c, base: time.Now(), maxPending: maxPending}
	if c.client == nil {
		// sentry-go's HTTPTransport: a queue its Flush waits on to the end, sent by a
		// goroutine of its own over an HTTP transport of ours, whose idle connections
		// Close closes.
		if dt, ok := http.DefaultTransport.(*http.Transport); ok {
			o.httpTr = dt.Clone()
		} else {
			o.httpTr = &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true}
		}
		cl, err := sentrygo.NewClient(sentrygo.ClientOptions{
			Dsn:                    opts.DSN,
			Environment:            c.environment,
			Release:                c.release,
			HTTPTransport:          o.httpTr,
			DisableTelemetryBuffer: true,
			DisableMetrics:         true,
		})
		if err != nil {
			return nil, fmt.Errorf("sentry: Options.DSN: %w", err)
		}
		o.c.client, o.c.owned = cl, true
	}
	o.now = func() int64 { return int64(time.Since(o.base)) }
	o.panics, o.failures = newBucket(c.rate, c.burst, o.now()), newBucket(c.rate, c.burst, o.now())
	return o, nil
}

// Client returns the sentry-go client the Observer sends events to.
func (o *Observer) Client() *sentrygo.Client { return o.c.client }

// ObservedEvents tells the service the observer uses RequestEnd only.
func (o *Observer) ObservedEvents() observe.Events { return observe.EventRequestEnd }

// RequestEnd reports r if a phase panicked or its status is one to report (see
// [Options.ReportStatus]) and the rate limit lets it through. It copies what the event
// needs from r and hands the event to the client on a goroutine of its own, so the
// request never waits for the client's work or the network. A request that is not
// reported costs a few comparisons.
func (o *Observer) RequestEnd(r *observe.Request) {
	if r.Panic == nil && !o.wants(r) {
		return
	}
	b := o.failures
	if r.Panic != nil {
		b = o.panics
	}
	if !b.allow(o.now()) {
		o.dropped.Add(1)
		return
	}
	if !o.begin() {
		o.dropped.Add(1)
		return
	}
	rep := o.capture(r)
	go func() {
		defer o.done()
		o.send(rep)
	}()
}

// wants reports whether a request that did not panic is to be reported.
func (o *Observer) wants(r *observe.Request) bool {
	if o.c.reportStatus != nil {
		return o.c.reportStatus(r.Status)
	}
	return r.Status >= 500 && r.Err != nil
}

// maxPending bounds the events being handed over at once: that many only pile up when
// the client is stuck (a BeforeSend that blocks, say), and more would only pile up
// further.
const maxPending = 256

// begin counts one more event being handed over; it reports false once the Observer
// is closed, or while maxPending events are still being handed over.
func (o *Observer) begin() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed || o.pending >= o.maxPending {
		return false
	}
	if o.pending == 0 {
		o.idle = make(chan struct{})
	}
	o.pending++
	return true
}

// done counts one event handed over.
func (o *Observer) done() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.pending--
	if o.pending == 0 {
		close(o.idle)
		o.idle = nil
	}
}

// idleChan returns a channel closed once no event is being handed over, or nil if
// none is now.
func (o *Observer) idleChan() <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.idle
}

// send builds the event and hands it to the client.
func (o *Observer) send(rep *report) {
	ev, hint := o.event(rep)
	o.c.client.CaptureEvent(ev, hint, nil)
	o.reported.Add(1)
}

// Dropped returns the number of events not sent: over the rate limit, while the
// client was stuck on earlier ones, or after Close.
func (o *Observer) Dropped() uint64 { return o.dropped.Load() }

// Reported returns the number of events handed to the Sentry client. The client may
// still drop some (its sample rate, BeforeSend, a full queue, Sentry's own rate
// limits).
func (o *Observer) Reported() uint64 { return o.reported.Load() }

// Flush waits until the events reported so far have been handed to the client and the
// client has sent them, for at most timeout; it reports whether everything was sent in
// time.
func (o *Observer) Flush(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	if ch := o.idleChan(); ch != nil {
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-ch:
		case <-t.C:
			return false
		}
	}
	return o.c.client.Flush(max(time.Until(deadline), 0))
}

// Name returns the Observer's name as a background service: Options.Name, "sentry" by
// default.
func (o *Observer) Name() string { return o.c.name }

// Run waits for ctx to end, then flushes the events for at most Options.FlushTimeout;
// it returns nil, or [ErrFlushTimeout] if they could not all be sent in time. It makes
// the Observer a server.BackgroundService, so that a server flushes it when it stops
// (it cancels background services once its listening services have drained).
func (o *Observer) Run(ctx context.Context) error {
	<-ctx.Done()
	if !o.Flush(o.c.flushTimeout) {
		return ErrFlushTimeout
	}
	return nil
}

// Close stops reporting (later events are dropped and counted), waits for the events
// being handed over, and, if New made the client from Options.DSN, flushes it for up to
// Options.FlushTimeout and closes it; a client given in Options.Client is left open.
// Call it once the services that use the Observer have stopped. It returns nil; calls
// after the first do nothing.
func (o *Observer) Close() error {
	o.closeOnce.Do(func() {
		o.mu.Lock()
		o.closed = true
		ch := o.idle
		o.mu.Unlock()
		if ch != nil {
			<-ch
		}
		if o.c.owned {
			o.c.client.Flush(o.c.flushTimeout)
			o.c.client.Close()
			o.httpTr.CloseIdleConnections()
		}
	})
	return nil
}
