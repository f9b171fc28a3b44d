package redis

import (
	"context"
	"testing"

	"github.com/gotthard-proxy/gotthard/limit"
)

// BenchmarkLimit times one check of each limiter against a redis-server on loopback,
// and of the local token bucket, for the ratio; run it with -cpu 1.
func BenchmarkLimit(b *testing.B) {
	srv := startRedis(b)
	st := newStates()
	rate, err := NewRate(RateOptions{Store: st.store(srv.client(nil), "b:r:"), Rate: 1e6, Burst: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	fl, err := NewInFlight(InFlightOptions{Store: st.store(srv.client(nil), "b:f:"), Limit: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer fl.Close()
	local, _ := limit.NewTokenBucket(limit.TokenBucketOptions{Rate: 1e9, Burst: 1 << 20})
	ctx := context.Background()
	for _, c := range []struct {
		name string
		lim  limit.Limiter
	}{{"local-tokenbucket", local}, {"redis-rate", rate}, {"redis-inflight", fl}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				d, err := c.lim.Limit(ctx, "203.0.113.7")
				if err != nil || !d.Allowed {
					b.Fatalf("%+v, %v", d, err)
				}
				if d.Release != nil {
					d.Release()
				}
			}
		})
	}
}
