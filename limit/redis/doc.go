// Package redis holds fleet-wide limiters whose state lives in Redis, so a limit holds
// across every process of a fleet that shares one Redis: [Rate], a token bucket per key
// (the generic cell rate algorithm), and [InFlight], a count of running requests per key
// kept as leases that expire. Both implement [limit.Limiter], so the HTTP helper in
// limit/httplimit takes them as it takes the local limiters.
//
// Each check is one Lua script run with EVALSHA: atomic, one round trip, using Redis's
// clock (the processes' clocks need not agree). Every key has a TTL, so idle keys and
// the leases of a crashed process leave nothing behind.
//
// When Redis is unreachable or slower than StoreOptions.Timeout, a limiter decides by
// its StoreOptions.Fallback: a local limiter of the same settings (the default; the
// limit then holds per process), fail open (allow) or fail closed (refuse). It then
// leaves Redis alone for RetryInterval, lets one request try it again, and goes back to
// it when it answers. Each change of state is logged once.
//
// The client must have ContextTimeoutEnabled set, so Timeout bounds its calls:
//
//	rdb := goredis.NewClient(&goredis.Options{Addr: "10.0.0.5:6379", ContextTimeoutEnabled: true})
//	rl, err := redis.NewRate(redis.RateOptions{
//		Store: redis.StoreOptions{Client: rdb, Prefix: "gw:api:"},
//		Rate:  100, Burst: 200,
//	})
//
// Redis Cluster works: each check touches one key. See docs/modules-limits.md.
package redis
