package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"

	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/gotthard-proxy/gotthard/observe"
	"github.com/gotthard-proxy/gotthard/observe/accesslog"
	"github.com/gotthard-proxy/gotthard/observe/admin"
	"github.com/gotthard-proxy/gotthard/observe/otel"
	"github.com/gotthard-proxy/gotthard/observe/prometheus"
	"github.com/gotthard-proxy/gotthard/observe/sentry"
	"github.com/gotthard-proxy/gotthard/server"
)

// obsFlags are the gateway's observability flags.
type obsFlags struct {
	admin, adminToken        string
	adminStats               bool
	accessLog, accessLogFile string
	trace, sentryDSN         string
}

func addObsFlags(fs *flag.FlagSet) *obsFlags {
	f := &obsFlags{}
	fs.StringVar(&f.admin, "admin", "", "address of the admin service: /metrics (Prometheus), /healthz, /status.json and the live status page at / (empty: none; "+admin.DefaultAddr+" with the demo origin)")
	fs.BoolVar(&f.adminStats, "admin-stats", true, "with -admin: keep the live counters, rates and latencies of /status.json and the status page (false: Prometheus metrics alone, the lowest cost per request)")
	fs.StringVar(&f.adminToken, "admin-token", os.Getenv("GOTTHARD_ADMIN_TOKEN"), "bearer token the admin service requires (needed to listen beyond loopback); open the page as http://ADDR/#token=TOKEN. The default comes from $GOTTHARD_ADMIN_TOKEN, which, unlike a flag, other users cannot read in the process list")
	fs.StringVar(&f.accessLog, "access-log", "", "access log format: combined or json (empty: none; combined with the demo origin)")
	fs.StringVar(&f.accessLogFile, "access-log-file", "", "file the access log goes to, reopened on SIGUSR1 for logrotate (empty: standard error)")
	fs.StringVar(&f.trace, "trace", "", "OpenTelemetry tracing: stdout (every request's spans written to standard output as JSON), never (traced with a provider that samples nothing) (empty: none)")
	fs.StringVar(&f.sentryDSN, "sentry-dsn", "", "Sentry DSN to report panics in phases and 5xx failures to (empty: none)")
	return f
}

// observability is what the flags built: the proxy service's observers, the balancer's
// health observers, and what the server runs beside the proxy.
type observability struct {
	observers []observe.Observer
	health    []observe.HealthObserver
	metrics   *prometheus.Metrics // with -admin
	stats     *admin.Stats        // with -admin, unless -admin-stats=false
	services  []server.Service    // background services: the access log's, Sentry's
	shutdown  func(context.Context) error
}

// newObservability builds the observers the flags ask for.
func newObservability(f *obsFlags, logger *slog.Logger) (*observability, error) {
	o := &observability{shutdown: func(context.Context) error { return nil }}
	if f.admin != "" {
		m, err := prometheus.New(prometheus.Options{Logger: logger, RuntimeMetrics: true})
		if err != nil {
			return nil, fmt.Errorf("-admin: %w", err)
		}
		o.metrics = m
		o.observers = append(o.observers, m)
		o.health = append(o.health, m)
		if f.adminStats {
			o.stats = admin.NewStats()
			o.observers = append(o.observers, o.stats)
			o.health = append(o.health, o.stats)
		}
	}
	if f.accessLog != "" || f.accessLogFile != "" {
		format, err := accesslog.ParseFormat(cmp.Or(f.accessLog, "combined"))
		if err != nil {
			return nil, fmt.Errorf("-access-log: %w", err)
		}
		opts := accesslog.Options{Format: format, Logger: logger}
		if f.accessLogFile != "" {
			opts.Path = f.accessLogFile
		} else {
			opts.Writer = os.Stderr
		}
		l, err := accesslog.New(opts)
		if err != nil {
			return nil, fmt.Errorf("-access-log: %w", err)
		}
		o.observers = append(o.observers, l)
		o.services = append(o.services, l)
	}
	switch f.trace {
	case "":
	case "stdout", "never":
		tp, sampler, err := tracerProvider(f.trace, os.Stdout)
		if err != nil {
			return nil, fmt.Errorf("-trace: %w", err)
		}
		// The provider's sampler, given to the observer too: a request it drops
		// costs no span (see otel.Options.Sampler).
		t, err := otel.New(otel.Options{TracerProvider: tp, Sampler: sdkSampler(sampler)})
		if err != nil {
			return nil, fmt.Errorf("-trace: %w", err)
		}
		o.observers = append(o.observers, t)
		o.shutdown = tp.Shutdown
	default:
		return nil, fmt.Errorf("-trace %q: want stdout or never", f.trace)
	}
	if f.sentryDSN != "" {
		s, err := sentry.New(sentry.Options{DSN: f.sentryDSN})
		if err != nil {
			return nil, fmt.Errorf("-sentry-dsn: %w", err)
		}
		o.observers = append(o.observers, s)
		o.services = append(o.services, s) // flushes its events when the server stops
	}
	return o, nil
}

// sdkSampler makes an otel.Sampler of the SDK's sampler s.
func sdkSampler(s sdktrace.Sampler) otel.Sampler {
	return func(p otel.SamplingParameters) (bool, trace.TraceState) {
		r := s.ShouldSample(sdktrace.SamplingParameters{
			ParentContext: p.ParentContext, TraceID: p.TraceID, Name: p.Name, Kind: p.Kind})
		return r.Decision == sdktrace.Drop, r.Tracestate
	}
}

// tracerProvider returns the OpenTelemetry SDK's provider for -trace and its sampler:
// "stdout" samples every request (or follows the client's sampled flag) and writes the
// spans to w in batches; "never" samples nothing, to see what tracing costs when it is
// off.
func tracerProvider(mode string, w io.Writer) (*sdktrace.TracerProvider, sdktrace.Sampler, error) {
	if mode == "never" {
		sampler := sdktrace.NeverSample()
		return sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler)), sampler, nil
	}
	exp, err := stdouttrace.New(stdouttrace.WithWriter(w))
	if err != nil {
		return nil, nil, err
	}
	sampler := sdktrace.ParentBased(sdktrace.AlwaysSample())
	return sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler), sdktrace.WithBatcher(exp)), sampler, nil
}

// adminService builds the admin service on addr, showing balancers and the TLS
// configuration's certificates (nil: none), with the listeners of the server's services
// named in names.
func (o *observability) adminService(addr, token string, srv *server.Server, balancers []observe.Balancer,
	certs func() []*tls.Certificate, logger *slog.Logger, names ...string) (*admin.Service, error) {
	for _, b := range balancers {
		if err := o.metrics.AddBalancer(b); err != nil {
			return nil, fmt.Errorf("-admin: %w", err)
		}
	}
	opts := admin.Options{
		Addr:      addr,
		Token:     token,
		Stats:     o.stats,
		Metrics:   o.metrics.Handler(),
		Balancers: balancers,
		Listeners: admin.ListenersOf(srv.Addrs, names...),
		Logger:    logger,
	}
	if certs != nil {
		opts.Certificates = []admin.CertificateSource{{Name: "gateway", Certificates: certs}}
	}
	a, err := admin.New(opts)
	if err != nil {
		return nil, fmt.Errorf("-admin: %w", err)
	}
	return a, nil
}

// adminAddrs returns the addresses the admin service listens on, if there is one.
func adminAddrs(srv *server.Server, a *admin.Service) []net.Addr {
	if a == nil {
		return nil
	}
	return srv.Addrs(a.Name())
}

// demoAdminAddr returns the admin service's address in demo mode: the default one, or a
// free port if something else holds it, so that the demo starts anyway.
func demoAdminAddr() string {
	ln, err := net.Listen("tcp", admin.DefaultAddr)
	if err != nil {
		return "127.0.0.1:0"
	}
	ln.Close()
	return admin.DefaultAddr
}
