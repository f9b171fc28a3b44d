package proxy

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"testing"

	"github.com/gotthard-proxy/gotthard/cache"
	"github.com/gotthard-proxy/gotthard/cache/memory"
)

// BenchmarkCacheHit measures a 1 KiB response served from a memory cache to one
// keep-alive HTTP/1.1 client: the cache phases, the lookup, the freshness decision and
// the served head, with the same request and connection work as BenchmarkProxyGet.
func BenchmarkCacheHit(b *testing.B) {
	const size = 1 << 10
	body := bytes.Repeat([]byte("x"), size)
	_, origin := startOrigin(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.Write(body)
	}))
	st, err := memory.New(memory.Options{MaxBytes: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	ch, err := cache.New(cache.Options{Storage: st})
	if err != nil {
		b.Fatal(err)
	}
	app := benchCacheProxy{peer: testPeer(origin), cache: ch}
	svc, _ := newTestService[struct{}](b, app, ServiceOptions{MaxRequestsPerConn: -1})
	roundTrip := rawGetter(b, startProxy(b, svc), size)
	for range 100 {
		roundTrip()
	}
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		roundTrip()
	}
}

// benchCacheProxy proxies to one peer through a cache, with no other phase.
type benchCacheProxy struct {
	Phases[struct{}]
	peer  *Peer
	cache *cache.Cache
}

func (benchCacheProxy) NewCtx() struct{} { return struct{}{} }

func (p benchCacheProxy) UpstreamPeer(context.Context, *Session, struct{}) (*Peer, error) {
	return p.peer, nil
}

func (p benchCacheProxy) RequestCacheFilter(context.Context, *Session, struct{}) (*cache.Cache, error) {
	return p.cache, nil
}
