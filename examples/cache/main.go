// Command cache is a caching reverse proxy that uses every cache phase of Gotthard:
//
//   - RequestCacheFilter: GET and HEAD are cached, except under /private/ and for
//     requests that carry a Cookie or Authorization.
//
//   - CacheKey: the default key plus the client's device class (mobile or desktop), so
//     each class gets its own copy of a page.
//
//   - CacheVaryFilter: a response that varies on User-Agent varies on the device class
//     instead, not on each of thousands of User-Agent strings.
//
//   - CacheHitFilter: an X-Cache-Bypass request header from loopback forces a miss.
//
//   - ResponseCacheFilter: a response with Set-Cookie is never stored; one without any
//     freshness information is kept for -default-ttl (with s-maxage); the rest follows
//     RFC 9111.
//
//   - ShouldServeStale: when the origin fails, a stale copy up to -stale-on-error old
//     answers, whatever stale-if-error says.
//
//   - IsPurge and PurgeResponseFilter: PURGE from loopback removes a URL and answers in
//     JSON.
//
//   - Logging: one line per request with its cache status.
//
//     go run ./examples/cache                       # in front of a demo origin
//     go run ./examples/cache -upstream 127.0.0.1:9000 -size 256MiB
//     curl -i http://127.0.0.1:6190/1k; curl -i http://127.0.0.1:6190/1k    # miss, then hit
//     curl -X PURGE http://127.0.0.1:6190/1k
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gotthard-proxy/gotthard/cache"
	"github.com/gotthard-proxy/gotthard/cache/memory"
	"github.com/gotthard-proxy/gotthard/examples/internal/demo"
	"github.com/gotthard-proxy/gotthard/message"
	"github.com/gotthard-proxy/gotthard/proxy"
	"github.com/gotthard-proxy/gotthard/server"
)

// cacheCtx is the per-request state: the device class the key was made with.
type cacheCtx struct {
	device string
}

// cacher proxies to one origin through a memory cache.
type cacher struct {
	proxy.Phases[*cacheCtx]
	peer         *proxy.Peer
	cache        *cache.Cache
	defaultTTL   time.Duration
	staleOnError time.Duration
	log          *slog.Logger
}

// A wrong phase signature fails to compile here, naming the method.
var _ proxy.ProxyHTTP[*cacheCtx] = (*cacher)(nil)

func (*cacher) NewCtx() *cacheCtx { return &cacheCtx{} }

func (p *cacher) UpstreamPeer(context.Context, *proxy.Session, *cacheCtx) (*proxy.Peer, error) {
	return p.peer, nil
}

// RequestFilter refuses PURGE from anywhere but loopback.
func (p *cacher) RequestFilter(_ context.Context, s *proxy.Session, _ *cacheCtx) (proxy.Result, error) {
	if s.Request().Method == "PURGE" && !loopback(s) {
		return proxy.Handled, s.Respond(403, "PURGE is allowed from loopback only\n")
	}
	return proxy.Continue, nil
}

// RequestCacheFilter turns the cache on for what may be shared. (Methods other than
// GET and HEAD pass it too: a successful POST then invalidates the URL's copy, the
// one for the client's device class, as CacheKey names it.)
func (p *cacher) RequestCacheFilter(_ context.Context, s *proxy.Session, _ *cacheCtx) (*cache.Cache, error) {
	req := s.Request()
	if strings.HasPrefix(req.Path(), "/private/") || req.Header.Has("Cookie") || req.Header.Has("Authorization") {
		return nil, nil
	}
	return p.cache, nil
}

// CacheKey adds the device class to the default key.
func (p *cacher) CacheKey(ctx context.Context, s *proxy.Session, c *cacheCtx) (string, error) {
	key, err := p.Phases.CacheKey(ctx, s, c)
	c.device = deviceClass(s.Request().Header.Get("User-Agent"))
	return key + " " + c.device, err
}

// CacheVaryFilter keys User-Agent by device class; other Vary fields as RFC 9111 says.
func (p *cacher) CacheVaryFilter(ctx context.Context, s *proxy.Session, c *cacheCtx, stored *message.ResponseHeader) (string, bool) {
	if !stored.Header.HasToken("Vary", "User-Agent") {
		return p.Phases.CacheVaryFilter(ctx, s, c, stored)
	}
	// (The key has the device class already; the other fields still count.)
	var h message.ResponseHeader
	h.CopyFrom(stored)
	h.Header.Del("Vary")
	for _, name := range strings.Split(stored.Header.Get("Vary"), ",") {
		if name = strings.TrimSpace(name); name != "" && !strings.EqualFold(name, "User-Agent") {
			h.Header.Add("Vary", name)
		}
	}
	return p.Phases.CacheVaryFilter(ctx, s, c, &h)
}

// CacheHitFilter lets an operator on the machine force a miss.
func (p *cacher) CacheHitFilter(_ context.Context, s *proxy.Session, _ *cacheCtx, _ *cache.Meta, _ bool) (proxy.HitAction, error) {
	if s.Request().Header.Has("X-Cache-Bypass") && loopback(s) {
		return proxy.HitMiss, nil
	}
	return proxy.HitServe, nil
}

// ResponseCacheFilter never stores a Set-Cookie, and keeps responses without freshness
// information for defaultTTL.
func (p *cacher) ResponseCacheFilter(ctx context.Context, s *proxy.Session, c *cacheCtx, resp *message.ResponseHeader) (proxy.CacheDecision, error) {
	if resp.Header.Has("Set-Cookie") {
		return proxy.CacheDecision{Reason: "Set-Cookie"}, nil
	}
	if resp.Status == 200 && !resp.Header.Has("Cache-Control") && !resp.Header.Has("Expires") {
		resp.Header.Set("Cache-Control", "s-maxage="+strconv.Itoa(int(p.defaultTTL.Seconds())))
	}
	return p.Phases.ResponseCacheFilter(ctx, s, c, resp)
}

// ShouldServeStale serves a copy stale by up to staleOnError when the origin fails.
func (p *cacher) ShouldServeStale(_ context.Context, _ *proxy.Session, _ *cacheCtx, meta *cache.Meta, _ *proxy.Error, allowed bool) bool {
	cc := cache.ParseCacheControl(&meta.Response.Header)
	f := p.cache.Policy().Freshness(meta, &cc, time.Now())
	return allowed || f.Age-f.Lifetime <= p.staleOnError
}

// IsPurge: PURGE (RequestFilter let only loopback's through).
func (p *cacher) IsPurge(_ context.Context, s *proxy.Session, _ *cacheCtx) bool {
	return s.Request().Method == "PURGE"
}

// PurgeResponseFilter answers a purge in JSON.
func (p *cacher) PurgeResponseFilter(_ context.Context, s *proxy.Session, _ *cacheCtx, found bool, _ *message.ResponseHeader) error {
	status := 200
	if !found {
		status = 404
	}
	resp := &message.ResponseHeader{Status: status}
	resp.Header.Set("Content-Type", "application/json")
	return s.WriteResponse(resp, fmt.Appendf(nil, "{\"purged\":%t}\n", found))
}

// Logging writes one line per request with its cache status.
func (p *cacher) Logging(_ context.Context, s *proxy.Session, c *cacheCtx, err error) {
	p.log.Info("request", "method", s.Request().Method, "target", s.Request().Target,
		"status", s.Status(), "cache", s.CacheStatus().String(), "device", c.device, "err", err)
}

// deviceClass is "mobile" for a User-Agent that says so, "desktop" otherwise.
func deviceClass(ua string) string {
	if strings.Contains(ua, "Mobile") || strings.Contains(ua, "Android") {
		return "mobile"
	}
	return "desktop"
}

func loopback(s *proxy.Session) bool {
	a, ok := s.ClientAddr().(*net.TCPAddr)
	return ok && a.IP.IsLoopback()
}

func main() {
	if err := run(os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		if errors.Is(err, server.ErrConfigTested) {
			fmt.Println("configuration OK")
			return
		}
		fmt.Fprintln(os.Stderr, "cache:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("cache", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:6190", "address to accept clients on")
	upstream := fs.String("upstream", "", "origin HOST:PORT (empty: start a demo origin)")
	size := fs.Int64("size", 64<<20, "bytes of memory for the cache")
	defaultTTL := fs.Duration("default-ttl", time.Minute, "how long a 200 without Cache-Control or Expires is kept")
	staleOnError := fs.Duration("stale-on-error", 10*time.Minute, "serve a copy stale by up to this when the origin fails (0: only as stale-if-error allows)")
	sflags := server.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *defaultTTL < time.Second {
		return fmt.Errorf("-default-ttl %v: at least a second", *defaultTTL)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	srv, err := server.NewFromFlags(*sflags, server.Options{Logger: logger})
	if err != nil {
		return err
	}
	st, err := memory.New(memory.Options{MaxBytes: *size})
	if err != nil {
		return fmt.Errorf("-size: %w", err)
	}
	ch, err := cache.New(cache.Options{Storage: st, CacheStatus: true})
	if err != nil {
		return err
	}
	target := *upstream
	if target == "" {
		origin, err := demo.Start("Gotthard")
		if err != nil {
			return err
		}
		defer origin.Close()
		target = origin.Addr()
		if !sflags.Test { // -t only checks
			fmt.Printf("Try:  curl -i http://%s/1k   (twice: a miss, then a hit)\n", *listen)
		}
	}
	peer, err := proxy.NewPeer(target)
	if err != nil {
		return err
	}
	app := &cacher{peer: peer, cache: ch, defaultTTL: *defaultTTL, staleOnError: *staleOnError, log: logger}
	svc, err := proxy.NewService("cache", app, proxy.ServiceOptions{Logger: logger})
	if err != nil {
		return err
	}
	svc.AddTCP(*listen)
	if err := srv.Add(svc); err != nil {
		return err
	}
	return srv.Run()
}
