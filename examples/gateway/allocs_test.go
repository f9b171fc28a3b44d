//go:build !race

// The race detector makes sync.Pool drop values at random, so allocations are counted
// without it.

package main

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/gotthard-proxy/gotthard/observe"
	"github.com/gotthard-proxy/gotthard/proxy"
	"github.com/gotthard-proxy/gotthard/proxy/proxytest"
)

// TestRequestAllocs: a keep-alive GET through the gateway's proxy allocates nothing once
// the connections are warm, with the observers of -admin and -access-log json too; with
// -trace never, one allocation, the upstream traceparent. This package's tests are built
// with its profile for PGO (default.pgo), as `go build` builds the gateway, and an
// inlining that only the profile brings can make a value escape that does not escape
// without it: the proxy's own benchmarks, built without the profile, would not see that
// allocation.
func TestRequestAllocs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags obsFlags
		want  float64
	}{
		{"plain", obsFlags{}, 0},
		{"observed", obsFlags{admin: "127.0.0.1:0", adminStats: true, accessLog: "json", accessLogFile: filepath.Join(t.TempDir(), "access.log")}, 0},
		{"observed-without-stats", obsFlags{admin: "127.0.0.1:0", accessLog: "json", accessLogFile: filepath.Join(t.TempDir(), "access.log")}, 0},
		{"traced", obsFlags{trace: "never"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs, err := newObservability(&tc.flags, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				obs.shutdown(context.Background())
				for _, svc := range obs.services {
					if c, ok := svc.(io.Closer); ok {
						c.Close() // the access log's file
					}
				}
			})
			if n := requestAllocs(t, obs.observers); n != tc.want {
				t.Errorf("%v allocations per request, want %v", n, tc.want)
			}
		})
	}
}

// requestAllocs returns the allocations of a keep-alive GET through a gateway with
// observers, its connections warm.
func requestAllocs(t *testing.T, observers []observe.Observer) float64 {
	const size = 1024
	peer, err := proxy.NewPeer(proxytest.NewRawOrigin(t, size))
	if err != nil {
		t.Fatal(err)
	}
	svc := proxytest.NewService(t, "gw", &gateway{peer: peer},
		proxy.ServiceOptions{MaxRequestsPerConn: -1, Observers: observers})
	roundTrip := proxytest.NewRawClient(t, proxytest.Serve(t, svc), "/1k", size)
	for range 100 {
		roundTrip()
	}
	return testing.AllocsPerRun(2000, roundTrip)
}
