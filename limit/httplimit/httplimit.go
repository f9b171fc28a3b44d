package httplimit

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/gotthard-proxy/gotthard/limit"
	"github.com/gotthard-proxy/gotthard/message"
	"github.com/gotthard-proxy/gotthard/proxy"
)

// Options configures a [Filter].
type Options struct {
	// Limiter decides for each request: a local limiter of package limit or a
	// fleet-wide one of limit/redis. It is required.
	Limiter limit.Limiter
	// Key returns the key a request is limited under. A request whose key is empty is
	// not limited (health checks, say). If nil, [ClientIP].
	Key func(s *proxy.Session) string
	// Status is the status of the answer to a refused request. If zero, 429 (Too Many
	// Requests, RFC 6585 §4); it must be in [400, 599].
	Status int
	// Body is the body of that answer, as text/plain. If empty, "too many requests\n".
	Body string
	// Name names the filter as a [proxy.Module]. If empty, "limit". Give each Filter
	// registered on one service its own.
	Name string
}

// Filter limits the requests of a proxy with a [limit.Limiter], and answers a refused
// one itself with Status (429), a Retry-After field (whole seconds, rounded up, RFC
// 9110 §10.2.3) and a short body, so it never reaches the upstream.
//
// Use it from a RequestFilter with [Filter.Check], or register it in
// [proxy.ServiceOptions.Modules], which also gives back what a request holds (an
// in-flight slot) when the request ends. A Filter is safe for concurrent use.
type Filter struct {
	lim    limit.Limiter
	key    func(s *proxy.Session) string
	status int
	body   []byte
	name   string
}

var _ proxy.Module = (*Filter)(nil)

// New returns a [Filter] with the given options, or an error naming the bad field.
func New(opts Options) (*Filter, error) {
	if opts.Key == nil {
		opts.Key = ClientIP
	}
	if opts.Status == 0 {
		opts.Status = 429
	}
	if opts.Body == "" {
		opts.Body = "too many requests\n"
	}
	if opts.Name == "" {
		opts.Name = "limit"
	}
	switch {
	case opts.Limiter == nil:
		return nil, fmt.Errorf("httplimit: Options.Limiter is nil: %w", limit.ErrOption)
	case opts.Status < 400 || opts.Status > 599:
		return nil, fmt.Errorf("httplimit: Options.Status %d is not in [400, 599]: %w", opts.Status, limit.ErrOption)
	}
	return &Filter{lim: opts.Limiter, key: opts.Key, status: opts.Status, body: []byte(opts.Body), name: opts.Name}, nil
}

// Check decides for the request of s. When it may go on, Check returns [proxy.Continue]
// and a release to call when the request ends (in Logging, say: it gives back an
// in-flight slot; it does nothing for a rate limit). When it may not, Check answers the
// client and returns [proxy.Handled], which the RequestFilter returns. release is never
// nil. An error is the limiter's (the request's ctx ended) or the client's connection's.
func (f *Filter) Check(ctx context.Context, s *proxy.Session) (res proxy.Result, release func(), err error) {
	key := f.key(s)
	if key == "" {
		return proxy.Continue, nop, nil
	}
	d, err := f.lim.Limit(ctx, key)
	if err != nil {
		return proxy.Continue, nop, fmt.Errorf("httplimit: %w", err)
	}
	if d.Allowed {
		if d.Release == nil {
			return proxy.Continue, nop, nil
		}
		return proxy.Continue, d.Release, nil
	}
	var resp message.ResponseHeader
	resp.Status = f.status
	resp.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp.Header.Set("Retry-After", RetryAfter(d.RetryAfter))
	if err := s.WriteResponse(&resp, f.body); err != nil {
		return proxy.Handled, nop, fmt.Errorf("httplimit: %w", err)
	}
	return proxy.Handled, nop, nil
}

func nop() {}

// RetryAfter formats d as the value of a Retry-After field: whole seconds, rounded up,
// at least 1 (a client told 0 would come back at once).
func RetryAfter(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	return strconv.FormatInt(max(s, 1), 10)
}

// ClientIP returns the client's IP address, without the port: the default key. Behind
// a load balancer that speaks the PROXY protocol, it is the client's as the load
// balancer saw it.
func ClientIP(s *proxy.Session) string {
	switch a := s.ClientAddr().(type) {
	case nil:
		return ""
	case *net.TCPAddr:
		return a.IP.String()
	default:
		host, _, err := net.SplitHostPort(a.String())
		if err != nil {
			return a.String()
		}
		return host
	}
}

// Header returns a key function that limits requests by the value of the header field
// name (an API key, say); requests without it are not limited.
func Header(name string) func(s *proxy.Session) string {
	return func(s *proxy.Session) string { return s.Request().Header.Get(name) }
}

// Name implements [proxy.Module].
func (f *Filter) Name() string { return f.name }

// NewRequest implements [proxy.Module]: the request is checked before the user's
// RequestFilter, and what it holds is given back when it ends.
func (f *Filter) NewRequest(*proxy.Session) proxy.ModuleRequest { return &moduleRequest{f: f} }

type moduleRequest struct {
	proxy.ModuleFilters
	f       *Filter
	release func()
}

func (m *moduleRequest) RequestFilter(ctx context.Context, s *proxy.Session) (proxy.Result, error) {
	res, release, err := m.f.Check(ctx, s)
	m.release = release
	return res, err
}

func (m *moduleRequest) Done(*proxy.Session) {
	if m.release != nil {
		m.release()
	}
}
