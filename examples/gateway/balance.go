package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/gotthard-proxy/gotthard/lb"
	"github.com/gotthard-proxy/gotthard/proxy"
)

// balanced proxies to several upstreams through a load balancer, with failover: a
// failed attempt is retried on another upstream within a retry budget.
type balanced struct {
	proxy.Phases[*balancedCtx]
	lb        *lb.LoadBalancer
	budget    *lb.RetryBudget
	hashKey   func(*proxy.Session) string // nil: no key
	grpcWeb   bool                        // bridge gRPC-web calls to the upstreams' gRPC
	accessLog *slog.Logger                // nil: no access log
}

// balancedCtx is the per-request state: the upstreams tried and the current attempt.
type balancedCtx struct {
	attempts lb.Attempts
	pick     lb.Pick
}

func (b *balanced) NewCtx() *balancedCtx { return &balancedCtx{} }

// EarlyRequestFilter turns the gRPC-web bridge on for gRPC-web calls with -grpc-web.
func (b *balanced) EarlyRequestFilter(_ context.Context, s *proxy.Session, _ *balancedCtx) error {
	if b.grpcWeb {
		s.BridgeGRPCWeb()
	}
	return nil
}

func (b *balanced) UpstreamPeer(_ context.Context, s *proxy.Session, c *balancedCtx) (*proxy.Peer, error) {
	if c.attempts.Len() == 0 {
		b.budget.Request()
	}
	var key string
	if b.hashKey != nil {
		key = b.hashKey(s)
	}
	p, err := b.lb.Select(key, &c.attempts)
	if err != nil {
		return nil, err
	}
	c.pick = p
	return p.Value().(*proxy.Peer), nil
}

// FailToConnect reports the failure and retries elsewhere if the budget allows.
func (b *balanced) FailToConnect(_ context.Context, _ *proxy.Session, c *balancedCtx, _ *proxy.Peer, err *proxy.Error) *proxy.Error {
	c.pick.Done(lb.ConnectFailure)
	if err.Retry && !b.budget.Retry() {
		err.Retry = false
	}
	return err
}

// ErrorWhileProxy retries idempotent requests on another upstream; the framework
// retries only if nothing was sent to the client yet.
func (b *balanced) ErrorWhileProxy(_ context.Context, s *proxy.Session, c *balancedCtx, _ *proxy.Peer, err *proxy.Error, _ bool) *proxy.Error {
	c.pick.Done(lb.Failure)
	if err.Source == proxy.Upstream && lb.Idempotent(s.Request().Method) && b.budget.Retry() {
		err.Retry = true
	}
	return err
}

func (b *balanced) Logging(ctx context.Context, s *proxy.Session, c *balancedCtx, err error) {
	if errors.Is(err, proxy.ErrShutdown) {
		c.pick.Done(lb.Canceled) // cut by the proxy's own closing: not the backend's fault
	} else {
		c.pick.Done(lb.OutcomeOf(s.Status(), err))
	}
	if b.accessLog == nil {
		return
	}
	req, t := s.Request(), s.Timing()
	upstream := ""
	if p := s.Peer(); p != nil {
		upstream = p.Address
	}
	attrs := []any{
		"client", s.ClientAddr().String(),
		"method", req.Method,
		"target", req.Target,
		"status", s.Status(),
		"upstream", upstream,
		"attempts", c.attempts.Len(),
		"duration", t.End.Sub(t.Start),
	}
	if err != nil {
		attrs = append(attrs, "err", err.Error())
	}
	b.accessLog.InfoContext(ctx, "access", attrs...)
}

// parseHashKey returns the function that takes the hash key from a request:
// "path", "client-ip", "header:NAME" or "cookie:NAME".
func parseHashKey(spec string) (func(*proxy.Session) string, error) {
	kind, name, _ := strings.Cut(spec, ":")
	switch {
	case spec == "":
		return nil, nil
	case kind == "path" && name == "":
		return func(s *proxy.Session) string { return s.Request().Path() }, nil
	case kind == "client-ip" && name == "":
		return func(s *proxy.Session) string {
			if a, ok := s.ClientAddr().(*net.TCPAddr); ok {
				return a.IP.String()
			}
			return s.ClientAddr().String()
		}, nil
	case kind == "header" && name != "":
		return func(s *proxy.Session) string { return s.Request().Header.Get(name) }, nil
	case kind == "cookie" && name != "":
		return func(s *proxy.Session) string { return cookie(s.Request().Header.Values("Cookie"), name) }, nil
	}
	return nil, fmt.Errorf("-hash-key %q: want path, client-ip, header:NAME or cookie:NAME", spec)
}

// cookie returns the value of the cookie named name in the Cookie fields.
func cookie(fields []string, name string) string {
	for _, f := range fields {
		for part := range strings.SplitSeq(f, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
			if ok && k == name {
				return v
			}
		}
	}
	return ""
}

// newBalanced builds the balancer over upstreams.
func newBalanced(upstreams []string, algo, hashKey, healthPath string, mkPeer func(string) *proxy.Peer, logger *slog.Logger) (*balanced, error) {
	a, err := lb.ParseAlgorithm(algo)
	if err != nil {
		return nil, err
	}
	key, err := parseHashKey(hashKey)
	if err != nil {
		return nil, err
	}
	if a.Hashed() && key == nil {
		return nil, fmt.Errorf("-lb %s needs -hash-key", a)
	}
	var hc *lb.HealthCheck
	if healthPath != "" {
		hc = &lb.HealthCheck{HTTP: &lb.HTTPCheck{Path: healthPath}, Interval: 2 * time.Second, Timeout: time.Second}
	}
	var bs []lb.Backend
	for _, u := range upstreams {
		bs = append(bs, lb.Backend{Addr: u})
	}
	l, err := lb.New(lb.Options{
		Name:        "balancer",
		Algorithm:   a,
		Backends:    bs,
		HealthCheck: hc,
		Attach:      func(b lb.Backend) any { return mkPeer(b.Addr) },
		OnHealthChange: func(ev lb.HealthEvent) {
			logger.Warn("upstream health", "upstream", ev.Backend.Addr, "cause", ev.Cause.String(), "healthy", ev.Healthy, "available", ev.Available)
		},
		Logger: logger,
	})
	if err != nil {
		return nil, err
	}
	budget, err := lb.NewRetryBudget(lb.RetryBudgetOptions{})
	if err != nil {
		return nil, err
	}
	return &balanced{lb: l, budget: budget, hashKey: key}, nil
}
