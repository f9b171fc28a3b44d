package limit_test

import (
	"context"
	"fmt"

	"github.com/gotthard-proxy/gotthard/limit"
)

// A client may make 2 requests at once, then one every 10 seconds.
func ExampleTokenBucket() {
	tb, err := limit.NewTokenBucket(limit.TokenBucketOptions{Rate: 0.1, Burst: 2})
	if err != nil {
		panic(err)
	}
	for range 3 {
		ok, wait := tb.Allow("203.0.113.7")
		fmt.Println(ok, wait.Round(1e9))
	}
	// Output:
	// true 0s
	// true 0s
	// false 10s
}

// At most one request per client runs at a time; the slot comes back at the request's
// end.
func ExampleInFlight() {
	fl, err := limit.NewInFlight(limit.InFlightOptions{Limit: 1})
	if err != nil {
		panic(err)
	}
	tok, ok := fl.Acquire("203.0.113.7")
	fmt.Println("first:", ok)
	_, ok = fl.Acquire("203.0.113.7")
	fmt.Println("second, while the first runs:", ok)
	tok.Release()
	tok, ok = fl.Acquire("203.0.113.7")
	fmt.Println("third, after the first ended:", ok)
	tok.Release()
	fmt.Println("keys held:", fl.Len())
	// Output:
	// first: true
	// second, while the first runs: false
	// third, after the first ended: true
	// keys held: 0
}

// Any Limiter, local or on Redis, answers the same way.
func ExampleLimiter() {
	r, err := limit.NewRate(limit.RateOptions{})
	if err != nil {
		panic(err)
	}
	var l limit.Limiter = r.Limiter(3) // 3 requests a second, sliding
	for range 4 {
		d, _ := l.Limit(context.Background(), "route:/login")
		fmt.Println(d.Allowed, d.RetryAfter > 0)
	}
	// Output:
	// true false
	// true false
	// true false
	// false true
}
