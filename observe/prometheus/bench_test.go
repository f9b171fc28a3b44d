package prometheus_test

import (
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/observe"
	"github.com/gotthard-proxy/gotthard/observe/prometheus"
)

// BenchmarkObserver measures one request's events (RequestStart, AttemptStart,
// UpstreamRequest, AttemptEnd, RequestEnd) on a service whose series exist: the cost a
// proxied request pays for its metrics.
func BenchmarkObserver(b *testing.B) {
	m, err := prometheus.New(prometheus.Options{})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	var r observe.Request
	var a observe.Attempt
	one := func() {
		r = observe.Request{Service: "gateway", Proto: "HTTP/1.1", Scheme: "http", Method: "GET", Target: "/1k",
			Host: "bench", Start: start}
		m.RequestStart(&r)
		a = observe.Attempt{Peer: "127.0.0.1:8080", Start: start}
		m.AttemptStart(&r, &a)
		a.Proto, a.Reused, a.Connected = "HTTP/1.1", true, start
		m.UpstreamRequest(&r, &a, nil)
		a.End, a.FirstByte, a.Status = start.Add(300*time.Microsecond), start.Add(200*time.Microsecond), 200
		m.AttemptEnd(&r, &a)
		r.End, r.FirstByte, r.Status, r.Attempts, r.Reused, r.BytesSent = a.End, a.FirstByte, 200, 1, true, 1024
		m.RequestEnd(&r)
	}
	one()
	b.ReportAllocs()
	for b.Loop() {
		one()
	}
}
