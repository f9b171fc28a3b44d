package prometheus

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/gotthard-proxy/gotthard/observe"
	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics records the events of the services, connections and balancers it is given
// to as Prometheus metrics. It is an [observe.Observer], an [observe.ConnObserver] and
// an [observe.HealthObserver]. It is safe for concurrent use; its event methods
// allocate nothing once the series they touch exist (see the package doc).
type Metrics struct {
	// Immutable after New.
	opts     Options
	gatherer prom.Gatherer
	handler  http.Handler

	requests      *prom.CounterVec // service, method, status_class [, label]
	duration      *durationVec     // service [, label]
	ttfb          *durationVec     // service
	upConnect     *durationVec     // service
	upTLS         *durationVec     // service
	tlsDuration   *durationVec     // service
	inFlight      *prom.GaugeVec   // service
	connsOpen     *prom.GaugeVec   // service
	h2Streams     *prom.GaugeVec   // service
	attempts      *prom.CounterVec // service, connection
	retries       *prom.CounterVec // service
	errs          *prom.CounterVec // service, source, type
	cacheReqs     *prom.CounterVec // service, status
	attemptErrs   *prom.CounterVec // service, type
	sent          *prom.CounterVec // service
	received      *prom.CounterVec // service
	tlsHandshakes *prom.CounterVec // service, version, group
	tlsFailures   *prom.CounterVec // service
	upConns       *prom.CounterVec // service
	upConnErrs    *prom.CounterVec // service
	healthChanges *prom.CounterVec // balancer, backend, cause
	balancers     *balancerCollector

	// mu serializes the creation of series; the event methods read what it guards
	// through atomic pointers, without it.
	mu       sync.Mutex
	services cowMap[string, *service]
	// last is the service looked up last: most programs have one service, or a few
	// with requests in runs, and a hit costs a string comparison (of the same string,
	// the service's name, most often) instead of a map lookup.
	last atomic.Pointer[service]
}

// New returns Metrics registered on o.Registerer (or on a private registry), or an
// error that names the option at fault, or that wraps the registry's refusal (two
// Metrics with the same Namespace on one Registerer collide).
func New(o Options) (*Metrics, error) {
	o, err := o.validate()
	if err != nil {
		return nil, err
	}
	m := &Metrics{opts: o}
	reg := o.Registerer
	m.gatherer = o.Gatherer
	if reg == nil {
		if m.gatherer != nil {
			return nil, fmt.Errorf("%w: Options.Gatherer is set without Options.Registerer", ErrOptions)
		}
		r := prom.NewRegistry()
		reg, m.gatherer = r, r
	}
	if m.gatherer == nil {
		g, ok := reg.(prom.Gatherer)
		if !ok {
			return nil, fmt.Errorf("%w: Options.Gatherer is nil and Options.Registerer (%T) is not a prometheus.Gatherer", ErrOptions, reg)
		}
		m.gatherer = g
	}

	ns := o.Namespace
	reqLabels := []string{"service", "method", "status_class"}
	durLabels := []string{"service"}
	if o.Label != nil {
		reqLabels = append(reqLabels, o.LabelName)
		durLabels = append(durLabels, o.LabelName)
	}
	svc := []string{"service"}
	counter := func(name, help string, labels ...string) *prom.CounterVec {
		return prom.NewCounterVec(prom.CounterOpts{Namespace: ns, Name: name, Help: help}, labels)
	}
	gauge := func(name, help string) *prom.GaugeVec {
		return prom.NewGaugeVec(prom.GaugeOpts{Namespace: ns, Name: name, Help: help}, svc)
	}
	histogram := func(name, help string, labels []string) *durationVec {
		return newDurationVec(ns, name, help, o.Buckets, labels)
	}
	m.requests = counter("requests_total", "Requests by service, method and status class of the response (\"0\" for none).", reqLabels...)
	m.duration = histogram("request_duration_seconds", "Time from a request's arrival to its response written.", durLabels)
	m.ttfb = histogram("upstream_ttfb_seconds", "Time from a request's arrival to the first byte of its last attempt's response head.", svc)
	m.upConnect = histogram("upstream_connect_duration_seconds", "Time to open a new upstream connection (TCP or Unix), TLS excluded.", svc)
	m.upTLS = histogram("upstream_tls_handshake_duration_seconds", "Time of the TLS handshake of a new upstream connection.", svc)
	m.tlsDuration = histogram("tls_handshake_duration_seconds", "Time of the TLS handshake of a client connection.", svc)
	m.inFlight = gauge("requests_in_flight", "Requests being handled.")
	m.connsOpen = gauge("connections_open", "Client connections open.")
	m.h2Streams = gauge("http2_streams_open", "HTTP/2 client streams whose request is being handled.")
	m.attempts = counter("upstream_attempts_total", "Attempts to have a peer answer, by connection: \"reused\" from the pool or \"new\".", "service", "connection")
	m.retries = counter("upstream_retries_total", "Attempts after the first of each request.", "service")
	m.errs = counter("request_errors_total", "Requests that ended with an error, by its source and type.", "service", "source", "type")
	m.cacheReqs = counter("cache_requests_total", "Requests the HTTP cache took part in, by what it did: hit, miss, collapsed, revalidated, expired, stale, bypass, purge.", "service", "status")
	m.attemptErrs = counter("upstream_attempt_errors_total", "Attempts that failed, by error type (retried or not).", "service", "type")
	m.sent = counter("sent_bytes_total", "Body bytes sent to clients (through tunnels and TCP services, the bytes relayed to the client).", "service")
	m.received = counter("received_bytes_total", "Body bytes received from clients (through tunnels and TCP services, the bytes relayed from the client).", "service")
	m.tlsHandshakes = counter("tls_handshakes_total", "Client TLS handshakes completed, by TLS version and key exchange group.", "service", "version", "group")
	m.tlsFailures = counter("tls_handshake_failures_total", "Client TLS handshakes that failed.", "service")
	m.upConns = counter("upstream_connections_total", "New upstream connections made, failed ones included.", "service")
	m.upConnErrs = counter("upstream_connection_errors_total", "New upstream connections that failed to connect or to finish their TLS handshake.", "service")
	m.healthChanges = counter("backend_health_changes_total", "Health changes of balancers' backends, by cause: active-check, ejection, ejection-end.", "balancer", "backend", "cause")
	m.balancers = newBalancerCollector(ns)

	cs := []prom.Collector{m.requests, m.duration, m.ttfb, m.upConnect, m.upTLS, m.tlsDuration,
		m.inFlight, m.connsOpen, m.h2Streams, m.attempts, m.retries, m.errs, m.cacheReqs, m.attemptErrs,
		m.sent, m.received, m.tlsHandshakes, m.tlsFailures, m.upConns, m.upConnErrs,
		m.healthChanges, m.balancers, newBuildInfo(ns)}
	if o.RuntimeMetrics {
		cs = append(cs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, d := range cs[:i] {
				reg.Unregister(d)
			}
			return nil, fmt.Errorf("prometheus: registering the metrics: %w", err)
		}
	}
	m.handler = promhttp.HandlerFor(m.gatherer, promhttp.HandlerOpts{
		ErrorLog:      slogPrinter{o.Logger},
		ErrorHandling: promhttp.ContinueOnError,
	})
	return m, nil
}

// Handler returns the HTTP handler that serves the metrics in the Prometheus
// exposition formats (text, or protobuf and OpenMetrics as the scraper asks): the
// private registry's, or Options.Gatherer's.
func (m *Metrics) Handler() http.Handler { return m.handler }

// Gatherer returns what Handler serves, to combine it with other gatherers
// (prometheus.Gatherers) or to read it in tests.
func (m *Metrics) Gatherer() prom.Gatherer { return m.gatherer }

// ErrBalancer is wrapped by the errors of [Metrics.AddBalancer].
var ErrBalancer = errors.New("prometheus: balancer refused")

// AddBalancer adds b's backends to the metrics: at each scrape, b.AppendBackends lists
// them as gotthard_backend_* series labeled with b.Name() and each backend's address.
// Names must be unique and not empty. To count b's health changes too, give m to b as
// one of its observers (lb.Options.Observers).
func (m *Metrics) AddBalancer(b observe.Balancer) error {
	if b == nil {
		return fmt.Errorf("%w: nil", ErrBalancer)
	}
	return m.balancers.add(b)
}

// RemoveBalancer stops listing the backends of the balancer named name, and reports
// whether there was one.
func (m *Metrics) RemoveBalancer(name string) bool { return m.balancers.remove(name) }

// slogPrinter is promhttp's ErrorLog on a slog.Logger.
type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Println(v ...any) {
	p.l.Error("prometheus: serving metrics", "err", fmt.Sprint(v...))
}

// cowMap is a map read without a lock through an atomic pointer and copied on write
// (under a lock its writer holds): the lookups of the hot path find series made once.
type cowMap[K comparable, V any] struct {
	p atomic.Pointer[map[K]V]
}

// get returns the value at k.
func (c *cowMap[K, V]) get(k K) (V, bool) {
	if m := c.p.Load(); m != nil {
		v, ok := (*m)[k]
		return v, ok
	}
	var zero V
	return zero, false
}

// len returns the number of entries.
func (c *cowMap[K, V]) len() int {
	if m := c.p.Load(); m != nil {
		return len(*m)
	}
	return 0
}

// put stores v at k; the caller holds the writers' lock.
func (c *cowMap[K, V]) put(k K, v V) {
	old := c.p.Load()
	n := make(map[K]V, c.len()+1)
	if old != nil {
		for k, v := range *old {
			n[k] = v
		}
	}
	n[k] = v
	c.p.Store(&n)
}
