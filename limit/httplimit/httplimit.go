package httplimit

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"
	"unsafe"

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
	chk    limit.Checker // lim, when it is one: checks that allocate nothing
	ipKey  bool          // the key is ClientIP's, which a check can write in a buffer
	key    func(s *proxy.Session) string
	status int
	body   []byte
	name   string
	reqs   sync.Pool // of *moduleRequest, for the requests of the module and Check
}

var _ proxy.Module = (*Filter)(nil)

// New returns a [Filter] with the given options, or an error naming the bad field.
func New(opts Options) (*Filter, error) {
	ipKey := opts.Key == nil
	if ipKey {
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
	f := &Filter{lim: opts.Limiter, ipKey: ipKey, key: opts.Key, status: opts.Status, body: []byte(opts.Body), name: opts.Name}
	f.chk, _ = opts.Limiter.(limit.Checker)
	return f, nil
}

// Check decides for the request of s. When it may go on, Check returns [proxy.Continue]
// and a release to call when the request ends (in Logging, say: it gives back an
// in-flight slot; it does nothing for a rate limit). When it may not, Check answers the
// client and returns [proxy.Handled], which the RequestFilter returns. release is never
// nil. An error is the limiter's (the request's ctx ended) or the client's connection's.
func (f *Filter) Check(ctx context.Context, s *proxy.Session) (res proxy.Result, release func(), err error) {
	if f.chk == nil {
		return f.check(ctx, s)
	}
	// A limit.Checker: the key may be written in a pooled buffer, which the Checker
	// does not keep.
	m := f.get()
	res, err = m.RequestFilter(ctx, s)
	if m.tok == (limit.Token{}) {
		f.put(m)
		return res, nop, err
	}
	r := &tokenRelease{tok: m.tok}
	f.put(m)
	return res, r.release, err
}

// tokenRelease releases a token once, from any goroutine.
type tokenRelease struct {
	mu  sync.Mutex
	tok limit.Token
}

func (r *tokenRelease) release() {
	r.mu.Lock()
	r.tok.Release()
	r.mu.Unlock()
}

// check is Check through the limiter's Limit.
func (f *Filter) check(ctx context.Context, s *proxy.Session) (proxy.Result, func(), error) {
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
	return f.refuse(s, d.RetryAfter)
}

// refuse answers the request of s with Status, Retry-After: wait and Body.
func (f *Filter) refuse(s *proxy.Session, wait time.Duration) (proxy.Result, func(), error) {
	var resp message.ResponseHeader
	resp.Status = f.status
	resp.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp.Header.Set("Retry-After", RetryAfter(wait))
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
// RequestFilter, and what it holds is given back when it ends. The module's state for
// a request comes from a pool of the Filter's and goes back to it in Done, so that a
// request allowed by a [limit.Checker] (the local limiters of package limit) costs no
// allocation.
func (f *Filter) NewRequest(*proxy.Session) proxy.ModuleRequest { return f.get() }

// moduleRequest is a Filter's state for one request.
type moduleRequest struct {
	proxy.ModuleFilters
	f       *Filter
	tok     limit.Token // what a Checker's allowed request holds
	release func()      // what a Limiter's allowed request holds, or nil
	key     [64]byte    // the client's IP address, as text
}

func (f *Filter) get() *moduleRequest {
	if m, ok := f.reqs.Get().(*moduleRequest); ok {
		return m
	}
	return &moduleRequest{f: f}
}

func (f *Filter) put(m *moduleRequest) {
	m.tok, m.release = limit.Token{}, nil
	f.reqs.Put(m)
}

func (m *moduleRequest) RequestFilter(ctx context.Context, s *proxy.Session) (proxy.Result, error) {
	f := m.f
	if f.chk == nil {
		res, release, err := f.check(ctx, s)
		m.release = release
		return res, err
	}
	if err := ctx.Err(); err != nil {
		return proxy.Continue, fmt.Errorf("httplimit: %w", err)
	}
	var key string
	if a, ok := s.ClientAddr().(*net.TCPAddr); ok && f.ipKey && (len(a.IP) == net.IPv4len || len(a.IP) == net.IPv6len) {
		// ClientIP's key, written where it allocates nothing: the Checker does not
		// keep it.
		b := appendIP(m.key[:0], a.IP)
		key = unsafe.String(unsafe.SliceData(b), len(b))
	} else {
		key = f.key(s)
	}
	if key == "" {
		return proxy.Continue, nil
	}
	tok, ok, wait := f.chk.Check(key)
	if ok {
		m.tok = tok
		return proxy.Continue, nil
	}
	res, _, err := f.refuse(s, wait)
	return res, err
}

func (m *moduleRequest) Done(*proxy.Session) {
	m.tok.Release()
	if m.release != nil {
		m.release()
	}
	m.f.put(m)
}

// appendIP appends ip (4 or 16 bytes) as net.IP's String writes it.
func appendIP(b []byte, ip net.IP) []byte {
	if ip4 := ip.To4(); ip4 != nil {
		return netip.AddrFrom4([4]byte(ip4)).AppendTo(b)
	}
	return netip.AddrFrom16([16]byte(ip)).AppendTo(b)
}
