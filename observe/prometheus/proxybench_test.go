package prometheus_test

import (
	"path/filepath"
	"testing"

	"github.com/gotthard-proxy/gotthard/observe"
	"github.com/gotthard-proxy/gotthard/observe/accesslog"
	"github.com/gotthard-proxy/gotthard/observe/prometheus"
	"github.com/gotthard-proxy/gotthard/proxy"
	"github.com/gotthard-proxy/gotthard/proxy/proxytest"
)

// BenchmarkProxyGetPrometheus is the proxy's BenchmarkProxyGet (one proxied keep-alive
// GET of 1 KiB with a reused upstream connection, on loopback) without observers and
// with Metrics as the service's observer: allocs/op is the proxy's and the observer's
// steady state, and the difference between the two is what the metrics cost. The
// third case adds a JSON access log written to a file: what bench/run.sh's
// gotthard-observed proxy runs.
func BenchmarkProxyGetPrometheus(b *testing.B) {
	for _, name := range []string{"none", "prometheus", "prometheus+json"} {
		b.Run(name, func(b *testing.B) {
			const size = 1 << 10
			peer, err := proxy.NewPeer(proxytest.NewRawOrigin(b, size))
			if err != nil {
				b.Fatal(err)
			}
			opts := proxy.ServiceOptions{MaxRequestsPerConn: -1}
			if name != "none" {
				m, err := prometheus.New(prometheus.Options{})
				if err != nil {
					b.Fatal(err)
				}
				opts.Observers = []observe.Observer{m}
			}
			if name == "prometheus+json" {
				alog, err := accesslog.New(accesslog.Options{Path: filepath.Join(b.TempDir(), "access.log"), Format: accesslog.JSON})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { alog.Close() }) // after the service's shutdown, registered later
				opts.Observers = append(opts.Observers, alog)
			}
			svc := proxytest.NewService(b, "bench", proxytest.FixedPeer{Peer: peer}, opts)
			proxytest.BenchmarkGet(b, proxytest.Serve(b, svc), "/1k", size, "Accept: */*")
			b.StopTimer()
			if st := svc.PoolStats(); st.New != 1 {
				b.Fatalf("upstream connections opened: %d", st.New)
			}
		})
	}
}
