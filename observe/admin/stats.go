package admin

import (
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotthard-proxy/gotthard/observe"
)

// Stats is an [observe.Observer] and [observe.ConnObserver] that keeps, per service,
// the counters and the recent rates and latencies that the admin service's
// /status.json and status page show. Register one on each proxy service
// (proxy.ServiceOptions.Observers) and give it to [Options.Stats]. It is also an
// [observe.HealthObserver]: given to balancers (lb.Options.Observers), it keeps their
// latest health changes for the page.
//
// It is safe for concurrent use. A request costs a few atomic adds and no allocation;
// a service's first request adds it under a lock, once. Each service holds about 105
// KiB: 64 one-second slots of a 201-bucket latency histogram.
type Stats struct {
	start time.Time
	now   func() time.Time // time.Now; replaced in tests

	mu       sync.Mutex                               // serialises adding a service
	services atomic.Pointer[map[string]*serviceStats] // copied on write

	healthMu   sync.Mutex
	health     [maxHealthEvents]HealthEvent // a ring of the latest changes
	healthNext int                          // where the next change goes
}

// Stats observes requests and connections.
var (
	_ observe.Observer     = (*Stats)(nil)
	_ observe.ConnObserver = (*Stats)(nil)
)

// NewStats returns an empty Stats; its uptime counts from now.
func NewStats() *Stats {
	s := &Stats{now: time.Now}
	s.start = s.now()
	m := map[string]*serviceStats{}
	s.services.Store(&m)
	return s
}

// serviceStats is one service's counters.
type serviceStats struct {
	requests    atomic.Uint64
	byClass     [6]atomic.Uint64 // [0]: no status, [1..5]: 1xx..5xx
	errors      atomic.Uint64
	inFlight    atomic.Int64
	conns       atomic.Int64
	connsTotal  atomic.Uint64
	tlsFailures atomic.Uint64
	upConns     atomic.Uint64
	upConnErrs  atomic.Uint64
	reused      atomic.Uint64
	fresh       atomic.Uint64
	retries     atomic.Uint64
	bytesSent   atomic.Uint64
	bytesRecv   atomic.Uint64
	win         window
}

// service returns the counters of the named service, adding them if need be.
func (s *Stats) service(name string) *serviceStats {
	if ss := (*s.services.Load())[name]; ss != nil {
		return ss
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := *s.services.Load()
	if ss := m[name]; ss != nil {
		return ss
	}
	ss := new(serviceStats)
	m2 := maps.Clone(m)
	m2[name] = ss
	s.services.Store(&m2)
	return ss
}

// ofRequest returns the counters r's RequestStart chose.
func (s *Stats) ofRequest(r *observe.Request) *serviceStats {
	if ss, ok := r.Data.(*serviceStats); ok {
		return ss
	}
	ss := s.service(r.Service)
	r.Data = ss
	return ss
}

// ObservedEvents tells the service the statistics use every request event but
// UpstreamRequest.
func (s *Stats) ObservedEvents() observe.Events {
	return observe.AllEvents &^ observe.EventUpstreamRequest
}

// RequestStart counts the request in flight.
func (s *Stats) RequestStart(r *observe.Request) {
	s.ofRequest(r).inFlight.Add(1)
}

// AttemptStart counts a retry for each attempt after the first.
func (s *Stats) AttemptStart(r *observe.Request, a *observe.Attempt) {
	if a.N > 0 {
		s.ofRequest(r).retries.Add(1)
	}
}

// UpstreamRequest does nothing.
func (s *Stats) UpstreamRequest(*observe.Request, *observe.Attempt, observe.Header) {}

// AttemptEnd counts the connection of an attempt that got one (a.Connected is set) as
// reused from the pool or new.
func (s *Stats) AttemptEnd(r *observe.Request, a *observe.Attempt) {
	if a.Connected.IsZero() {
		return
	}
	ss := s.ofRequest(r)
	if a.Reused {
		ss.reused.Add(1)
	} else {
		ss.fresh.Add(1)
	}
}

// RequestEnd counts the request by its status class, as an error if it got a 5xx or
// failed without a status (a 4xx is the client's doing, 499 a client that left), and
// records its latency (but not a tunnel's: a WebSocket's duration is its
// life, not a latency).
func (s *Stats) RequestEnd(r *observe.Request) {
	ss := s.ofRequest(r)
	ss.inFlight.Add(-1)
	ss.requests.Add(1)
	class := r.Status / 100
	if class < 1 || class > 5 {
		class = 0
	}
	ss.byClass[class].Add(1)
	isErr := class == 5 || (class == 0 && r.Err != nil)
	if isErr {
		ss.errors.Add(1)
	}
	if r.BytesSent > 0 {
		ss.bytesSent.Add(uint64(r.BytesSent))
	}
	if r.BytesReceived > 0 {
		ss.bytesRecv.Add(uint64(r.BytesReceived))
	}
	end := r.End
	if end.IsZero() {
		end = s.now()
	}
	d := time.Duration(-1)
	if r.Upgrade == "" && !r.Start.IsZero() {
		d = max(end.Sub(r.Start), 0)
	}
	ss.win.record(end, isErr, d)
}

// ofConn returns the counters of c's service.
func (s *Stats) ofConn(c *observe.Conn) *serviceStats {
	if ss, ok := c.Data.(*serviceStats); ok {
		return ss
	}
	ss := s.service(c.Service)
	c.Data = ss
	return ss
}

// ConnOpen counts an open client connection.
func (s *Stats) ConnOpen(c *observe.Conn) {
	ss := s.ofConn(c)
	ss.conns.Add(1)
	ss.connsTotal.Add(1)
}

// ConnTLS counts failed TLS handshakes.
func (s *Stats) ConnTLS(c *observe.Conn) {
	if c.Err != nil {
		s.ofConn(c).tlsFailures.Add(1)
	}
}

// ConnClose counts the client connection closed, and the bytes a TCP service's
// connection relayed.
func (s *Stats) ConnClose(c *observe.Conn) {
	ss := s.ofConn(c)
	ss.conns.Add(-1)
	if c.BytesSent > 0 {
		ss.bytesSent.Add(uint64(c.BytesSent))
	}
	if c.BytesReceived > 0 {
		ss.bytesRecv.Add(uint64(c.BytesReceived))
	}
}

// UpstreamConn counts the new upstream connection, or the failure to make it.
func (s *Stats) UpstreamConn(c *observe.Conn) {
	ss := s.ofConn(c)
	if c.Err != nil {
		ss.upConnErrs.Add(1)
	} else {
		ss.upConns.Add(1)
	}
}

// ServiceStats is a snapshot of one service's counters ([Stats.Snapshot]), in the
// units of /status.json (see the package doc for each field's meaning).
type ServiceStats struct {
	// Name is the service's name.
	Name string
	// Requests counts the requests that ended, Errors those that got a 5xx or failed
	// without a status (not a client that left: 499), and Retries the attempts after
	// a request's first.
	Requests, Errors, Retries uint64
	// ByClass counts the requests that ended by the class of their status.
	ByClass Classes
	// InFlight is the number of requests started and not ended, Connections the
	// client connections open.
	InFlight, Connections int64
	// ConnectionsTotal counts the client connections accepted, TLSFailures their
	// failed TLS handshakes.
	ConnectionsTotal, TLSFailures uint64
	// UpstreamConns counts the new connections to peers, UpstreamConnErrs the
	// attempts to make one that failed.
	UpstreamConns, UpstreamConnErrs uint64
	// Reused and New count the attempts that took a pooled connection or a new one.
	Reused, New uint64
	// BytesSent and BytesReceived count the body bytes sent to and received from
	// clients (a TCP service's: the bytes relayed).
	BytesSent, BytesReceived uint64
	// RPS10s and RPS1m are the requests that ended per second over the last 10 and 60
	// whole seconds; ErrorRate10s and ErrorRate1m the share of errors among them.
	RPS10s, RPS1m, ErrorRate10s, ErrorRate1m float64
	// P50ms, P90ms and P99ms are latency percentiles over the last 60 seconds, in
	// milliseconds, of LatencySamples requests (tunnels are not sampled).
	P50ms, P90ms, P99ms float64
	LatencySamples      uint64
}

// Classes counts requests by the class of their status; Other is those with none
// (the client left before a response, or a tunnel that failed).
type Classes struct {
	// C1xx to C5xx count the statuses 100-199 to 500-599.
	C1xx, C2xx, C3xx, C4xx, C5xx uint64
	// Other counts the requests without a status.
	Other uint64
}

// ReuseRatio returns the share of attempts that took a pooled connection, 0 before
// any attempt.
func (s *ServiceStats) ReuseRatio() float64 {
	if t := s.Reused + s.New; t > 0 {
		return float64(s.Reused) / float64(t)
	}
	return 0
}

// Snapshot returns the counters of every service seen so far, sorted by name. The
// rates are over the last whole 10 and 60 seconds (fewer just after NewStats), the
// percentiles over the last 60 seconds including the current one.
func (s *Stats) Snapshot() []ServiceStats {
	m := *s.services.Load()
	names := slices.Sorted(maps.Keys(m))
	out := make([]ServiceStats, 0, len(names))
	now := s.now()
	for _, name := range names {
		out = append(out, s.snapshot(name, m[name], now))
	}
	return out
}

// Uptime returns the time since NewStats.
func (s *Stats) Uptime() time.Duration { return s.now().Sub(s.start) }

func (s *Stats) snapshot(name string, ss *serviceStats, now time.Time) ServiceStats {
	v := ServiceStats{
		Name:             name,
		Requests:         ss.requests.Load(),
		Errors:           ss.errors.Load(),
		Retries:          ss.retries.Load(),
		InFlight:         max(ss.inFlight.Load(), 0),
		Connections:      max(ss.conns.Load(), 0),
		ConnectionsTotal: ss.connsTotal.Load(),
		TLSFailures:      ss.tlsFailures.Load(),
		UpstreamConns:    ss.upConns.Load(),
		UpstreamConnErrs: ss.upConnErrs.Load(),
		Reused:           ss.reused.Load(),
		New:              ss.fresh.Load(),
		BytesSent:        ss.bytesSent.Load(),
		BytesReceived:    ss.bytesRecv.Load(),
		ByClass: Classes{
			Other: ss.byClass[0].Load(), C1xx: ss.byClass[1].Load(), C2xx: ss.byClass[2].Load(),
			C3xx: ss.byClass[3].Load(), C4xx: ss.byClass[4].Load(), C5xx: ss.byClass[5].Load(),
		},
	}
	sec := now.Unix()
	// Just after NewStats, divide by the seconds there were (the first one in part).
	elapsed := int(sec - s.start.Unix())
	rate := func(n int) (rps, errRate float64) {
		req, errs := ss.win.counts(sec, n)
		if d := min(n, elapsed); d > 0 {
			rps = float64(req) / float64(d)
		}
		if req > 0 {
			errRate = float64(errs) / float64(req)
		}
		return rps, errRate
	}
	v.RPS10s, v.ErrorRate10s = rate(rateShort)
	v.RPS1m, v.ErrorRate1m = rate(rateLong)
	var h [numBuckets]uint64
	v.LatencySamples = ss.win.latency(sec, latencyWindow, &h)
	v.P50ms = quantile(&h, v.LatencySamples, 0.50)
	v.P90ms = quantile(&h, v.LatencySamples, 0.90)
	v.P99ms = quantile(&h, v.LatencySamples, 0.99)
	return v
}
