// Package admin is a Gotthard program's admin service: an HTTP server on a listener of
// its own (127.0.0.1:6199 by default) with a health check, the metrics handler of the
// program's choice, a JSON status document and a live status page, fed by [Stats], an
// observer of the proxy services.
//
//	stats := admin.NewStats()
//	svc, _ := proxy.NewService("gateway", app, proxy.ServiceOptions{
//		Observers: []observe.Observer{stats},
//	})
//	adm, err := admin.New(admin.Options{
//		Stats:     stats,
//		Balancers: []observe.Balancer{balancer}, // an *lb.LoadBalancer
//		Listeners: func() map[string][]string { ... }, // from server.Server.Addrs
//	})
//	srv.Add(svc)
//	srv.Add(adm) // a server.ListeningService by its method set
//
// It imports only the standard library and observe. It is not a configuration API:
// nothing it serves changes what the program does.
//
// # Routes
//
//   - GET /healthz: 200 "ok", never behind the token (for a load balancer's checks).
//   - /metrics: Options.Metrics (a Prometheus handler from observe/prometheus, say);
//     404 without one.
//   - GET /status.json: the document below.
//   - GET /: the status page, with /status.js and /status.css. It is plain HTML, a
//     script and a style sheet, all embedded, nothing external, served with a
//     Content-Security-Policy that allows only the service's own script, style and
//     data. The script reads /status.json every second and shows the services, their
//     listeners, request and error rates, latency percentiles, connections and pool
//     reuse; the backends of each balancer with their health, in-flight requests and
//     EWMA latency, and their latest health changes; the certificates and their
//     expiry; the uptime and the build.
//
// With Options.Token every route but /healthz and the page's three static files needs
// "Authorization: Bearer TOKEN" and answers 401 with WWW-Authenticate otherwise. The
// static files carry no data, and a browser that opens a page cannot send the field:
// open the page as http://127.0.0.1:6199/#token=TOKEN and its script sends the token
// with each request for /status.json. The fragment never leaves the browser; the script
// keeps the token for the tab (sessionStorage) and takes it out of the address bar.
// Listening on an address that is not loopback without a token is an error
// ([ErrNotLoopback]).
//
// # The /status.json schema
//
// The document is stable: fields may be added, none is renamed, removed or changes
// meaning. Times are RFC 3339 in UTC; rates are per second; ratios are fractions in
// [0, 1]; latencies are milliseconds. Numbers are rounded to 3 decimals. Lists are
// empty, never null.
//
//	{
//	  "generated_at": "2026-12-06T22:10:05.123Z",  // when the document was made
//	  "started_at": "2026-12-06T20:00:00Z",        // when counting began (NewStats)
//	  "uptime_seconds": 7805.123,
//	  "version": {
//	    "program": "example.com/gw/cmd/gw",        // the main package's path
//	    "version": "v1.2.3",                       // Options.Version, or the main module's
//	    "gotthard": "v0.4.0",                      // the gotthard module's version
//	    "go_version": "go1.26.8",
//	    "vcs_revision": "4f0c…", "vcs_time": "2026-12-01T09:00:00Z", "vcs_modified": false,
//	    "os": "linux", "arch": "amd64"
//	  },
//	  "services": [{                               // sorted by name
//	    "name": "gateway",
//	    "listeners": ["127.0.0.1:6188"],           // from Options.Listeners
//	    "requests_total": 1042,                    // requests ended (counters: since started_at)
//	    "by_class": {"1xx": 0, "2xx": 1000, "3xx": 0, "4xx": 30, "5xx": 12, "other": 0},
//	    "errors_total": 12,                        // 5xx, or failed without a status
//	    "in_flight": 3,                            // requests started, not ended
//	    "connections": 8,                          // client connections open
//	    "connections_total": 90,
//	    "tls_failures_total": 0,                   // failed client TLS handshakes
//	    "upstream_connections_total": 20,          // new upstream connections made
//	    "upstream_connect_errors_total": 1,        // and those that failed
//	    "attempts_reused": 1015, "attempts_new": 20,
//	    "reuse_ratio": 0.981,                      // reused / (reused + new)
//	    "retries_total": 2,                        // attempts after a request's first
//	    "bytes_sent": 123456, "bytes_received": 789,  // body bytes to and from clients
//	    "rps_10s": 17.3, "rps_1m": 16.9,           // requests ended per second
//	    "error_rate_10s": 0.01, "error_rate_1m": 0.012,  // errors / requests in the window
//	    "p50_ms": 1.8, "p90_ms": 4.2, "p99_ms": 19.5,    // request latency, last 60 s
//	    "latency_samples": 1014
//	  }],
//	  "balancers": [{                              // Options.Balancers, in order
//	    "name": "origins",
//	    "backends": [{
//	      "addr": "10.0.0.7:8080", "weight": 1,
//	      "healthy": true,                         // false: active checks marked it down
//	      "ejected": false,                        // outlier detection keeps it out
//	      "available": true,                       // the balancer may choose it
//	      "in_flight": 1,
//	      "ewma_ms": 2.4                           // the balancer's latency score (lb's
//	    }]                                         // PeakEWMA: a slow answer raises it at
//	  }],                                          // once, and it decays); 0 if none
//	  "certificates": [{                           // Options.Certificates, in order
//	    "source": "gateway-tls",
//	    "subject_cn": "example.com", "sans": ["example.com", "www.example.com"],
//	    "issuer": "R11", "serial": "3a4f…",
//	    "not_before": "2026-11-01T00:00:00Z", "not_after": "2027-01-30T00:00:00Z",
//	    "days_left": 54.1,                         // negative once expired
//	    "error": "…"                               // only if the certificate did not parse
//	  }],
//	  "health_events": [{                          // the latest 32 changes, newest first,
//	    "time": "2026-12-06T22:09:58.5Z",          // of the balancers given the Stats as an
//	    "balancer": "origins",                     // observer (lb.Options.Observers)
//	    "backend": "10.0.0.8:8080",
//	    "cause": "active-check",                   // or "ejection", "ejection-end"
//	    "healthy": false, "available": false,
//	    "error": "dial tcp 10.0.0.8:8080: connection refused"  // a failed check's, if any
//	  }]
//	}
//
// A service appears once Stats has seen a request or connection of it, or once
// Options.Listeners names it. The rates cover the last 10 and 60 whole seconds (fewer
// in the first minute); the error rates are errors among the requests that ended in
// the window. The latency is each request's time from its head to the end of its
// response, WebSocket and other tunnels excepted, from a histogram with 8 buckets per
// power of two (a percentile is within 12.5% of the truth) over the last 60 seconds. A
// client that left (status 499) is not an error.
//
// # Cost
//
// [Stats] costs a request a few atomic adds on counters of its service and no
// allocation (BenchmarkStatsRequest); it takes a lock only when a service is seen for
// the first time and, once per second and service, to clear a slot of its ring. Each
// service holds about 105 KiB of counters. A /status.json request sums 61 slots per
// service, a few microseconds.
package admin
