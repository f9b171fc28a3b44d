package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/gotthard-proxy/gotthard/cache"
	"github.com/gotthard-proxy/gotthard/cache/disk"
	"github.com/gotthard-proxy/gotthard/cache/memory"
	"github.com/gotthard-proxy/gotthard/proxy"
)

// cacheFlags are the gateway's cache flags: -cache SIZE turns a cache on (in memory,
// or on disk with -cache-dir), which stores what RFC 9111 lets a shared cache store,
// answers PURGE from loopback, and lets every other method through.
type cacheFlags struct {
	size        string
	dir         string
	cacheStatus bool
}

func addCacheFlags(fs *flag.FlagSet) *cacheFlags {
	f := &cacheFlags{}
	fs.StringVar(&f.size, "cache", "", "cache responses by RFC 9111 in this much memory, or disk with -cache-dir (e.g. 64MiB, 1GiB; empty: no cache); PURGE from loopback removes a URL")
	fs.StringVar(&f.dir, "cache-dir", "", "keep the -cache on disk in this directory (it survives restarts)")
	fs.BoolVar(&f.cacheStatus, "cache-status", false, "add a Cache-Status field (RFC 9211) to responses with -cache")
	return f
}

// build returns the cache the flags ask for, or nil for none.
func (f *cacheFlags) build() (*cache.Cache, error) {
	if f.size == "" {
		if f.dir != "" || f.cacheStatus {
			return nil, errors.New("-cache-dir and -cache-status need -cache SIZE")
		}
		return nil, nil
	}
	size, err := parseSize(f.size)
	if err != nil {
		return nil, fmt.Errorf("-cache: %w", err)
	}
	var st cache.Storage
	if f.dir != "" {
		if st, err = disk.Open(f.dir, disk.Options{MaxBytes: size}); err != nil {
			return nil, fmt.Errorf("-cache-dir: %w", err)
		}
	} else if st, err = memory.New(memory.Options{MaxBytes: size}); err != nil {
		return nil, fmt.Errorf("-cache: %w", err)
	}
	return cache.New(cache.Options{Storage: st, CacheStatus: f.cacheStatus, MaxObjectBytes: min(size/8, cache.DefaultMaxObjectBytes)})
}

// parseSize parses a size such as 64MiB, 1GiB, 512KiB, 10MB or 4096 (bytes).
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	num, mult := s, int64(1)
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = n, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size such as 64MiB", s)
	}
	return n * mult, nil
}

// gwCache is the cache phases both of the gateway's proxy types share.
type gwCache struct{ c *cache.Cache }

// requestFilter refuses PURGE from anywhere but loopback when the cache is on.
func (g gwCache) requestFilter(s *proxy.Session) (proxy.Result, error) {
	if g.c != nil && s.Request().Method == "PURGE" && !fromLoopback(s) {
		return proxy.Handled, s.Respond(403, "PURGE is allowed from loopback only\n")
	}
	return proxy.Continue, nil
}

func (g gwCache) isPurge(s *proxy.Session) bool {
	return g.c != nil && s.Request().Method == "PURGE" && fromLoopback(s)
}

func fromLoopback(s *proxy.Session) bool {
	a, ok := s.ClientAddr().(*net.TCPAddr)
	if !ok {
		_, unix := s.ClientAddr().(*net.UnixAddr)
		return unix // a Unix socket's clients are local
	}
	return a.IP.IsLoopback()
}

// The phases of gateway and balanced that hand over to gwCache.

func (g *gateway) RequestFilter(_ context.Context, s *proxy.Session, _ struct{}) (proxy.Result, error) {
	return g.cache.requestFilter(s)
}

func (g *gateway) RequestCacheFilter(context.Context, *proxy.Session, struct{}) (*cache.Cache, error) {
	return g.cache.c, nil
}

func (g *gateway) IsPurge(_ context.Context, s *proxy.Session, _ struct{}) bool {
	return g.cache.isPurge(s)
}

func (b *balanced) RequestFilter(_ context.Context, s *proxy.Session, _ *balancedCtx) (proxy.Result, error) {
	return b.cache.requestFilter(s)
}

func (b *balanced) RequestCacheFilter(context.Context, *proxy.Session, *balancedCtx) (*cache.Cache, error) {
	return b.cache.c, nil
}

func (b *balanced) IsPurge(_ context.Context, s *proxy.Session, _ *balancedCtx) bool {
	return b.cache.isPurge(s)
}
