package cache_test

import (
	"fmt"
	"time"

	"github.com/gotthard-proxy/gotthard/cache"
	"github.com/gotthard-proxy/gotthard/message"
)

// A response is checked for storage, stored, and later judged against requests.
func ExamplePolicy_Decide() {
	sent := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	req := &message.RequestHeader{Method: "GET", Target: "/logo.png"}
	req.Header.Add("Host", "example.com")

	resp := &message.ResponseHeader{Status: 200}
	resp.Header.Add("Date", "Sun, 01 Mar 2026 12:00:00 GMT")
	resp.Header.Add("Cache-Control", "max-age=60, stale-while-revalidate=30")
	resp.Header.Add("ETag", `"v1"`)

	fmt.Println("storable:", cache.Storable(req, resp))
	meta := cache.NewMeta(resp, sent, sent)

	var p cache.Policy
	for _, after := range []time.Duration{10 * time.Second, 70 * time.Second, 100 * time.Second} {
		d := p.Decide(req, meta, sent.Add(after))
		fmt.Printf("after %v: %v (ttl %v, background %v)\n", after, d.Action, d.TTL(), d.BackgroundRevalidate)
	}

	// The stale response is validated upstream.
	up := &message.RequestHeader{}
	up.CopyFrom(req)
	cache.AddConditionals(up, meta)
	fmt.Println("If-None-Match:", up.Header.Get("If-None-Match"))

	notModified := &message.ResponseHeader{Status: 304}
	notModified.Header.Add("Date", "Sun, 01 Mar 2026 12:01:40 GMT")
	notModified.Header.Add("ETag", `"v1"`)
	if cache.Select304(notModified, meta) == 0 {
		cache.Update304(meta, notModified, sent.Add(100*time.Second), sent.Add(100*time.Second))
	}
	fmt.Println("after the 304:", p.Decide(req, meta, sent.Add(101*time.Second)).Action)

	status := cache.CacheStatus{Cache: "gotthard", Fwd: cache.FwdStale, FwdStatus: 304, HasTTL: true, TTL: 59 * time.Second}
	fmt.Println("Cache-Status:", status.String())
	// Output:
	// storable: ok
	// after 10s: fresh (ttl 50s, background false)
	// after 1m10s: stale (ttl -10s, background true)
	// after 1m40s: validate (ttl -40s, background false)
	// If-None-Match: "v1"
	// after the 304: fresh
	// Cache-Status: gotthard; fwd=stale; fwd-status=304; ttl=59
}

// A client's Range request is answered from a stored body.
func ExamplePolicy_ParseRange() {
	var p cache.Policy
	for _, v := range []string{"bytes=0-99", "bytes=-100, 0-9", "bytes=5000-", "bytes=1-2,2-3,x"} {
		rs, err := p.ParseRange(nil, v, 1000)
		fmt.Println(v, "→", rs, err)
	}
	// Output:
	// bytes=0-99 → [{0 100}] <nil>
	// bytes=-100, 0-9 → [{0 10} {900 100}] <nil>
	// bytes=5000- → [] cache: range not satisfiable
	// bytes=1-2,2-3,x → [] cache: invalid Range: "x"
}
