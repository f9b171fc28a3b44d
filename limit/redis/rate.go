package redis

import (
	"context"
	"fmt"
	"math"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/gotthard-proxy/gotthard/limit"
)

// gcraScript is the generic cell rate algorithm, the token bucket kept as one number:
// the theoretical arrival time (TAT) of the next request, in microseconds of Redis's
// own clock, so the processes of a fleet need not agree on the time. The key expires
// when the bucket is full again, so idle keys leave nothing behind.
//
// KEYS[1]: the key. ARGV[1]: microseconds between two tokens. ARGV[2]: the tolerance,
// (Burst-1) × ARGV[1]. Returns {1, 0} when allowed, {0, microseconds to wait} when not.
var gcraScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tol = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then tat = now end
if tat - now > tol then
  return {0, tat - tol - now}
end
local new = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', new), 'PX', math.ceil((new - now) / 1000) + 1)
return {1, 0}
`)

// RateOptions configures a [Rate].
type RateOptions struct {
	// Store is how to reach Redis and what to do when it cannot be reached.
	Store StoreOptions
	// Rate is how many requests per second each key may make across the fleet. It must
	// be positive.
	Rate float64
	// Burst is how many requests a key may make at once after a pause. If zero, 1.
	Burst int
	// MaxKeys bounds the keys of the local fallback ([limit.TokenBucketOptions.MaxKeys]).
	// If zero, 65536; at most 1<<26.
	MaxKeys int
}

// Rate limits each key to a rate with a burst across every process that shares its
// Redis and Prefix: a token bucket per key in Redis, checked and updated by one Lua
// script per request (EVALSHA, atomic), the key expiring as soon as its bucket is full
// again.
//
// When Redis fails or takes longer than Timeout, Rate decides by its Fallback (a local
// [limit.TokenBucket] of the same settings by default) and leaves Redis alone for
// RetryInterval before one request tries it again.
//
// A Rate is safe for concurrent use. It holds no goroutine and needs no Close.
type Rate struct {
	store    StoreOptions
	interval int64 // microseconds
	tol      int64 // microseconds
	local    *limit.TokenBucket
	circ     *circuit
}

var _ limit.Limiter = (*Rate)(nil)

// NewRate returns a [Rate] with the given options, or an error naming the bad field.
func NewRate(opts RateOptions) (*Rate, error) {
	if err := opts.Store.check("RateOptions"); err != nil {
		return nil, err
	}
	if opts.Burst == 0 {
		opts.Burst = 1
	}
	switch {
	case !(opts.Rate > 0) || opts.Rate > 1e6 || math.IsInf(opts.Rate, 0):
		return nil, fmt.Errorf("limit/redis: RateOptions.Rate %v is not in (0, 1e6]: %w", opts.Rate, ErrOption)
	case opts.Burst < 0 || opts.Burst > 1<<30:
		return nil, fmt.Errorf("limit/redis: RateOptions.Burst %d is not in [1, 1<<30]: %w", opts.Burst, ErrOption)
	case opts.MaxKeys < 0 || opts.MaxKeys > 1<<26:
		return nil, fmt.Errorf("limit/redis: RateOptions.MaxKeys %d is not in [1, 1<<26]: %w", opts.MaxKeys, ErrOption)
	}
	local, err := limit.NewTokenBucket(limit.TokenBucketOptions{Rate: opts.Rate, Burst: opts.Burst, MaxKeys: opts.MaxKeys})
	if err != nil {
		return nil, fmt.Errorf("limit/redis: the fallback: %w", err)
	}
	interval := max(int64(math.Round(1e6/opts.Rate)), 1)
	return &Rate{
		store:    opts.Store,
		interval: interval,
		tol:      int64(opts.Burst-1) * interval,
		local:    local,
		circ:     newCircuit("rate "+opts.Store.Prefix, &opts.Store),
	}, nil
}

// Limit implements [limit.Limiter]: it takes a token from key's bucket in Redis, or
// decides by the fallback when Redis cannot answer in time. It returns an error only
// when ctx ends first.
func (r *Rate) Limit(ctx context.Context, key string) (limit.Decision, error) {
	var res []int64
	ok, err := r.circ.call(ctx, r.store.Timeout, func(ctx context.Context) error {
		var err error
		res, err = gcraScript.Run(ctx, r.store.Client, []string{r.store.Prefix + "r:" + key}, r.interval, r.tol).Int64Slice()
		if err == nil && len(res) != 2 {
			err = fmt.Errorf("limit/redis: the rate script answered %v", res)
		}
		return err
	})
	if err != nil {
		return limit.Decision{}, err
	}
	if ok {
		if res[0] == 1 {
			return limit.Decision{Allowed: true}, nil
		}
		return limit.Decision{RetryAfter: time.Duration(res[1]) * time.Microsecond}, nil
	}
	switch r.store.Fallback {
	case FailOpen:
		return limit.Decision{Allowed: true}, nil
	case FailClosed:
		return limit.Decision{RetryAfter: r.store.RetryInterval}, nil
	}
	allowed, wait := r.local.Allow(key)
	return limit.Decision{Allowed: allowed, RetryAfter: wait}, nil
}

// Up reports whether the limiter uses Redis now, rather than its fallback.
func (r *Rate) Up() bool { return r.circ.up() }
