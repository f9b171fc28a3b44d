// Package prometheus records what Gotthard services do as Prometheus metrics, with
// client_golang, on a private registry (never the global one) that [Metrics.Handler]
// serves.
//
// A [Metrics] is an observe.Observer, an observe.ConnObserver and an
// observe.HealthObserver: register it on the proxy services to measure (their
// ServiceOptions.Observers), give it to the balancers whose health changes to count
// (lb.Options.Observers), and add those whose backends to list with
// [Metrics.AddBalancer]:
//
//	m, err := prometheus.New(prometheus.Options{})
//	if err != nil {
//		return err
//	}
//	svc, err := proxy.NewService("gateway", gw, proxy.ServiceOptions{Observers: []observe.Observer{m}})
//	...
//	if err := m.AddBalancer(gw.lb); err != nil {
//		return err
//	}
//	http.Handle("GET /metrics", m.Handler()) // on an admin listener, not the proxy's
//
// # Metrics
//
// Names follow Prometheus conventions: the namespace (Options.Namespace, "gotthard" by
// default), base units (seconds, bytes), "_total" for counters. Every label has a small
// fixed set of values: the service's name, never a path, a host or a client (see
// Options.Label for one label of your own).
//
//	gotthard_requests_total{service,method,status_class}        counter
//	    method: GET HEAD POST PUT DELETE PATCH OPTIONS CONNECT TRACE, else "other";
//	    status_class: "1xx" to "5xx", "0" for a request that got no status
//	gotthard_request_duration_seconds{service}                 histogram, arrival to response written
//	gotthard_upstream_ttfb_seconds{service}                    histogram, arrival to the last attempt's response head
//	gotthard_upstream_connect_duration_seconds{service}        histogram, new upstream connections, TLS excluded
//	gotthard_upstream_tls_handshake_duration_seconds{service}  histogram
//	gotthard_tls_handshake_duration_seconds{service}           histogram, client connections
//	gotthard_requests_in_flight{service}                       gauge
//	gotthard_connections_open{service}                         gauge, client connections
//	gotthard_http2_streams_open{service}                       gauge, in-flight requests over HTTP/2
//	gotthard_upstream_attempts_total{service,connection}       counter, connection "reused" or "new"
//	gotthard_upstream_retries_total{service}                   counter, attempts after each request's first
//	gotthard_request_errors_total{service,source,type}         counter, source and type as Request.ErrSource and ErrType give them
//	gotthard_upstream_attempt_errors_total{service,type}       counter, failed attempts, retried or not
//	gotthard_sent_bytes_total{service}                         counter, body bytes to clients
//	gotthard_received_bytes_total{service}                     counter, body bytes from clients
//	gotthard_upstream_connections_total{service}               counter, new upstream connections
//	gotthard_upstream_connection_errors_total{service}         counter, of those, the failed ones
//	gotthard_tls_handshakes_total{service,version,group}       counter, client handshakes;
//	    version "1.2", "1.3"; group as crypto/tls names it (X25519MLKEM768, X25519, ...)
//	gotthard_tls_handshake_failures_total{service}             counter
//	gotthard_backend_up{balancer,backend}                      gauge 1/0, healthy by active checks
//	gotthard_backend_available{balancer,backend}               gauge 1/0, the balancer may choose it
//	gotthard_backend_ejected{balancer,backend}                 gauge 1/0, ejected by outlier detection
//	gotthard_backend_in_flight_requests{balancer,backend}      gauge
//	gotthard_backend_latency_ewma_seconds{balancer,backend}    gauge
//	gotthard_backend_weight{balancer,backend}                  gauge
//	gotthard_backend_health_changes_total{balancer,backend,cause}  counter
//	gotthard_build_info{version,goversion}                     gauge, 1
//
// The backend_* gauges are read from the balancers at each scrape
// (observe.Balancer.AppendBackends); nothing is kept between scrapes.
// With Options.RuntimeMetrics the Go runtime's go_* and the process's process_*
// metrics are on the registry too.
//
// # Cost
//
// The series of a service are made the first time its name is seen (those of a
// method, a status class or an error type the first time they are), and kept in maps
// read through atomic pointers and copied on write: once made, every event method
// (RequestStart to RequestEnd, ConnOpen to ConnClose, UpstreamConn) takes no lock and
// allocates nothing; it updates a few atomic counters (BenchmarkObserver, one
// request's events: about 0.2µs and 0 allocs). The last service seen is kept aside,
// so a program with one service does not even look its name up. The duration
// histograms are the package's own, counting whole nanoseconds (a bucket found by
// integer comparisons, two atomic additions: about half the instructions of client_golang's
// Observe); a scrape hands them to client_golang as constant histograms, so their
// exposition is client_golang's. HealthChange, rare, looks its series up by name. A
// scrape costs what client_golang's encoding costs, plus one AppendBackends per
// balancer.
//
// # When not to use it
//
// For OpenTelemetry metrics use an OTel bridge; for per-request records (paths, hosts,
// clients) use an access log: labels that take such values would make a time series
// per value.
package prometheus
