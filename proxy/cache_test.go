package proxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/cache"
	"github.com/gotthard-proxy/gotthard/cache/memory"
	"github.com/gotthard-proxy/gotthard/message"
	"github.com/gotthard-proxy/gotthard/observe"
)

// cacheProxy proxies to one peer through a cache, answers PURGE, and records the
// cache status of each request.
type cacheProxy struct {
	Phases[*testCtx]
	peer  *Peer
	cache *cache.Cache
	mu    sync.Mutex
	log   []CacheStatus
	more  chan struct{} // signalled by each Logging
	asked atomic.Int32  // RequestCacheFilter calls
}

func (*cacheProxy) NewCtx() *testCtx { return &testCtx{} }

func (p *cacheProxy) UpstreamPeer(context.Context, *Session, *testCtx) (*Peer, error) {
	return p.peer, nil
}

func (p *cacheProxy) RequestCacheFilter(context.Context, *Session, *testCtx) (*cache.Cache, error) {
	p.asked.Add(1)
	return p.cache, nil
}

func (p *cacheProxy) IsPurge(_ context.Context, s *Session, _ *testCtx) bool {
	return s.Request().Method == "PURGE"
}

func (p *cacheProxy) Logging(_ context.Context, s *Session, _ *testCtx, _ error) {
	p.mu.Lock()
	p.log = append(p.log, s.CacheStatus())
	p.mu.Unlock()
	select {
	case p.more <- struct{}{}:
	default:
	}
}

// statuses returns the cache statuses of the requests, sorted (a request's Logging
// runs after its response was written, so the client may send the next one first),
// as one string, once n of them ran Logging.
func (p *cacheProxy) statuses(t *testing.T, n int) string {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		p.mu.Lock()
		have := len(p.log)
		p.mu.Unlock()
		if have >= n {
			break
		}
		select {
		case <-p.more:
		case <-deadline:
			t.Fatalf("%d requests logged, want %d", have, n)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	names := make([]string, len(p.log))
	for i, s := range p.log {
		names[i] = s.String()
	}
	slices.Sort(names)
	var b strings.Builder
	for i, s := range names {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s)
	}
	return b.String()
}

// startCacheProxy runs a caching proxy in front of origin, with a memory store of
// 8 MiB, and returns it with its address.
func startCacheProxy(t *testing.T, origin string, lock time.Duration) (*cacheProxy, string) {
	t.Helper()
	st, err := memory.New(memory.Options{MaxBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := cache.New(cache.Options{Storage: st, LockTimeout: lock})
	if err != nil {
		t.Fatal(err)
	}
	app := &cacheProxy{peer: testPeer(origin), cache: ch, more: make(chan struct{}, 1)}
	svc, _ := newTestService[*testCtx](t, app, ServiceOptions{})
	return app, startProxy(t, svc)
}

// get sends a request through the proxy and returns the response and its body.
func cacheGet(t *testing.T, c *http.Client, method, url string, h ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(h); i += 2 {
		req.Header.Set(h[i], h[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return resp, string(b)
}

// TestCacheHitMissAndAge: a cacheable response is fetched once, then served from the
// store with an Age, through ResponseFilter; HEAD is answered from the stored GET.
func TestCacheHitMissAndAge(t *testing.T) {
	var hits atomic.Int32
	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("ETag", `"v1"`)
		fmt.Fprintf(w, "body of %s", r.URL.Path)
	}))
	app, addr := startCacheProxy(t, origin, 0)
	c := testClient(t)
	for i := range 3 {
		resp, body := cacheGet(t, c, "GET", "http://"+addr+"/a")
		if resp.StatusCode != 200 || body != "body of /a" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
		if i > 0 && resp.Header.Get("Age") == "" {
			t.Errorf("request %d: a hit without Age", i)
		}
	}
	resp, body := cacheGet(t, c, "HEAD", "http://"+addr+"/a")
	if resp.StatusCode != 200 || body != "" || resp.ContentLength != int64(len("body of /a")) {
		t.Errorf("HEAD: %d %q, length %d", resp.StatusCode, body, resp.ContentLength)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("origin saw %d requests, want 1", n)
	}
	if got, want := app.statuses(t, 4), "hit hit hit miss"; got != want {
		t.Errorf("statuses %q, want %q", got, want)
	}
}

// TestCacheNotStored: responses a shared cache must not store are fetched each time.
func TestCacheNotStored(t *testing.T) {
	for _, cc := range []string{"no-store", "private", "max-age=60, no-store", ""} {
		t.Run(cc, func(t *testing.T) {
			var hits atomic.Int32
			_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				if cc != "" {
					w.Header().Set("Cache-Control", cc)
				}
				io.WriteString(w, "x")
			}))
			_, addr := startCacheProxy(t, origin, 0)
			c := testClient(t)
			for range 2 {
				cacheGet(t, c, "GET", "http://"+addr+"/")
			}
			if n := hits.Load(); n != 2 {
				t.Errorf("origin saw %d requests, want 2", n)
			}
		})
	}
}

// TestCacheStampede: 1,000 concurrent requests for one cold key whose origin takes two
// seconds make one upstream request, and every client gets the whole body.
func TestCacheStampede(t *testing.T) {
	const clients = 1000
	raiseFileLimit(t, 3*clients)
	body := strings.Repeat("0123456789abcdef", 4096) // 64 KiB
	var hits atomic.Int32
	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		time.Sleep(2 * time.Second) // a slow origin: the others arrive meanwhile
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, body)
	}))
	_, addr := startCacheProxy(t, origin, 10*time.Second)
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		wg.Go(func() {
			resp, err := c.Get("http://" + addr + "/cold")
			if err != nil {
				errs <- err
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(b) != body {
				errs <- fmt.Errorf("body of %d bytes, err %v", len(b), err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("origin saw %d requests, want 1", n)
	}
}

// TestCacheStreamingFill: a request that comes during a fill gets the body as it
// grows, before the origin has finished; a fill cut short is not stored.
func TestCacheStreamingFill(t *testing.T) {
	release := make(chan struct{})
	var hits atomic.Int32
	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "first half;")
		w.(http.Flusher).Flush()
		if n == 1 {
			<-release
		}
		io.WriteString(w, "second half")
	}))
	app, addr := startCacheProxy(t, origin, 10*time.Second)
	c1, c2 := testClient(t), testClient(t)
	first, err := c1.Get("http://" + addr + "/s")
	if err != nil {
		t.Fatal(err)
	}
	defer first.Body.Close()
	buf := make([]byte, len("first half;"))
	if _, err := io.ReadFull(first.Body, buf); err != nil {
		t.Fatal(err)
	}
	second, err := c2.Get("http://" + addr + "/s")
	if err != nil {
		t.Fatal(err)
	}
	defer second.Body.Close()
	if _, err := io.ReadFull(second.Body, buf); err != nil || string(buf) != "first half;" {
		t.Fatalf("the second request read %q, %v before the origin finished", buf, err)
	}
	close(release)
	for i, r := range []*http.Response{first, second} {
		rest, err := io.ReadAll(r.Body)
		if err != nil || string(rest) != "second half" {
			t.Errorf("response %d: rest %q, %v", i, rest, err)
		}
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("origin saw %d requests, want 1", n)
	}
	_, body := cacheGet(t, c1, "GET", "http://"+addr+"/s")
	if body != "first half;second half" {
		t.Errorf("hit body %q", body)
	}
	if got := app.statuses(t, 3); got != "collapsed hit miss" {
		t.Errorf("statuses %q, want \"collapsed hit miss\"", got)
	}
}

// TestCacheCutFillNotStored: a response whose body ends short is never served as a
// hit.
func TestCacheCutFillNotStored(t *testing.T) {
	var hits atomic.Int32
	origin := scriptedOrigin(t, func(c net.Conn) {
		br := make([]byte, 4096)
		c.Read(br)
		hits.Add(1)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 100\r\n\r\nonly part of it")
	})
	_, addr := startCacheProxy(t, origin, 0)
	for range 2 {
		c := testClient(t)
		resp, err := c.Get("http://" + addr + "/cut")
		if err == nil {
			io.ReadAll(resp.Body)
			resp.Body.Close()
		}
	}
	if n := hits.Load(); n != 2 {
		t.Errorf("origin saw %d requests, want 2: the cut response must not be stored", n)
	}
}

// TestCacheRevalidate: a stale response with a validator is validated with the
// origin; its 304 refreshes the stored one, which answers.
func TestCacheRevalidate(t *testing.T) {
	var hits, conditional atomic.Int32
	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=0")
		w.Header().Set("ETag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			conditional.Add(1)
			w.Header().Set("X-Refreshed", "yes")
			w.WriteHeader(304)
			return
		}
		io.WriteString(w, "stored body")
	}))
	app, addr := startCacheProxy(t, origin, 0)
	c := testClient(t)
	cacheGet(t, c, "GET", "http://"+addr+"/r")
	resp, body := cacheGet(t, c, "GET", "http://"+addr+"/r")
	if resp.StatusCode != 200 || body != "stored body" || resp.Header.Get("X-Refreshed") != "yes" {
		t.Errorf("revalidated: %d %q, X-Refreshed %q", resp.StatusCode, body, resp.Header.Get("X-Refreshed"))
	}
	if conditional.Load() != 1 || hits.Load() != 2 {
		t.Errorf("origin: %d requests, %d conditional; want 2 and 1", hits.Load(), conditional.Load())
	}
	if got := app.statuses(t, 2); got != "miss revalidated" {
		t.Errorf("statuses %q", got)
	}
}

// TestCacheClientConditionalAndRange: a client's own conditional request and its
// ranges are answered from the stored response.
func TestCacheClientConditionalAndRange(t *testing.T) {
	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("ETag", `"abc"`)
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "0123456789")
	}))
	_, addr := startCacheProxy(t, origin, 0)
	c := testClient(t)
	u := "http://" + addr + "/c"
	cacheGet(t, c, "GET", u)
	if resp, _ := cacheGet(t, c, "GET", u, "If-None-Match", `W/"abc"`); resp.StatusCode != 304 || resp.Header.Get("ETag") != `"abc"` {
		t.Errorf("If-None-Match: %d, ETag %q", resp.StatusCode, resp.Header.Get("ETag"))
	}
	if resp, body := cacheGet(t, c, "GET", u, "Range", "bytes=2-4"); resp.StatusCode != 206 || body != "234" || resp.Header.Get("Content-Range") != "bytes 2-4/10" {
		t.Errorf("one range: %d %q %q", resp.StatusCode, body, resp.Header.Get("Content-Range"))
	}
	if resp, body := cacheGet(t, c, "GET", u, "Range", "bytes=0-0,-2"); resp.StatusCode != 206 ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "multipart/byteranges") ||
		!strings.Contains(body, "Content-Range: bytes 0-0/10\r\n\r\n0\r\n") || !strings.Contains(body, "Content-Range: bytes 8-9/10\r\n\r\n89\r\n") {
		t.Errorf("two ranges: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if resp, _ := cacheGet(t, c, "GET", u, "Range", "bytes=20-"); resp.StatusCode != 416 || resp.Header.Get("Content-Range") != "bytes */10" {
		t.Errorf("unsatisfiable: %d %q", resp.StatusCode, resp.Header.Get("Content-Range"))
	}
}

// TestCacheVary: responses that vary are stored per variant.
func TestCacheVary(t *testing.T) {
	var hits atomic.Int32
	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Vary", "Accept-Language")
		io.WriteString(w, "lang="+r.Header.Get("Accept-Language"))
	}))
	app, addr := startCacheProxy(t, origin, 0)
	c := testClient(t)
	for _, lang := range []string{"de", "fr", "de", "fr", "it"} {
		if _, body := cacheGet(t, c, "GET", "http://"+addr+"/v", "Accept-Language", lang); body != "lang="+lang {
			t.Errorf("%s: body %q", lang, body)
		}
	}
	if n := hits.Load(); n != 3 {
		t.Errorf("origin saw %d requests, want 3", n)
	}
	if got := app.statuses(t, 5); got != "hit hit miss miss miss" {
		t.Errorf("statuses %q", got)
	}
}

// TestCachePurgeAndInvalidation: a purge request removes the stored response; a
// successful POST to the same target invalidates it.
func TestCachePurgeAndInvalidation(t *testing.T) {
	var hits atomic.Int32
	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=60")
		if r.URL.Query().Get("to") != "" {
			w.Header().Set("Location", "/"+r.URL.Query().Get("to"))
		}
		io.WriteString(w, "n="+strconv.Itoa(int(hits.Load())))
	}))
	_, addr := startCacheProxy(t, origin, 0)
	c := testClient(t)
	u := "http://" + addr + "/p"
	cacheGet(t, c, "GET", u)
	if resp, _ := cacheGet(t, c, "PURGE", u); resp.StatusCode != 200 {
		t.Errorf("PURGE of a stored key: %d, want 200", resp.StatusCode)
	}
	if resp, _ := cacheGet(t, c, "PURGE", u); resp.StatusCode != 404 {
		t.Errorf("PURGE again: %d, want 404", resp.StatusCode)
	}
	if _, body := cacheGet(t, c, "GET", u); body != "n=2" {
		t.Errorf("after the purge: %q, want a miss (n=2)", body)
	}
	if _, body := cacheGet(t, c, "GET", u); body != "n=2" {
		t.Errorf("stored again: %q", body)
	}
	cacheGet(t, c, "POST", u)
	if _, body := cacheGet(t, c, "GET", u); body != "n=4" {
		t.Errorf("after a POST: %q, want a miss (n=4)", body)
	}
	// A POST answered with a Location invalidates that URI too.
	other := "http://" + addr + "/other"
	cacheGet(t, c, "GET", other) // n=5, stored
	cacheGet(t, c, "POST", u+"?to=other")
	if _, body := cacheGet(t, c, "GET", other); body != "n=7" {
		t.Errorf("after a POST that named it in Location: %q, want a miss (n=7)", body)
	}
}

// TestCacheStaleIfError: a stale response is served when the origin fails, as
// stale-if-error allows.
func TestCacheStaleIfError(t *testing.T) {
	var hits atomic.Int32
	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) > 1 {
			w.WriteHeader(503)
			return
		}
		w.Header().Set("Cache-Control", "max-age=1, stale-if-error=600")
		w.Header().Set("Age", "5") // stale at once
		io.WriteString(w, "good")
	}))
	app, addr := startCacheProxy(t, origin, 0)
	c := testClient(t)
	cacheGet(t, c, "GET", "http://"+addr+"/e")
	resp, body := cacheGet(t, c, "GET", "http://"+addr+"/e")
	if resp.StatusCode != 200 || body != "good" {
		t.Errorf("with the origin failing: %d %q, want the stale 200", resp.StatusCode, body)
	}
	if got := app.statuses(t, 2); got != "miss stale" {
		t.Errorf("statuses %q", got)
	}
}

// TestCacheHitPhases: a hit runs ResponseFilter and ResponseBodyFilter, not the
// upstream response phases; CacheHitFilter can force a miss.
func TestCacheHitPhases(t *testing.T) {
	var hits atomic.Int32
	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "abc")
	}))
	st, _ := memory.New(memory.Options{MaxBytes: 1 << 20})
	ch, _ := cache.New(cache.Options{Storage: st})
	app := &phaseCacheProxy{cacheProxy: cacheProxy{peer: testPeer(origin), cache: ch}}
	svc, _ := newTestService[*testCtx](t, app, ServiceOptions{})
	addr := startProxy(t, svc)
	c := testClient(t)
	for i := range 2 {
		resp, body := cacheGet(t, c, "GET", "http://"+addr+"/h")
		if body != "ABC" || resp.Header.Get("X-Upstream-Filter") != "1" || resp.Header.Get("X-Response-Filter") != "1" {
			t.Errorf("request %d: %q, headers %v", i, body, resp.Header)
		}
	}
	if app.upstreamFilters.Load() != 1 {
		t.Errorf("UpstreamResponseFilter ran %d times, want 1 (not on the hit)", app.upstreamFilters.Load())
	}
	cacheGet(t, c, "GET", "http://"+addr+"/h", "X-Force-Miss", "1")
	if n := hits.Load(); n != 2 {
		t.Errorf("origin saw %d requests, want 2 (one forced miss)", n)
	}
}

type phaseCacheProxy struct {
	cacheProxy
	upstreamFilters atomic.Int32
}

func (p *phaseCacheProxy) UpstreamResponseFilter(_ context.Context, _ *Session, _ *testCtx, resp *message.ResponseHeader) error {
	p.upstreamFilters.Add(1)
	resp.Header.Set("X-Upstream-Filter", "1") // stored with the response
	return nil
}

func (p *phaseCacheProxy) ResponseFilter(_ context.Context, _ *Session, _ *testCtx, resp *message.ResponseHeader) error {
	resp.Header.Set("X-Response-Filter", "1")
	resp.Header.Del("Content-Length") // the body filter changes it
	return nil
}

func (p *phaseCacheProxy) ResponseBodyFilter(_ context.Context, _ *Session, _ *testCtx, chunk []byte, _ bool) ([]byte, error) {
	return []byte(strings.ToUpper(string(chunk))), nil
}

func (p *phaseCacheProxy) CacheHitFilter(_ context.Context, s *Session, _ *testCtx, _ *cache.Meta, _ bool) (HitAction, error) {
	if s.Request().Header.Has("X-Force-Miss") {
		return HitMiss, nil
	}
	return HitServe, nil
}

// TestCacheStaleWhileRevalidate: within stale-while-revalidate, the stale response
// answers at once and a background refresh stores the new one.
func TestCacheStaleWhileRevalidate(t *testing.T) {
	var hits atomic.Int32
	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		if n == 1 {
			w.Header().Set("Cache-Control", "max-age=1, stale-while-revalidate=600")
			w.Header().Set("Age", "5") // stale at once, within the window
		} else {
			w.Header().Set("Cache-Control", "max-age=600")
		}
		fmt.Fprintf(w, "v%d", n)
	}))
	app, addr := startCacheProxy(t, origin, 0)
	c := testClient(t)
	cacheGet(t, c, "GET", "http://"+addr+"/w")
	if _, body := cacheGet(t, c, "GET", "http://"+addr+"/w"); body != "v1" {
		t.Fatalf("within the window: %q, want the stale v1", body)
	}
	// The refresh runs on: wait for its fill to end.
	deadline := time.Now().Add(5 * time.Second)
	for hits.Load() < 2 || app.cache.Fills() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no refresh: %d origin requests, %d fills", hits.Load(), app.cache.Fills())
		}
		time.Sleep(time.Millisecond)
	}
	if _, body := cacheGet(t, c, "GET", "http://"+addr+"/w"); body != "v2" {
		t.Errorf("after the refresh: %q, want v2 from the store", body)
	}
	if n := hits.Load(); n != 2 {
		t.Errorf("origin saw %d requests, want 2", n)
	}
	if got := app.statuses(t, 3); got != "hit miss stale" {
		t.Errorf("statuses %q", got)
	}
}

// TestCacheSurrogateControl: the cache announces itself with Surrogate-Capability,
// stores by the Surrogate-Control addressed to it over Cache-Control, and keeps
// Surrogate-Control from clients.
func TestCacheSurrogateControl(t *testing.T) {
	var hits atomic.Int32
	var capability atomic.Value
	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		capability.Store(r.Header.Get("Surrogate-Capability"))
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Surrogate-Control", "max-age=600;gotthard")
		io.WriteString(w, "edge only")
	}))
	_, addr := startCacheProxy(t, origin, 0)
	c := testClient(t)
	for i := range 2 {
		resp, body := cacheGet(t, c, "GET", "http://"+addr+"/s")
		if body != "edge only" || resp.Header.Get("Surrogate-Control") != "" || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("request %d: %q, Surrogate-Control %q, Cache-Control %q", i, body,
				resp.Header.Get("Surrogate-Control"), resp.Header.Get("Cache-Control"))
		}
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("origin saw %d requests, want 1", n)
	}
	if got := capability.Load(); got != `gotthard="Surrogate/1.0"` {
		t.Errorf("Surrogate-Capability %q", got)
	}
}

// cacheRecorder records the cache status observers see at RequestEnd.
type cacheRecorder struct {
	observe.Base
	mu  sync.Mutex
	got []string
}

func (r *cacheRecorder) RequestEnd(req *observe.Request) {
	r.mu.Lock()
	r.got = append(r.got, req.Cache)
	r.mu.Unlock()
}

// TestCacheObserved: observers see what the cache did.
func TestCacheObserved(t *testing.T) {
	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "x")
	}))
	st, _ := memory.New(memory.Options{MaxBytes: 1 << 20})
	ch, _ := cache.New(cache.Options{Storage: st})
	app := &cacheProxy{peer: testPeer(origin), cache: ch, more: make(chan struct{}, 1)}
	rec := &cacheRecorder{}
	svc, _ := newTestService[*testCtx](t, app, ServiceOptions{Observers: []observe.Observer{rec}})
	addr := startProxy(t, svc)
	c := testClient(t)
	for range 2 {
		cacheGet(t, c, "GET", "http://"+addr+"/o")
	}
	cacheGet(t, c, "POST", "http://"+addr+"/o")
	app.statuses(t, 3) // (observers see RequestEnd before Logging)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	slices.Sort(rec.got)
	if got := strings.Join(rec.got, " "); got != "bypass hit miss" {
		t.Errorf("observers saw %q, want \"bypass hit miss\"", got)
	}
}

// TestCacheHTTP2: the cache answers HTTP/2 clients (h2c here) as HTTP/1.1 ones, ranges
// and collapsed fills included.
func TestCacheHTTP2(t *testing.T) {
	var hits atomic.Int32
	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "0123456789")
	}))
	app, addr := startCacheProxy(t, origin, 0)
	c := h2cClient(t)
	for i := range 2 {
		resp, body := cacheGet(t, c, "GET", "http://"+addr+"/h2")
		if resp.ProtoMajor != 2 || body != "0123456789" {
			t.Fatalf("request %d: %s %q", i, resp.Proto, body)
		}
	}
	if resp, body := cacheGet(t, c, "GET", "http://"+addr+"/h2", "Range", "bytes=3-5"); resp.StatusCode != 206 || body != "345" {
		t.Errorf("range over HTTP/2: %d %q", resp.StatusCode, body)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("origin saw %d requests, want 1", n)
	}
	if got := app.statuses(t, 3); got != "hit hit miss" {
		t.Errorf("statuses %q", got)
	}
}

// TestCacheRevalidateCollapsed: requests for a stale key that come while its
// validation is under way wait for it, and are answered from the refreshed response.
func TestCacheRevalidateCollapsed(t *testing.T) {
	release := make(chan struct{})
	var hits, conditional atomic.Int32
	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("ETag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			conditional.Add(1)
			<-release // a slow validation: the others arrive meanwhile
			w.Header().Set("Cache-Control", "max-age=60")
			w.WriteHeader(304)
			return
		}
		w.Header().Set("Cache-Control", "max-age=0")
		io.WriteString(w, "body")
	}))
	app, addr := startCacheProxy(t, origin, 10*time.Second)
	cacheGet(t, testClient(t), "GET", "http://"+addr+"/rc")
	const waiting = 5
	var wg sync.WaitGroup
	bodies := make(chan string, waiting+1)
	for range waiting + 1 {
		wg.Go(func() {
			_, body := cacheGet(t, testClient(t), "GET", "http://"+addr+"/rc")
			bodies <- body
		})
	}
	// All but the validating request wait on its fill: then let the origin answer.
	deadline := time.Now().Add(5 * time.Second)
	for conditional.Load() == 0 || app.asked.Load() < waiting+2 {
		if time.Now().After(deadline) {
			t.Fatal("no validation came")
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(bodies)
	for b := range bodies {
		if b != "body" {
			t.Errorf("body %q", b)
		}
	}
	if n := hits.Load(); n != 2 {
		t.Errorf("origin saw %d requests, want 2 (the fill and one validation)", n)
	}
	app.statuses(t, waiting+2)
}

// TestCacheTooLarge: a response over MaxObjectBytes passes through whole and is not
// stored, whether its length is known from the start or only at its end.
func TestCacheTooLarge(t *testing.T) {
	big := strings.Repeat("y", 64<<10)
	var hits atomic.Int32
	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=60")
		if r.URL.Path == "/length" {
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
		}
		io.WriteString(w, big[:len(big)/2])
		w.(http.Flusher).Flush()
		io.WriteString(w, big[len(big)/2:])
	}))
	st, _ := memory.New(memory.Options{MaxBytes: 1 << 20})
	ch, err := cache.New(cache.Options{Storage: st, MaxObjectBytes: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	app := &cacheProxy{peer: testPeer(origin), cache: ch, more: make(chan struct{}, 1)}
	svc, _ := newTestService[*testCtx](t, app, ServiceOptions{})
	addr := startProxy(t, svc)
	c := testClient(t)
	for _, path := range []string{"/length", "/chunked"} {
		for range 2 {
			if _, body := cacheGet(t, c, "GET", "http://"+addr+path); body != big {
				t.Errorf("%s: a body of %d bytes, want %d", path, len(body), len(big))
			}
		}
	}
	if n := hits.Load(); n != 4 {
		t.Errorf("origin saw %d requests, want 4: nothing stored", n)
	}
}

// TestCacheLockTimeout: a request that waits longer than LockTimeout for another's
// fill goes upstream itself.
func TestCacheLockTimeout(t *testing.T) {
	release := make(chan struct{})
	var hits atomic.Int32
	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			<-release // the first fetch hangs until the second request has given up
		}
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "ok")
	}))
	app, addr := startCacheProxy(t, origin, 50*time.Millisecond)
	first := make(chan string, 1)
	go func() {
		_, body := cacheGet(t, testClient(t), "GET", "http://"+addr+"/slow")
		first <- body
	}()
	deadline := time.Now().Add(5 * time.Second)
	for hits.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the first request did not reach the origin")
		}
		time.Sleep(time.Millisecond)
	}
	if _, body := cacheGet(t, testClient(t), "GET", "http://"+addr+"/slow"); body != "ok" {
		t.Errorf("the request that timed out on the lock got %q", body)
	}
	close(release)
	if body := <-first; body != "ok" {
		t.Errorf("the first request got %q", body)
	}
	if n := hits.Load(); n != 2 {
		t.Errorf("origin saw %d requests, want 2", n)
	}
	if got := app.statuses(t, 2); got != "miss miss" {
		t.Errorf("statuses %q", got)
	}
}

// TestCacheRefreshUnobserved: a background refresh is no request of a client's: the
// observers see the two client requests only.
func TestCacheRefreshUnobserved(t *testing.T) {
	var hits atomic.Int32
	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			w.Header().Set("Cache-Control", "max-age=1, stale-while-revalidate=600")
			w.Header().Set("Age", "5")
		} else {
			w.Header().Set("Cache-Control", "max-age=600")
		}
		io.WriteString(w, "x")
	}))
	st, _ := memory.New(memory.Options{MaxBytes: 1 << 20})
	ch, _ := cache.New(cache.Options{Storage: st})
	app := &cacheProxy{peer: testPeer(origin), cache: ch, more: make(chan struct{}, 1)}
	rec := newRecorder("R")
	svc, _ := newTestService[*testCtx](t, app, ServiceOptions{Observers: []observe.Observer{rec}})
	addr := startProxy(t, svc)
	c := testClient(t)
	cacheGet(t, c, "GET", "http://"+addr+"/u")
	cacheGet(t, c, "GET", "http://"+addr+"/u") // stale: served, refreshed behind
	deadline := time.Now().Add(5 * time.Second)
	for hits.Load() < 2 || ch.Fills() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("no refresh")
		}
		time.Sleep(time.Millisecond)
	}
	app.statuses(t, 2)
	starts, attempts := 0, 0
	for _, l := range rec.lines() {
		switch {
		case strings.HasPrefix(l, "start "):
			starts++
		case strings.HasPrefix(l, "attempt "):
			attempts++
		}
	}
	if starts != 2 || attempts != 1 {
		t.Errorf("observers saw %d requests and %d attempts, want 2 and 1 (the refresh unseen):\n%s",
			starts, attempts, strings.Join(rec.lines(), "\n"))
	}
}
