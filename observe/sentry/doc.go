// Package sentry reports a proxy service's panics and failures to Sentry, through
// github.com/getsentry/sentry-go. Its [Observer] is an observe.Observer: give it to a
// service (proxy.ServiceOptions.Observers) and, so that its events are flushed when the
// server stops, to the server as a background service.
//
//	obs, err := sentry.New(sentry.Options{
//		DSN:         os.Getenv("SENTRY_DSN"),
//		Environment: "production",
//		Release:     "gateway@1.4.2",
//	})
//	if err != nil {
//		return err // names the bad field
//	}
//	defer obs.Close()
//	svc, err := proxy.NewService("gateway", app, proxy.ServiceOptions{
//		Observers: []observe.Observer{obs},
//	})
//	// ...
//	srv.Add(svc)
//	srv.Add(obs) // Run flushes the events when the server stops
//
// # What it reports
//
// At RequestEnd, two kinds of request become events:
//
//   - A panic in a phase (Request.Panic): an exception event at level fatal, titled
//     "panic: VALUE", with the stack of the panicking goroutine from the panic's
//     caller down (the frames of the recovery and of the runtime left out), marked
//     unhandled, and the Go type of the value in the tag panic.type.
//   - A failure: by default a status of 500 or more with an error (the proxy failed
//     the request: a dead peer, a timeout, a protocol error), not a 5xx a peer sent
//     itself; [Options.ReportStatus] chooses other statuses. An exception event at
//     level error, whose type is the error's kind as proxy.Error names it
//     ("connection refused", "read timeout") and whose value is the error's text.
//     Such events are grouped by service, status and error kind (their
//     fingerprint), not by the error's text, which names peers and ports; the tag
//     upstream tells the peers apart.
//
// Each event carries the request's method, URL (scheme, Host and path; no query string
// unless [Options.Query]), the status the client got, the service, the last peer tried,
// the error's kind and side, the number of attempts and the request's duration, as
// tags (service, method, host, status, proto, upstream, error.type, error.source), in
// the request interface, and in a context named "gotthard". Of the request's header
// fields it sends only those on an allow-list ([Options.Headers], by default
// User-Agent alone); Authorization, Proxy-Authorization, Cookie and Set-Cookie are
// never sent. Nor is the client's address. Values that come from the client are cut
// (tags at 200 bytes, the path at 1 KiB, header values at 256 bytes).
//
// # Cost and limits
//
// A request that is not reported costs a few comparisons and no allocation. A
// reported one passes a token bucket ([Options.EventsPerSecond], [Options.Burst]; one
// atomic word, no lock); the events it turns away are counted ([Observer.Dropped]), so
// a storm of 5xx costs Sentry's quota a burst and then a trickle. Panics pass a bucket
// of their own, so that such a storm does not hide them. Past it, the request
// copies what the event needs (its strings, the panic's stack, the error's text),
// counts the event under a short lock and starts a goroutine that builds the event and
// hands it to the sentry-go client: the request never waits for the client, whose HTTP
// transport sends from a goroutine of its own. At most 256 events are being handed over
// at once (more are there only when the client is stuck, in a BeforeSend that blocks,
// say); more are dropped and counted.
//
// # Shutdown
//
// [Observer.Flush] waits, for at most a timeout, until the events so far are sent.
// [Observer.Run] waits for its context and flushes for [Options.FlushTimeout]: that is
// what a server does with it when it stops, after the listening services have drained.
// [Observer.Close] stops reporting, and flushes and closes the client New made from a
// DSN.
//
// When not to use it: for counting failures, use metrics (observe/prometheus); Sentry
// is for the errors a person should read, and the rate limit makes it a sample of a
// storm, not a count.
package sentry
