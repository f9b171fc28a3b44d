package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/gotthard-proxy/gotthard/limit"
	"github.com/gotthard-proxy/gotthard/limit/httplimit"
	"github.com/gotthard-proxy/gotthard/limit/redis"
	"github.com/gotthard-proxy/gotthard/modules/compress"
	"github.com/gotthard-proxy/gotthard/proxy"
)

// modFlags are the flags of the modules the gateway can run around its phases.
type modFlags struct {
	compress       bool
	rateLimit      string
	rateLimitRedis string
}

func addModFlags(fs *flag.FlagSet) *modFlags {
	f := &modFlags{}
	fs.BoolVar(&f.compress, "compress", false, "compress responses with zstd, br or gzip by the client's Accept-Encoding (text, JSON, JavaScript, XML, SVG, WebAssembly; see docs/modules-compress.md)")
	fs.StringVar(&f.rateLimit, "rate-limit", "", "limit each client address to N requests a second, as N/s (a burst of N); past it the client gets 429 with Retry-After (empty: no limit)")
	fs.StringVar(&f.rateLimitRedis, "rate-limit-redis", "", "with -rate-limit, hold the limit across every gateway that shares this Redis (host:port), keyed by client address; while Redis is down or slower than 100ms, each gateway limits on its own (empty: per gateway)")
	return f
}

// modules returns the modules the flags ask for, in the order they run: the limit
// first, so that refused requests cost nothing more, and compression last, as it makes
// the bytes that go to the client.
func (f *modFlags) modules(logger *slog.Logger) ([]proxy.Module, error) {
	var mods []proxy.Module
	if f.rateLimit != "" {
		n, err := parseRate(f.rateLimit)
		if err != nil {
			return nil, fmt.Errorf("-rate-limit: %w", err)
		}
		lim, err := f.limiter(n, logger)
		if err != nil {
			return nil, err
		}
		filter, err := httplimit.New(httplimit.Options{Limiter: lim})
		if err != nil {
			return nil, fmt.Errorf("-rate-limit: %w", err)
		}
		mods = append(mods, filter)
	} else if f.rateLimitRedis != "" {
		return nil, errors.New("-rate-limit-redis needs -rate-limit")
	}
	if f.compress {
		c, err := compress.New(compress.Options{})
		if err != nil {
			return nil, fmt.Errorf("-compress: %w", err)
		}
		mods = append(mods, c)
	}
	return mods, nil
}

// limiter returns the limiter of -rate-limit n/s: a token bucket of this process, or,
// with -rate-limit-redis, one in Redis shared by every gateway that uses that Redis,
// with a local one as its fallback.
func (f *modFlags) limiter(n int, logger *slog.Logger) (limit.Limiter, error) {
	if f.rateLimitRedis == "" {
		tb, err := limit.NewTokenBucket(limit.TokenBucketOptions{Rate: float64(n), Burst: n})
		if err != nil {
			return nil, fmt.Errorf("-rate-limit: %w", err)
		}
		return tb, nil
	}
	if _, _, err := net.SplitHostPort(f.rateLimitRedis); err != nil {
		return nil, fmt.Errorf("-rate-limit-redis: %w", err)
	}
	// No retries within a call, so that the limiter's Timeout bounds it; the
	// process's end closes the client.
	rdb := goredis.NewClient(&goredis.Options{
		Addr:                  f.rateLimitRedis,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		DialTimeout:           time.Second,
		DisableIdentity:       true,
	})
	rl, err := redis.NewRate(redis.RateOptions{
		Store: redis.StoreOptions{
			Client: rdb,
			Prefix: "gotthard:gateway:rate:",
			Logger: logger,
		},
		Rate:  float64(n),
		Burst: n,
	})
	if err != nil {
		rdb.Close()
		return nil, fmt.Errorf("-rate-limit-redis: %w", err)
	}
	return rl, nil
}

// parseRate parses "N/s", N a positive whole number.
func parseRate(s string) (int, error) {
	num, ok := strings.CutSuffix(s, "/s")
	if !ok {
		return 0, fmt.Errorf("%q is not N/s (requests a second)", s)
	}
	n, err := strconv.Atoi(num)
	if err != nil || n <= 0 {
		return 0, errors.New("the rate in " + strconv.Quote(s) + " is not a positive whole number")
	}
	return n, nil
}
