package prometheus

import (
	"crypto/tls"
	"sync/atomic"

	"github.com/gotthard-proxy/gotthard/observe"
	prom "github.com/prometheus/client_golang/prometheus"
)

// The methods of the requests metric are those methodName names; the status classes
// those className names.
const (
	nMethods = 10
	nClasses = 6
)

// methodName returns the method of index i (see methodIndex).
func methodName(i int) string {
	return [nMethods]string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "other"}[i]
}

// className returns the status class of index i (see classIndex).
func className(i int) string {
	return [nClasses]string{"0", "1xx", "2xx", "3xx", "4xx", "5xx"}[i]
}

// maxTypes bounds the distinct error types (and sources) counted per service; further
// ones are counted as "other".
const maxTypes = 64

// methodIndex returns the index of the method m: "other" for one not in the fixed set.
func methodIndex(m string) int {
	switch m {
	case "GET":
		return 0
	case "HEAD":
		return 1
	case "POST":
		return 2
	case "PUT":
		return 3
	case "DELETE":
		return 4
	case "PATCH":
		return 5
	case "OPTIONS":
		return 6
	case "CONNECT":
		return 7
	case "TRACE":
		return 8
	}
	return 9
}

// classIndex returns the index of the class of status: 0 for 0 or a status outside
// 100-599.
func classIndex(status int) int {
	if status < 100 || status > 599 {
		return 0
	}
	return status / 100
}

// tlsVersion names a TLS version as the tls_handshakes_total metric does.
func tlsVersion(v uint16) string {
	switch v {
	case tls.VersionTLS12:
		return "1.2"
	case tls.VersionTLS13:
		return "1.3"
	case tls.VersionTLS11:
		return "1.1"
	case tls.VersionTLS10:
		return "1.0"
	}
	return "other"
}

// tlsGroup names a key exchange group as the tls_handshakes_total metric does: its
// crypto/tls name, "none" for none (TLS 1.2 with RSA key exchange, or a resumption
// without one), "other" for one crypto/tls does not name.
func tlsGroup(id tls.CurveID) string {
	switch id {
	case 0:
		return "none"
	case tls.X25519, tls.X25519MLKEM768, tls.CurveP256, tls.CurveP384, tls.CurveP521,
		tls.SecP256r1MLKEM768, tls.SecP384r1MLKEM1024:
		return id.String() // a constant for the names it knows
	}
	return "other"
}

// service holds the series of one service, resolved once.
type service struct {
	m    *Metrics
	name string

	base   *series                 // without Options.Label
	labels cowMap[string, *series] // with Options.Label, by its value

	inFlight, connsOpen, h2Streams       prom.Gauge
	ttfb, upConnect, upTLS, tlsDuration  *durationHist
	attempts                             [2]prom.Counter // new, reused
	retries, sent, received, tlsFailures prom.Counter
	upConns, upConnErrs                  prom.Counter
	errs                                 cowMap[[2]string, prom.Counter] // source, type
	cache                                cowMap[string, prom.Counter]    // cache status
	attemptErrs                          cowMap[string, prom.Counter]
	tlsHandshakes                        cowMap[[2]string, prom.Counter] // version, group
}

// series holds the request series of one service and Label value.
type series struct {
	svc      *service
	label    string // "" without Options.Label
	duration *durationHist
	requests [nMethods][nClasses]atomic.Pointer[prom.Counter]
}

// service returns the series of the service named name, made the first time.
func (m *Metrics) service(name string) *service {
	if s := m.last.Load(); s != nil && s.name == name {
		return s
	}
	if s, ok := m.services.get(name); ok {
		m.last.Store(s)
		return s
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.services.get(name); ok {
		return s
	}
	s := &service{
		m:           m,
		name:        name,
		inFlight:    m.inFlight.WithLabelValues(name),
		connsOpen:   m.connsOpen.WithLabelValues(name),
		h2Streams:   m.h2Streams.WithLabelValues(name),
		ttfb:        m.ttfb.with(name),
		upConnect:   m.upConnect.with(name),
		upTLS:       m.upTLS.with(name),
		tlsDuration: m.tlsDuration.with(name),
		attempts:    [2]prom.Counter{m.attempts.WithLabelValues(name, "new"), m.attempts.WithLabelValues(name, "reused")},
		retries:     m.retries.WithLabelValues(name),
		sent:        m.sent.WithLabelValues(name),
		received:    m.received.WithLabelValues(name),
		tlsFailures: m.tlsFailures.WithLabelValues(name),
		upConns:     m.upConns.WithLabelValues(name),
		upConnErrs:  m.upConnErrs.WithLabelValues(name),
	}
	if m.opts.Label == nil {
		s.base = &series{svc: s, duration: m.duration.with(name)}
	}
	m.services.put(name, s)
	m.last.Store(s)
	return s
}

// series returns the request series of the Label value v, made the first time; past
// Options.MaxLabelValues values, that of "other".
func (s *service) series(v string) *series {
	if x, ok := s.labels.get(v); ok {
		return x
	}
	m := s.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if x, ok := s.labels.get(v); ok {
		return x
	}
	if s.labels.len() >= m.opts.MaxLabelValues {
		v = "other"
		if x, ok := s.labels.get(v); ok {
			return x
		}
	}
	x := &series{svc: s, label: v, duration: m.duration.with(s.name, v)}
	s.labels.put(v, x)
	return x
}

// request returns the requests counter of a method and status class, made the first
// time.
func (x *series) request(method, class int) prom.Counter {
	p := &x.requests[method][class]
	if c := p.Load(); c != nil {
		return *c
	}
	m := x.svc.m
	var c prom.Counter
	if m.opts.Label == nil {
		c = m.requests.WithLabelValues(x.svc.name, methodName(method), className(class))
	} else {
		c = m.requests.WithLabelValues(x.svc.name, methodName(method), className(class), x.label)
	}
	p.CompareAndSwap(nil, &c) // the same child either way
	return c
}

// counter returns the counter at k in cm, made by mk the first time, or at other once
// cm holds maxTypes counters.
func counter[K comparable](m *Metrics, cm *cowMap[K, prom.Counter], k, other K, mk func(K) prom.Counter) prom.Counter {
	if c, ok := cm.get(k); ok {
		return c
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := cm.get(k); ok {
		return c
	}
	if cm.len() >= maxTypes {
		k = other
		if c, ok := cm.get(k); ok {
			return c
		}
	}
	c := mk(k)
	cm.put(k, c)
	return c
}

// cacheCounter returns the cache_requests_total counter of a cache status.
func (s *service) cacheCounter(status string) prom.Counter {
	return counter(s.m, &s.cache, status, "other", func(k string) prom.Counter {
		return s.m.cacheReqs.WithLabelValues(s.name, k)
	})
}

// errCounter returns the request_errors_total counter of source and type.
func (s *service) errCounter(source, typ string) prom.Counter {
	return counter(s.m, &s.errs, [2]string{source, typ}, [2]string{"other", "other"}, func(k [2]string) prom.Counter {
		return s.m.errs.WithLabelValues(s.name, k[0], k[1])
	})
}

// attemptErrCounter returns the upstream_attempt_errors_total counter of typ.
func (s *service) attemptErrCounter(typ string) prom.Counter {
	return counter(s.m, &s.attemptErrs, typ, "other", func(k string) prom.Counter {
		return s.m.attemptErrs.WithLabelValues(s.name, k)
	})
}

// tlsCounter returns the tls_handshakes_total counter of a version and group.
func (s *service) tlsCounter(version, group string) prom.Counter {
	return counter(s.m, &s.tlsHandshakes, [2]string{version, group}, [2]string{"other", "other"}, func(k [2]string) prom.Counter {
		return s.m.tlsHandshakes.WithLabelValues(s.name, k[0], k[1])
	})
}

// reqService returns the service of r: the one RequestStart put in r.Data.
func (m *Metrics) reqService(r *observe.Request) *service {
	if s, ok := r.Data.(*service); ok && s.m == m {
		return s
	}
	return m.service(r.Service)
}

// ObservedEvents tells the service the metrics use RequestStart, AttemptEnd and
// RequestEnd: a request's other events cost nothing.
func (m *Metrics) ObservedEvents() observe.Events {
	return observe.EventRequestStart | observe.EventAttemptEnd | observe.EventRequestEnd
}

// RequestStart counts r in flight (and as an open HTTP/2 stream over HTTP/2).
func (m *Metrics) RequestStart(r *observe.Request) {
	s := m.service(r.Service)
	r.Data = s
	s.inFlight.Inc()
	if r.Proto == "HTTP/2" {
		s.h2Streams.Inc()
	}
}

// AttemptStart does nothing: attempts are counted when they end.
func (m *Metrics) AttemptStart(*observe.Request, *observe.Attempt) {}

// UpstreamRequest does nothing.
func (m *Metrics) UpstreamRequest(*observe.Request, *observe.Attempt, observe.Header) {}

// AttemptEnd counts the attempt, by whether its connection was reused, and its error.
func (m *Metrics) AttemptEnd(r *observe.Request, a *observe.Attempt) {
	s := m.reqService(r)
	if a.Reused {
		s.attempts[1].Inc()
	} else {
		s.attempts[0].Inc()
	}
	if a.Err != nil || a.ErrType != "" {
		s.attemptErrCounter(orUnknown(a.ErrType)).Inc()
	}
}

// RequestEnd counts r by method and status class, observes its durations, and counts
// its retries, error and bytes.
func (m *Metrics) RequestEnd(r *observe.Request) {
	s := m.reqService(r)
	s.inFlight.Dec()
	if r.Proto == "HTTP/2" {
		s.h2Streams.Dec()
	}
	x := s.base
	if x == nil {
		x = s.series(m.opts.Label(r))
	}
	x.request(methodIndex(r.Method), classIndex(r.Status)).Inc()
	x.duration.observe(r.Duration())
	if t := r.TTFB(); t > 0 {
		s.ttfb.observe(t)
	}
	if r.Attempts > 1 {
		s.retries.Add(float64(r.Attempts - 1))
	}
	if r.Err != nil || r.ErrType != "" {
		s.errCounter(orUnknown(r.ErrSource), orUnknown(r.ErrType)).Inc()
	}
	if r.BytesSent > 0 {
		s.sent.Add(float64(r.BytesSent))
	}
	if r.BytesReceived > 0 {
		s.received.Add(float64(r.BytesReceived))
	}
	if r.Cache != "" {
		s.cacheCounter(r.Cache).Inc()
	}
}

// orUnknown returns s, or "unknown" if s is empty.
func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// ConnOpen counts c open.
func (m *Metrics) ConnOpen(c *observe.Conn) {
	s := m.service(c.Service)
	c.Data = s
	s.connsOpen.Inc()
}

// connService returns the service of c: the one ConnOpen put in c.Data.
func (m *Metrics) connService(c *observe.Conn) *service {
	if s, ok := c.Data.(*service); ok && s.m == m {
		return s
	}
	return m.service(c.Service)
}

// ConnTLS counts c's TLS handshake, by version and group, and observes its duration;
// or counts its failure.
func (m *Metrics) ConnTLS(c *observe.Conn) {
	s := m.connService(c)
	if c.Err != nil || c.TLS == nil {
		s.tlsFailures.Inc()
		return
	}
	s.tlsCounter(tlsVersion(c.TLS.Version), tlsGroup(c.TLS.CurveID)).Inc()
	if c.Handshake > 0 {
		s.tlsDuration.observe(c.Handshake)
	}
}

// ConnClose counts c closed, and the bytes a TCP service's connection relayed.
func (m *Metrics) ConnClose(c *observe.Conn) {
	s := m.connService(c)
	s.connsOpen.Dec()
	if c.BytesSent > 0 {
		s.sent.Add(float64(c.BytesSent))
	}
	if c.BytesReceived > 0 {
		s.received.Add(float64(c.BytesReceived))
	}
}

// UpstreamConn counts a new upstream connection and observes how long it took to
// connect and to finish its TLS handshake; or counts its failure.
func (m *Metrics) UpstreamConn(c *observe.Conn) {
	s := m.service(c.Service)
	s.upConns.Inc()
	if !c.Connected.IsZero() && !c.Start.IsZero() {
		s.upConnect.observe(c.Connected.Sub(c.Start))
	}
	if c.Handshake > 0 && c.Err == nil {
		s.upTLS.observe(c.Handshake)
	}
	if c.Err != nil {
		s.upConnErrs.Inc()
	}
}

// HealthChange counts a health change of a balancer's backend, by its cause.
func (m *Metrics) HealthChange(h observe.Health) {
	m.healthChanges.WithLabelValues(h.Balancer, h.Backend, orUnknown(h.Cause)).Inc()
}

var (
	_ observe.Observer       = (*Metrics)(nil)
	_ observe.ConnObserver   = (*Metrics)(nil)
	_ observe.HealthObserver = (*Metrics)(nil)
)
