package accesslog_test

import (
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/gotthard-proxy/gotthard/observe"
	"github.com/gotthard-proxy/gotthard/observe/accesslog"
	"github.com/gotthard-proxy/gotthard/proxy"
	"github.com/gotthard-proxy/gotthard/proxy/proxytest"
)

// BenchmarkProxy measures a keep-alive GET through a real proxy on loopback to an
// origin answering 1 KiB, without an access log and with one in each format, written
// to a file: the difference is the access log's cost per request.
func BenchmarkProxy(b *testing.B) {
	origin := proxytest.NewRawOrigin(b, 1<<10)
	peer, err := proxy.NewPeer(origin)
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"none", "combined", "json"} {
		b.Run(name, func(b *testing.B) {
			var obs []observe.Observer
			if name != "none" {
				f, _ := accesslog.ParseFormat(name)
				alog, err := accesslog.New(accesslog.Options{Path: filepath.Join(b.TempDir(), "access.log"), Format: f})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { // after the service's shutdown, registered later
					if alog.Dropped() != 0 {
						b.Errorf("%d lines dropped", alog.Dropped())
					}
					alog.Close()
				})
				obs = append(obs, alog)
			}
			svc := proxytest.NewService(b, "bench", &app{origin: peer}, proxy.ServiceOptions{
				Observers: obs, MaxRequestsPerConn: -1, Logger: slog.New(slog.DiscardHandler),
			})
			proxytest.BenchmarkGet(b, proxytest.Serve(b, svc), "/bench?x=1", 1<<10, "Referer: http://bench/")
		})
	}
}
