package prometheus

import (
	"errors"
	"fmt"
	"log/slog"
	"math"

	"github.com/gotthard-proxy/gotthard/observe"
	prom "github.com/prometheus/client_golang/prometheus"
)

// DefaultBuckets returns the bounds, in seconds, of the duration histograms when
// [Options.Buckets] is nil: from half a millisecond, since a proxy's own work and a
// loopback or same-zone upstream are that fast, up to ten seconds.
func DefaultBuckets() []float64 {
	return []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
}

// Options configures [New]. The zero value is valid: a private registry, the
// "gotthard" namespace and [DefaultBuckets].
type Options struct {
	// Registerer is where the metrics are registered. If nil, New makes a private
	// registry for them (never the global one), which [Metrics.Handler] serves.
	Registerer prom.Registerer
	// Gatherer is what [Metrics.Handler] serves when Registerer is set: if nil, the
	// Registerer itself, which must then be a Gatherer (a *prometheus.Registry is).
	// Without Registerer it must be nil (Handler serves the private registry).
	Gatherer prom.Gatherer

	// Namespace prefixes every metric name, joined with "_". If empty, "gotthard".
	// It must be a valid metric name.
	Namespace string
	// Buckets are the upper bounds, in seconds, of the duration histograms, strictly
	// increasing. If nil, [DefaultBuckets]. The slice is copied.
	Buckets []float64

	// Label, if not nil, gives each request one more label value on the request
	// counter and the request duration histogram, named LabelName: a route, a tenant,
	// an API version. It runs at RequestEnd (every field of the Request is set then),
	// on the request's goroutine, and must be fast and safe for concurrent use. Its
	// values must come from a small, fixed set, never from paths, hosts or clients:
	// every value is one more set of time series. Past MaxLabelValues distinct values
	// per service, further ones are counted as "other". To keep RequestEnd free of
	// allocations, return constants or parts of the Request's strings, not strings
	// built per request.
	Label func(*observe.Request) string
	// LabelName is the name of Label's label; it is required with Label and must be a
	// valid label name that the request metrics do not use already ("service",
	// "method", "status_class").
	LabelName string
	// MaxLabelValues bounds the distinct values of Label per service. If zero, 100.
	MaxLabelValues int

	// RuntimeMetrics adds the Go runtime collector and the process collector (CPU,
	// memory, open file descriptors) to the registry: the go_* and process_* metrics
	// a Prometheus client usually exports. Leave it false when the Registerer already
	// has them.
	RuntimeMetrics bool

	// Logger receives the scrape errors of Handler. If nil, slog.Default().
	Logger *slog.Logger
}

// Errors of [New].
var (
	// ErrOptions is wrapped by every error New returns for invalid options.
	ErrOptions = errors.New("prometheus: invalid options")
)

// validName reports whether s is a valid metric name (colons allowed) or label name.
func validName(s string, colon bool) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case c == ':' && colon:
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// validate checks o and returns it with its defaults filled in.
func (o Options) validate() (Options, error) {
	if o.Namespace == "" {
		o.Namespace = "gotthard"
	}
	if !validName(o.Namespace, true) {
		return o, fmt.Errorf("%w: Options.Namespace %q is not a valid metric name", ErrOptions, o.Namespace)
	}
	if o.Buckets == nil {
		o.Buckets = DefaultBuckets()
	}
	if len(o.Buckets) == 0 {
		return o, fmt.Errorf("%w: Options.Buckets is empty", ErrOptions)
	}
	for i, b := range o.Buckets {
		if math.IsNaN(b) || math.IsInf(b, 0) {
			return o, fmt.Errorf("%w: Options.Buckets[%d] is %v", ErrOptions, i, b)
		}
		if i > 0 && b <= o.Buckets[i-1] {
			return o, fmt.Errorf("%w: Options.Buckets is not strictly increasing at [%d] (%v after %v)",
				ErrOptions, i, b, o.Buckets[i-1])
		}
	}
	o.Buckets = append([]float64(nil), o.Buckets...)
	switch {
	case o.Label == nil && o.LabelName != "":
		return o, fmt.Errorf("%w: Options.LabelName %q is set without Options.Label", ErrOptions, o.LabelName)
	case o.Label != nil && o.LabelName == "":
		return o, fmt.Errorf("%w: Options.Label is set without Options.LabelName", ErrOptions)
	case o.Label != nil && !validName(o.LabelName, false):
		return o, fmt.Errorf("%w: Options.LabelName %q is not a valid label name", ErrOptions, o.LabelName)
	case o.Label != nil && (o.LabelName[0] == '_' && len(o.LabelName) > 1 && o.LabelName[1] == '_'):
		return o, fmt.Errorf("%w: Options.LabelName %q is reserved (it starts with \"__\")", ErrOptions, o.LabelName)
	case o.LabelName == "service" || o.LabelName == "method" || o.LabelName == "status_class" || o.LabelName == "le":
		return o, fmt.Errorf("%w: Options.LabelName %q is a label the request metrics have already", ErrOptions, o.LabelName)
	}
	if o.MaxLabelValues < 0 {
		return o, fmt.Errorf("%w: Options.MaxLabelValues is negative (%d)", ErrOptions, o.MaxLabelValues)
	}
	if o.MaxLabelValues == 0 {
		o.MaxLabelValues = 100
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}
