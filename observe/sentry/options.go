package sentry

import (
	"fmt"
	"maps"
	"math"
	"net/textproto"
	"strings"
	"time"

	sentrygo "github.com/getsentry/sentry-go"
)

// Default values of [Options].
const (
	DefaultEventsPerSecond = 1.0
	DefaultBurst           = 20
	DefaultFlushTimeout    = 2 * time.Second
	DefaultName            = "sentry"
)

// DefaultHeaders returns the allow-list of request header fields sent with each event
// when [Options.Headers] is nil: User-Agent alone, which names the client's software
// and says nothing of who the user is.
func DefaultHeaders() []string { return []string{"User-Agent"} }

// forbidden reports whether a header field (canonical name) carries credentials, so
// that it is never sent, even when an allow-list names it.
func forbidden(name string) bool {
	switch name {
	case "Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie":
		return true
	}
	return false
}

// Options configures an [Observer]. Exactly one of DSN and Client must be set.
type Options struct {
	// DSN is the Sentry project's DSN ("https://KEY@o1.ingest.sentry.io/2"). New
	// then makes a client of its own, with Environment and Release and sentry-go's
	// HTTPTransport (asynchronous: a queue of 30 events sent by a goroutine of its own,
	// HTTP proxies from the environment); [Observer.Close] closes it.
	DSN string
	// Client is a sentry-go client the program made itself (its transport,
	// BeforeSend, sample rate and so on apply to the events). The Observer does not
	// close it.
	Client *sentrygo.Client

	// Environment and Release are set on every event ("production", "gateway@1.4.2").
	// If empty, a client made from DSN takes them as sentry-go does (SENTRY_ENVIRONMENT;
	// SENTRY_RELEASE, the binary's VCS revision, or git run in the working directory),
	// and a given Client's own options apply.
	Environment, Release string

	// EventsPerSecond and Burst are the token buckets that bound the events sent:
	// Burst events at once, then EventsPerSecond on average; panics have a bucket of
	// their own, with the same rate and burst, so that a storm of failures does not
	// hide them. Events over the limit are dropped and counted ([Observer.Dropped]).
	// If zero, 1 per second and a burst of 20.
	EventsPerSecond float64
	Burst           int

	// ReportStatus says which statuses of requests that did not panic are reported.
	// If nil, a request is reported when its status is 500 or more and it has an
	// error (the proxy failed it: a dead peer, a timeout), not when a peer answered
	// 5xx itself; with ReportStatus set, every request whose status it accepts is
	// reported, error or not. Panics are always reported. It runs on the request's
	// path: it must be fast and safe for concurrent use.
	ReportStatus func(status int) bool

	// Headers is the allow-list of request header fields sent with an event (the first
	// value of each). If nil, [DefaultHeaders]; an empty, non-nil slice sends none.
	// Authorization, Proxy-Authorization, Cookie and Set-Cookie are never sent: New
	// rejects a list that names them.
	Headers []string
	// Query sends the request's query string with the event. Off by default: query
	// strings often carry tokens.
	Query bool
	// Tags are added to every event's tags (copied by New).
	Tags map[string]string

	// FlushTimeout bounds the flush [Observer.Run] makes when its context ends. If
	// zero, 2s.
	FlushTimeout time.Duration
	// Name is the Observer's name as a background service ([Observer.Name]). If
	// empty, "sentry".
	Name string
}

// config is Options validated, with defaults applied.
type config struct {
	client       *sentrygo.Client
	owned        bool
	environment  string
	release      string
	rate         float64
	burst        int
	reportStatus func(int) bool
	headers      []string // canonical names
	query        bool
	tags         map[string]string
	flushTimeout time.Duration
	name         string
}

// optErr returns the error naming a bad field of Options.
func optErr(field, format string, args ...any) error {
	return fmt.Errorf("sentry: Options.%s: %s", field, fmt.Sprintf(format, args...))
}

// validate checks opts and applies the defaults; it does not make a client.
func validate(opts Options) (config, error) {
	c := config{
		client:       opts.Client,
		environment:  opts.Environment,
		release:      opts.Release,
		rate:         opts.EventsPerSecond,
		burst:        opts.Burst,
		reportStatus: opts.ReportStatus,
		query:        opts.Query,
		tags:         maps.Clone(opts.Tags),
		flushTimeout: opts.FlushTimeout,
		name:         opts.Name,
	}
	switch {
	case opts.DSN == "" && opts.Client == nil:
		return c, optErr("DSN", "one of DSN and Client is required")
	case opts.DSN != "" && opts.Client != nil:
		return c, optErr("DSN", "set with Client: set one of them")
	case opts.DSN != "":
		if _, err := sentrygo.NewDsn(opts.DSN); err != nil {
			return c, fmt.Errorf("sentry: Options.DSN: %w", err)
		}
	}
	switch r := c.rate; {
	case r == 0:
		c.rate = DefaultEventsPerSecond
	case math.IsNaN(r) || math.IsInf(r, 0) || r < 0:
		return c, optErr("EventsPerSecond", "%v is not a positive number", r)
	}
	switch {
	case c.burst == 0:
		c.burst = DefaultBurst
	case c.burst < 0:
		return c, optErr("Burst", "%d is negative", c.burst)
	case c.burst > maxBurst:
		return c, optErr("Burst", "%d is over %d", c.burst, maxBurst)
	}
	hs := opts.Headers
	if hs == nil {
		hs = DefaultHeaders()
	}
	c.headers = make([]string, 0, len(hs))
	for _, h := range hs {
		name := textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(h))
		if name == "" || strings.ContainsAny(name, " \t:\r\n") {
			return c, optErr("Headers", "%q is not a header field name", h)
		}
		if forbidden(name) {
			return c, optErr("Headers", "%s carries credentials and is never sent", name)
		}
		c.headers = append(c.headers, name)
	}
	for k := range c.tags {
		if k == "" {
			return c, optErr("Tags", "empty key")
		}
	}
	switch {
	case c.flushTimeout == 0:
		c.flushTimeout = DefaultFlushTimeout
	case c.flushTimeout < 0:
		return c, optErr("FlushTimeout", "%v is negative", c.flushTimeout)
	}
	if c.name == "" {
		c.name = DefaultName
	}
	return c, nil
}
