package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/gotthard-proxy/gotthard/lb"
	"github.com/gotthard-proxy/gotthard/observe"
	"github.com/gotthard-proxy/gotthard/proxy"
)

// balanced proxies to several upstreams through a load balancer, with failover: a
// failed attempt is retried on another upstream within the balancer's retry budget.
type balanced struct {
	proxy.Phases[*balancedCtx]
	lb      *lb.LoadBalancer[*proxy.Peer]
	hashKey func(*proxy.Session) string // nil: no key
	grpcWeb bool                        // bridge gRPC-web calls to the upstreams' gRPC
	cache   gwCache                     // -cache
}

// balancedCtx is the per-request state: the upstreams tried and the current attempt.
type balancedCtx struct {
	failover lb.Failover[*proxy.Peer]
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
	var key string
	if b.hashKey != nil {
		key = b.hashKey(s)
	}
	return c.failover.Select(b.lb, key)
}

// FailToConnect reports the failure and retries elsewhere if the budget allows.
func (b *balanced) FailToConnect(_ context.Context, _ *proxy.Session, c *balancedCtx, _ *proxy.Peer, err *proxy.Error) *proxy.Error {
	err.Retry = c.failover.FailToConnect(err, err.Retry)
	return err
}

// ErrorWhileProxy retries idempotent requests on another upstream; the framework
// retries only if nothing was sent to the client yet.
func (b *balanced) ErrorWhileProxy(_ context.Context, s *proxy.Session, c *balancedCtx, _ *proxy.Peer, err *proxy.Error, _ bool) *proxy.Error {
	err.Retry = c.failover.ErrorWhileProxy(err, err.Source == proxy.Upstream, err.Retry || lb.Idempotent(s.Request().Method))
	return err
}

// Logging tells the balancer how the request went, for its outlier detection and
// latency scores.
func (b *balanced) Logging(_ context.Context, s *proxy.Session, c *balancedCtx, err error) {
	c.failover.Done(s.Status(), err)
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
func newBalanced(upstreams []string, algo, hashKey, healthPath string, mkPeer func(string) *proxy.Peer,
	health []observe.HealthObserver, logger *slog.Logger) (*balanced, error) {
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
	l, err := lb.New(lb.Options[*proxy.Peer]{
		Name:        "balancer",
		Algorithm:   a,
		Backends:    bs,
		HealthCheck: hc,
		Attach:      func(b lb.Backend) *proxy.Peer { return mkPeer(b.Addr) },
		OnHealthChange: func(ev lb.HealthEvent) {
			logger.Warn("upstream health", "upstream", ev.Backend.Addr, "cause", ev.Cause.String(), "healthy", ev.Healthy, "available", ev.Available)
		},
		Observers: health,
		Logger:    logger,
	})
	if err != nil {
		return nil, err
	}
	return &balanced{lb: l, hashKey: key}, nil
}
