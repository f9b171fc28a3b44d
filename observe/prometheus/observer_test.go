package prometheus_test

import (
	"crypto/tls"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/observe"
	"github.com/gotthard-proxy/gotthard/observe/prometheus"
	prom "github.com/prometheus/client_golang/prometheus"
)

// cycle is one request as the service reports it: its attempts (each with its
// status, reuse and error type) and its end.
type cycle struct {
	service, proto, method string
	attempts               []observe.Attempt
	status                 int
	errType, errSource     string
	sent, received         int64
	took, ttfb             time.Duration
	cache                  string
}

// errFailed is the error of the failed attempts and requests of a cycle.
var errFailed = errors.New("failed")

// run feeds c's events to o, as a service would, reusing r and a.
func (c cycle) run(o observe.Observer, r *observe.Request, a *observe.Attempt) {
	start := time.Unix(1800000000, 0)
	*r = observe.Request{Service: c.service, Proto: c.proto, Method: c.method, Scheme: "http",
		Target: "/x", Host: "h", Start: start}
	o.RequestStart(r)
	for i, x := range c.attempts {
		*a = observe.Attempt{N: i, Peer: "127.0.0.1:1", Start: start}
		o.AttemptStart(r, a)
		if x.ErrType != "ConnectRefused" {
			a.Proto, a.Reused, a.Connected = "HTTP/1.1", x.Reused, start
			o.UpstreamRequest(r, a, nil)
		}
		a.End, a.Status, a.ErrType = start, x.Status, x.ErrType
		if x.ErrType != "" {
			a.Err = errFailed
		}
		o.AttemptEnd(r, a)
		r.Reused, r.UpstreamStatus = a.Reused, a.Status
	}
	r.End, r.Status, r.Attempts = start.Add(c.took), c.status, len(c.attempts)
	if c.ttfb > 0 {
		r.FirstByte = start.Add(c.ttfb)
	}
	r.ErrType, r.ErrSource = c.errType, c.errSource
	if c.errType != "" {
		r.Err = errFailed
	}
	r.BytesSent, r.BytesReceived = c.sent, c.received
	r.Cache = c.cache
	o.RequestEnd(r)
}

// A known mix of requests, made by hand, is counted exactly.
func TestRequests(t *testing.T) {
	m, err := prometheus.New(prometheus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ok := observe.Attempt{Status: 200}
	mix := []cycle{
		{service: "api", proto: "HTTP/1.1", method: "GET", attempts: []observe.Attempt{ok}, status: 200, sent: 100, took: 2 * time.Millisecond, ttfb: time.Millisecond, cache: "miss"},
		{service: "api", proto: "HTTP/1.1", method: "GET", attempts: []observe.Attempt{{Status: 200, Reused: true}}, status: 200, sent: 50, took: 3 * time.Millisecond, ttfb: time.Millisecond, cache: "miss"},
		{service: "api", proto: "HTTP/2", method: "POST", attempts: []observe.Attempt{{Status: 404, Reused: true}}, status: 404, received: 7, took: time.Second, ttfb: time.Millisecond},
		{service: "api", proto: "HTTP/2", method: "BREW", attempts: []observe.Attempt{{ErrType: "ConnectRefused"}, ok}, status: 200, took: time.Millisecond, ttfb: time.Millisecond},
		{service: "api", proto: "HTTP/1.1", method: "DELETE", attempts: []observe.Attempt{{ErrType: "ConnectRefused"}, {ErrType: "ConnectRefused"}}, status: 502,
			errType: "ConnectRefused", errSource: "upstream", took: time.Millisecond},
		{service: "api", proto: "HTTP/1.1", method: "GET", status: 0, errType: "ReadError", errSource: "downstream", took: time.Millisecond},
		{service: "web", proto: "HTTP/1.0", method: "HEAD", status: 403, took: time.Millisecond, cache: "hit"},
	}
	var r observe.Request
	var a observe.Attempt
	for _, c := range mix {
		c.run(m, &r, &a)
	}
	f := scrape(t, m)
	f.expect(map[string]float64{
		"gotthard_requests_total{service=api,method=GET,status_class=2xx}":               2,
		"gotthard_requests_total{service=api,method=POST,status_class=4xx}":              1,
		"gotthard_requests_total{service=api,method=other,status_class=2xx}":             1,
		"gotthard_requests_total{service=api,method=DELETE,status_class=5xx}":            1,
		"gotthard_requests_total{service=api,method=GET,status_class=0}":                 1,
		"gotthard_requests_total{service=web,method=HEAD,status_class=4xx}":              1,
		"gotthard_request_duration_seconds{service=api}":                                 6,
		"gotthard_request_duration_seconds{service=web}":                                 1,
		"gotthard_upstream_ttfb_seconds{service=api}":                                    4,
		"gotthard_upstream_ttfb_seconds{service=web}":                                    0,
		"gotthard_requests_in_flight{service=api}":                                       0,
		"gotthard_http2_streams_open{service=api}":                                       0,
		"gotthard_upstream_attempts_total{service=api,connection=new}":                   5,
		"gotthard_upstream_attempts_total{service=api,connection=reused}":                2,
		"gotthard_upstream_retries_total{service=api}":                                   2,
		"gotthard_upstream_attempt_errors_total{service=api,type=ConnectRefused}":        3,
		"gotthard_request_errors_total{service=api,source=upstream,type=ConnectRefused}": 1,
		"gotthard_request_errors_total{service=api,source=downstream,type=ReadError}":    1,
		"gotthard_sent_bytes_total{service=api}":                                         150,
		"gotthard_received_bytes_total{service=api}":                                     7,
		"gotthard_cache_requests_total{service=api,status=miss}":                         2,
		"gotthard_cache_requests_total{service=web,status=hit}":                          1,
	})
	if n := f.count("gotthard_requests_total"); n != 6 {
		t.Errorf("%d request series, want the 6 seen:\n%s", n, f.series("gotthard_requests_total"))
	}
	// The duration histogram's buckets: 1ms requests fall in le=0.001, the 1s one
	// past le=0.5.
	h := f.find("gotthard_request_duration_seconds", "service=api").GetHistogram()
	for _, b := range h.GetBucket() {
		want := map[float64]uint64{.0005: 0, .001: 3, .0025: 4, .005: 5, .5: 5, 1: 6, 10: 6}
		if w, ok := want[b.GetUpperBound()]; ok && b.GetCumulativeCount() != w {
			t.Errorf("bucket le=%v holds %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), w)
		}
	}
	if got, want := h.GetSampleSum(), 0.002+0.003+1+0.001*3; got < want-1e-9 || got > want+1e-9 {
		t.Errorf("duration sum %v, want %v", got, want)
	}
}

// In-flight gauges count requests between RequestStart and RequestEnd, HTTP/2 ones as
// open streams too.
func TestInFlight(t *testing.T) {
	m, err := prometheus.New(prometheus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rs := []*observe.Request{
		{Service: "s", Proto: "HTTP/2", Method: "GET"},
		{Service: "s", Proto: "HTTP/2", Method: "GET"},
		{Service: "s", Proto: "HTTP/1.1", Method: "GET"},
	}
	for _, r := range rs {
		m.RequestStart(r)
	}
	scrape(t, m).expect(map[string]float64{
		"gotthard_requests_in_flight{service=s}": 3,
		"gotthard_http2_streams_open{service=s}": 2,
	})
	m.RequestEnd(rs[0])
	m.RequestEnd(rs[2])
	scrape(t, m).expect(map[string]float64{
		"gotthard_requests_in_flight{service=s}":                       1,
		"gotthard_http2_streams_open{service=s}":                       1,
		"gotthard_requests_total{service=s,method=GET,status_class=0}": 2,
	})
}

// Client connections, their TLS handshakes and new upstream connections.
func TestConns(t *testing.T) {
	m, err := prometheus.New(prometheus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	open := func(state *tls.ConnectionState, err error) *observe.Conn {
		c := &observe.Conn{Service: "edge", Remote: "127.0.0.1:5555", Start: start}
		m.ConnOpen(c)
		if state != nil || err != nil {
			c.TLS, c.Err, c.Handshake = state, err, 3*time.Millisecond
			m.ConnTLS(c)
		}
		return c
	}
	c13 := open(&tls.ConnectionState{Version: tls.VersionTLS13, CurveID: tls.X25519MLKEM768}, nil)
	open(&tls.ConnectionState{Version: tls.VersionTLS13, CurveID: tls.X25519MLKEM768}, nil)
	c12 := open(&tls.ConnectionState{Version: tls.VersionTLS12, CurveID: tls.X25519}, nil)
	open(&tls.ConnectionState{Version: tls.VersionTLS12}, nil)                  // RSA key exchange
	open(&tls.ConnectionState{Version: tls.VersionTLS13, CurveID: 0x1234}, nil) // a group crypto/tls does not name
	bad := open(nil, errors.New("tls: bad certificate"))
	plain := open(nil, nil)
	for _, c := range []*observe.Conn{c13, c12, bad, plain} {
		m.ConnClose(c)
	}
	m.UpstreamConn(&observe.Conn{Service: "edge", Upstream: true, Start: start, Connected: start.Add(time.Millisecond)})
	m.UpstreamConn(&observe.Conn{Service: "edge", Upstream: true, Start: start, Connected: start.Add(time.Millisecond),
		Handshake: 2 * time.Millisecond})
	m.UpstreamConn(&observe.Conn{Service: "edge", Upstream: true, Start: start, Err: errors.New("refused")})
	m.UpstreamConn(&observe.Conn{Service: "edge", Upstream: true, Start: start, Connected: start.Add(time.Millisecond),
		Err: errors.New("tls: handshake failure")})

	f := scrape(t, m)
	f.expect(map[string]float64{
		"gotthard_connections_open{service=edge}":                                      3,
		"gotthard_tls_handshakes_total{service=edge,version=1.3,group=X25519MLKEM768}": 2,
		"gotthard_tls_handshakes_total{service=edge,version=1.2,group=X25519}":         1,
		"gotthard_tls_handshakes_total{service=edge,version=1.2,group=none}":           1,
		"gotthard_tls_handshakes_total{service=edge,version=1.3,group=other}":          1,
		"gotthard_tls_handshake_failures_total{service=edge}":                          1,
		"gotthard_tls_handshake_duration_seconds{service=edge}":                        5,
		"gotthard_upstream_connections_total{service=edge}":                            4,
		"gotthard_upstream_connection_errors_total{service=edge}":                      2,
		"gotthard_upstream_connect_duration_seconds{service=edge}":                     3,
		"gotthard_upstream_tls_handshake_duration_seconds{service=edge}":               1,
	})
	if n := f.count("gotthard_tls_handshakes_total"); n != 4 {
		t.Errorf("%d handshake series, want 4:\n%s", n, f.series("gotthard_tls_handshakes_total"))
	}
}

// Options.Label adds one label to the request counter and duration histogram; past
// MaxLabelValues values, the others are "other".
func TestLabel(t *testing.T) {
	m, err := prometheus.New(prometheus.Options{
		Label: func(r *observe.Request) string {
			if strings.HasPrefix(r.Target, "/api/") {
				return r.Target[1:4]
			}
			return r.Target[1:]
		},
		LabelName:      "route",
		MaxLabelValues: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"/api/a", "/api/b", "/static", "/static", "/x", "/y", "/api/c"} {
		r := &observe.Request{Service: "s", Method: "GET", Target: target}
		m.RequestStart(r)
		r.Status = 200
		m.RequestEnd(r)
	}
	f := scrape(t, m)
	f.expect(map[string]float64{
		"gotthard_requests_total{service=s,method=GET,status_class=2xx,route=api}":    3,
		"gotthard_requests_total{service=s,method=GET,status_class=2xx,route=static}": 2,
		"gotthard_requests_total{service=s,method=GET,status_class=2xx,route=other}":  2,
		"gotthard_request_duration_seconds{service=s,route=api}":                      3,
		"gotthard_request_duration_seconds{service=s,route=other}":                    2,
	})
	if n := f.count("gotthard_requests_total"); n != 3 {
		t.Errorf("%d series, want 3:\n%s", n, f.series("gotthard_requests_total"))
	}
}

// Concurrent requests of several services are all counted.
func TestConcurrent(t *testing.T) {
	m, err := prometheus.New(prometheus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var r observe.Request
			var a observe.Attempt
			c := cycle{service: []string{"a", "b"}[w%2], proto: "HTTP/2", method: "PUT",
				attempts: []observe.Attempt{{Status: 201, Reused: true}}, status: 201, sent: 1, took: time.Millisecond}
			for range each {
				c.run(m, &r, &a)
			}
		})
	}
	wg.Wait()
	f := scrape(t, m)
	f.expect(map[string]float64{
		"gotthard_requests_total{service=a,method=PUT,status_class=2xx}": workers / 2 * each,
		"gotthard_requests_total{service=b,method=PUT,status_class=2xx}": workers / 2 * each,
		"gotthard_upstream_attempts_total{service=a,connection=reused}":  workers / 2 * each,
		"gotthard_sent_bytes_total{service=b}":                           workers / 2 * each,
		"gotthard_http2_streams_open{service=a}":                         0,
	})
}

// The event methods allocate nothing once a service's series exist.
func TestNoAllocs(t *testing.T) {
	m, err := prometheus.New(prometheus.Options{
		Label: func(r *observe.Request) string { return r.Scheme }, LabelName: "scheme"})
	if err != nil {
		t.Fatal(err)
	}
	var r observe.Request
	var a observe.Attempt
	c := cycle{service: "api", proto: "HTTP/2", method: "GET", attempts: []observe.Attempt{{ErrType: "ReadTimeout"}, {Status: 200}},
		status: 200, errType: "ReadTimeout", errSource: "upstream", sent: 10, took: time.Millisecond, ttfb: time.Millisecond}
	c.run(m, &r, &a)
	conn := &observe.Conn{Service: "api", TLS: &tls.ConnectionState{Version: tls.VersionTLS13, CurveID: tls.X25519MLKEM768},
		Handshake: time.Millisecond}
	up := &observe.Conn{Service: "api", Upstream: true, Start: time.Now(), Connected: time.Now(), Handshake: time.Millisecond}
	connCycle := func() {
		conn.Data = nil
		m.ConnOpen(conn)
		m.ConnTLS(conn)
		m.ConnClose(conn)
		m.UpstreamConn(up)
	}
	connCycle()
	if n := testing.AllocsPerRun(100, func() { c.run(m, &r, &a) }); n != 0 {
		t.Errorf("a request cycle allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, connCycle); n != 0 {
		t.Errorf("a connection cycle allocates %v times", n)
	}
}

// New checks its options and names the one at fault.
func TestOptions(t *testing.T) {
	label := func(*observe.Request) string { return "" }
	tests := []struct {
		name string
		o    prometheus.Options
		want string
	}{
		{"namespace", prometheus.Options{Namespace: "my-proxy"}, `Options.Namespace "my-proxy" is not a valid metric name`},
		{"namespace digit", prometheus.Options{Namespace: "1x"}, `Options.Namespace "1x"`},
		{"buckets empty", prometheus.Options{Buckets: []float64{}}, "Options.Buckets is empty"},
		{"buckets order", prometheus.Options{Buckets: []float64{1, 0.5}}, "Options.Buckets is not strictly increasing at [1]"},
		{"label without name", prometheus.Options{Label: label}, "Options.Label is set without Options.LabelName"},
		{"name without label", prometheus.Options{LabelName: "route"}, `Options.LabelName "route" is set without Options.Label`},
		{"label name", prometheus.Options{Label: label, LabelName: "a-b"}, `Options.LabelName "a-b" is not a valid label name`},
		{"label name reserved", prometheus.Options{Label: label, LabelName: "__x"}, `Options.LabelName "__x" is reserved`},
		{"label name taken", prometheus.Options{Label: label, LabelName: "method"}, `Options.LabelName "method" is a label`},
		{"max label values", prometheus.Options{Label: label, LabelName: "r", MaxLabelValues: -1}, "Options.MaxLabelValues is negative"},
		{"gatherer", prometheus.Options{Registerer: registererOnly{prom.NewRegistry()}}, "Options.Gatherer is nil"},
		{"gatherer alone", prometheus.Options{Gatherer: prom.NewRegistry()}, "Options.Gatherer is set without Options.Registerer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := prometheus.New(tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, prometheus.ErrOptions) {
				t.Fatalf("New: %v, want an ErrOptions naming %q", err, tt.want)
			}
		})
	}
}

// registererOnly hides the Gatherer of a registry.
type registererOnly struct{ prom.Registerer }

// A Registerer of the user's holds the metrics; a second Metrics with the same
// namespace is refused by it, one with another namespace is not; the global registry
// is never touched.
func TestRegisterer(t *testing.T) {
	reg := prom.NewRegistry()
	m, err := prometheus.New(prometheus.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	m.RequestStart(&observe.Request{Service: "s"})
	if _, err := prometheus.New(prometheus.Options{Registerer: reg}); !errors.As(err, new(prom.AlreadyRegisteredError)) {
		t.Fatalf("a second Metrics on the registry: %v", err)
	}
	m2, err := prometheus.New(prometheus.Options{Registerer: reg, Namespace: "edge"})
	if err != nil {
		t.Fatal(err)
	}
	m2.RequestStart(&observe.Request{Service: "s"})
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range fams {
		names[f.GetName()] = true
	}
	if !names["gotthard_requests_in_flight"] || !names["edge_requests_in_flight"] || !names["edge_build_info"] {
		t.Fatalf("the registry holds %v", names)
	}
	// Only the user's Gatherer is served when given.
	g := prom.NewRegistry()
	m3, err := prometheus.New(prometheus.Options{Registerer: registererOnly{g}, Gatherer: g, Namespace: "third"})
	if err != nil {
		t.Fatal(err)
	}
	if f := scrape(t, m3); f.count("third_build_info") != 1 || f.count("gotthard_build_info") != 0 {
		t.Fatalf("served %v", f.fams)
	}
	global, err := prom.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range global {
		if strings.HasPrefix(f.GetName(), "gotthard_") || strings.HasPrefix(f.GetName(), "edge_") {
			t.Fatalf("the global registry has %s", f.GetName())
		}
	}
}

// The build info and, when asked, the runtime and process metrics.
func TestBuildInfoAndRuntime(t *testing.T) {
	m, err := prometheus.New(prometheus.Options{RuntimeMetrics: true})
	if err != nil {
		t.Fatal(err)
	}
	f := scrape(t, m)
	bi := f.fams["gotthard_build_info"]
	if bi == nil || len(bi.GetMetric()) != 1 || bi.GetMetric()[0].GetGauge().GetValue() != 1 {
		t.Fatalf("build info: %v", bi)
	}
	labels := map[string]string{}
	for _, l := range bi.GetMetric()[0].GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	if labels["version"] == "" || !strings.HasPrefix(labels["goversion"], "go") {
		t.Fatalf("build info labels %v", labels)
	}
	if f.fams["go_goroutines"] == nil || f.fams["process_cpu_seconds_total"] == nil {
		t.Fatal("no runtime or process metrics with RuntimeMetrics")
	}
	m, err = prometheus.New(prometheus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if f := scrape(t, m); f.fams["go_goroutines"] != nil {
		t.Fatal("runtime metrics without RuntimeMetrics")
	}
}
