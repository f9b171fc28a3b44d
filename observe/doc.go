// Package observe is how a Gotthard service tells the world what it does: the events
// of its requests, its client connections, its upstream connections and its balancers'
// backends, handed to observers. It imports only the standard library; the vendor
// adapters live in sub-packages, so a program links only those it imports:
//
//   - observe/prometheus: metrics for Prometheus (client_golang, a private registry).
//   - observe/otel: OpenTelemetry spans, W3C trace context in and out.
//   - observe/sentry: panics and 5xx failures reported to Sentry.
//   - observe/syslog: an slog.Handler writing RFC 5424 to a syslog daemon.
//   - observe/accesslog: access logs, combined or JSON, reopened on SIGUSR1.
//   - observe/admin: request rates, latency percentiles and backend health, served by
//     an admin service as /status.json and a live status page, beside /metrics.
//
// # Events
//
// An [Observer] is registered on a proxy service (proxy.ServiceOptions.Observers). For
// each request it sees, in this order and on the request's goroutine:
//
//	RequestStart                       the head was read, before the first phase
//	  AttemptStart                     a peer was chosen, before the connection
//	    UpstreamRequest                the upstream request head is built (changeable)
//	  AttemptEnd                       the attempt ended, its response relayed or not
//	  (AttemptStart ... AttemptEnd)    once per retry
//	RequestEnd                         the response was written, before Logging
//
// A request that fails before it reaches a peer has no attempt; an attempt that fails
// to connect has no UpstreamRequest. A request head the proxy refuses (malformed: 400;
// too large: 431 or 414; too slow to come: 408) is answered, logged, and seen by
// observers as a request of its own, RequestStart then RequestEnd, with no protocol,
// method, target or header fields (the head was not read whole), the error page's
// status, and an error of type "invalid HTTP" or "read timeout" from the downstream
// side: access logs and metrics count it, as nginx's do. The phases, Logging included,
// do not run for it, as no request reached them. The events of one request never
// overlap, so an
// observer's per-request value ([Request.Data]) needs no lock; the events of different
// requests run at the same time, so an observer must be safe for concurrent use. An
// observer must not block: it runs on the request's path. A panic in an observer is a
// bug in it: it ends the request as a panic in a phase would.
//
// The [Request] and [Attempt] values are reused for the next request once RequestEnd
// returns: copy what must outlive it. Their string fields share the request's memory
// and are valid for as long (strings are immutable, so keeping one is safe, but it
// holds the memory).
//
// An observer that also implements [ConnObserver] sees client connections open, finish
// their TLS handshake and close, and new upstream connections; one that implements
// [HealthObserver] and is given to a balancer (lb.Options.Observers) sees its backends'
// health change. A [Balancer] (lb.LoadBalancer is one) lists its backends' state for a
// metrics scrape or a status page.
//
// # Cost
//
// A service without observers pays one nil check per event. With observers, the
// service fills the Request from what it records anyway; nothing is allocated by the
// service for it (the adapters' own costs are stated in their docs). An event no
// observer uses is not prepared: for all requests, by [EventFilter]; for one request,
// by [Request.Skip] (a tracer that drops a request needs only UpstreamRequest).
package observe
