package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Fallback says what a limiter does while Redis is unreachable or too slow.
type Fallback uint8

const (
	// FallbackLocal decides with a limiter of this process with the same settings: the
	// limit then holds per process instead of across the fleet. It is the default.
	FallbackLocal Fallback = iota
	// FailOpen allows every request: no limit while Redis is down.
	FailOpen
	// FailClosed refuses every request, with RetryInterval as its Retry-After.
	FailClosed
)

// String returns "local", "open" or "closed".
func (f Fallback) String() string {
	switch f {
	case FailOpen:
		return "open"
	case FailClosed:
		return "closed"
	}
	return "local"
}

// StoreOptions is how a limiter talks to Redis and what it does when it cannot.
type StoreOptions struct {
	// Client is the Redis client (a *goredis.Client, a *goredis.ClusterClient, ...). It
	// is required, and a *Client or *ClusterClient must have ContextTimeoutEnabled set,
	// for Timeout to bound its reads and writes. The limiter does not close it.
	Client goredis.UniversalClient
	// Prefix starts the name of every key the limiter writes. If empty,
	// "gotthard:limit:". Limiters that share a Prefix and a user key share a limit, so
	// give each limit its own Prefix.
	Prefix string
	// Timeout bounds each call to Redis; a call that takes longer counts as Redis being
	// down. If zero, 100ms.
	Timeout time.Duration
	// RetryInterval is how long the limiter leaves Redis alone after a failed call
	// before it lets one request try it again (one at a time): a dead Redis is not
	// dialed per request. If zero, 1s.
	RetryInterval time.Duration
	// Fallback is what the limiter does meanwhile. The zero value is [FallbackLocal].
	Fallback Fallback
	// Logger gets one message per change of state (Redis down, Redis back), never one
	// per request. If nil, slog.Default().
	Logger *slog.Logger
	// OnStateChange, if not nil, is called with false when the limiter stops using Redis
	// and with true when it uses it again, on the goroutine of the request that saw it.
	OnStateChange func(up bool)
}

func (o *StoreOptions) check(owner string) error {
	if o.Prefix == "" {
		o.Prefix = "gotthard:limit:"
	}
	if o.Timeout == 0 {
		o.Timeout = 100 * time.Millisecond
	}
	if o.RetryInterval == 0 {
		o.RetryInterval = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	field := owner + ".Store."
	switch {
	case o.Client == nil:
		return fmt.Errorf("limit/redis: %sClient is nil: %w", field, ErrOption)
	case o.Timeout < 0:
		return fmt.Errorf("limit/redis: %sTimeout %v is negative: %w", field, o.Timeout, ErrOption)
	case o.RetryInterval < 0:
		return fmt.Errorf("limit/redis: %sRetryInterval %v is negative: %w", field, o.RetryInterval, ErrOption)
	case o.Fallback > FailClosed:
		return fmt.Errorf("limit/redis: %sFallback %d is unknown: %w", field, o.Fallback, ErrOption)
	}
	var ctxTimeout bool
	switch c := o.Client.(type) {
	case *goredis.Client:
		ctxTimeout = c.Options().ContextTimeoutEnabled
	case *goredis.ClusterClient:
		ctxTimeout = c.Options().ContextTimeoutEnabled
	default:
		ctxTimeout = true // cannot tell
	}
	if !ctxTimeout {
		return fmt.Errorf("limit/redis: %sClient has ContextTimeoutEnabled unset, so Timeout cannot bound its calls: %w", field, ErrOption)
	}
	return nil
}

// ErrOption is wrapped by the errors of this package's constructors for a bad option.
var ErrOption = errors.New("limit/redis: invalid option")

// circuit keeps a dead Redis from being called per request: after a failure, calls
// wait RetryInterval, then one request at a time probes it. Its state changes are
// logged once each.
type circuit struct {
	name    string
	retry   time.Duration
	log     *slog.Logger
	hook    func(up bool)
	down    atomic.Bool
	probing atomic.Bool
	nextTry atomic.Int64 // unix nanoseconds from which a probe may go
	mu      sync.Mutex   // orders the state changes and their logs
}

func newCircuit(name string, o *StoreOptions) *circuit {
	return &circuit{name: name, retry: o.RetryInterval, log: o.Logger, hook: o.OnStateChange}
}

// allow reports whether this call may go to Redis; if it returns true, the caller must
// report the outcome with success or failure.
func (c *circuit) allow() bool {
	if !c.down.Load() {
		return true
	}
	if time.Now().UnixNano() < c.nextTry.Load() {
		return false
	}
	return c.probing.CompareAndSwap(false, true)
}

func (c *circuit) success() {
	if c.down.Load() {
		c.mu.Lock()
		if c.down.Load() {
			c.down.Store(false)
			c.log.Info("limit/redis: Redis reachable again, using it", "limiter", c.name)
			if c.hook != nil {
				c.hook(true)
			}
		}
		c.mu.Unlock()
	}
	c.probing.Store(false)
}

func (c *circuit) failure(err error) {
	c.mu.Lock()
	c.nextTry.Store(time.Now().Add(c.retry).UnixNano())
	if !c.down.Load() {
		c.down.Store(true)
		c.log.Warn("limit/redis: Redis unreachable, using the fallback", "limiter", c.name, "err", err, "retry", c.retry)
		if c.hook != nil {
			c.hook(false)
		}
	}
	c.mu.Unlock()
	c.probing.Store(false)
}

// up reports whether the limiter uses Redis now.
func (c *circuit) up() bool { return !c.down.Load() }

// call runs f against Redis with the store's timeout if the circuit lets it, and
// reports whether it went and worked. An error of the caller's own ctx is returned as
// such, not counted against Redis.
func (c *circuit) call(ctx context.Context, timeout time.Duration, f func(ctx context.Context) error) (ok bool, err error) {
	if !c.allow() {
		return false, nil
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	err = f(cctx)
	cancel()
	if err == nil {
		c.success()
		return true, nil
	}
	if ctx.Err() != nil { // the caller gave up: say nothing about Redis
		c.probing.Store(false)
		return false, fmt.Errorf("limit/redis: %w", ctx.Err())
	}
	c.failure(err)
	return false, nil
}
