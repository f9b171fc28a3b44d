package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/cache"
	"github.com/gotthard-proxy/gotthard/cache/memory"
	"github.com/gotthard-proxy/gotthard/message"
)

// callLog is the order of phase and module calls of the requests of a test.
type callLog struct {
	mu    sync.Mutex
	calls []string
	done  chan struct{} // a value after each Logging
}

func newCallLog() *callLog { return &callLog{done: make(chan struct{}, 16)} }

func (l *callLog) add(s string) {
	l.mu.Lock()
	l.calls = append(l.calls, s)
	l.mu.Unlock()
}

// take waits for the request's Logging and returns its calls, then forgets them.
func (l *callLog) take(t *testing.T) string {
	t.Helper()
	select {
	case <-l.done:
	case <-time.After(10 * time.Second):
		t.Fatal("no Logging")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.Join(l.calls, " ")
	l.calls = nil
	return s
}

// phaseLogProxy writes its phase calls to a callLog. RequestFilter panics on /panic.
type phaseLogProxy struct {
	Phases[*testCtx]
	peer *Peer
	log  *callLog
}

func (phaseLogProxy) NewCtx() *testCtx { return &testCtx{} }

func (p phaseLogProxy) UpstreamPeer(context.Context, *Session, *testCtx) (*Peer, error) {
	return p.peer, nil
}

func (p phaseLogProxy) EarlyRequestFilter(context.Context, *Session, *testCtx) error {
	p.log.add("early")
	return nil
}

func (p phaseLogProxy) RequestFilter(_ context.Context, s *Session, _ *testCtx) (Result, error) {
	p.log.add("req")
	if s.Request().Target == "/panic" {
		panic("phase panic")
	}
	return Continue, nil
}

func (p phaseLogProxy) RequestBodyFilter(_ context.Context, _ *Session, _ *testCtx, chunk []byte, end bool) ([]byte, error) {
	if len(chunk) > 0 {
		p.log.add("reqbody(" + string(chunk) + ")")
	}
	if end {
		p.log.add("reqbody-end")
	}
	return chunk, nil
}

func (p phaseLogProxy) ResponseFilter(_ context.Context, _ *Session, _ *testCtx, resp *message.ResponseHeader) error {
	p.log.add("resp")
	resp.Header.Add("X-Order", "user")
	return nil
}

func (p phaseLogProxy) ResponseBodyFilter(_ context.Context, _ *Session, _ *testCtx, chunk []byte, end bool) ([]byte, error) {
	if end {
		p.log.add("body-end")
	}
	return chunk, nil
}

func (p phaseLogProxy) ResponseTrailerFilter(_ context.Context, _ *Session, _ *testCtx, trl *message.Header) error {
	p.log.add("trailers")
	trl.Add("X-Trailer-Order", "user")
	return nil
}

func (p phaseLogProxy) Logging(context.Context, *Session, *testCtx, error) {
	p.log.add("logging")
	p.log.done <- struct{}{}
}

// bracketModule logs its calls under its name. Its request body filter upper-cases the
// body; its response filters drop Content-Length and wrap the body in brackets named
// after it ("A[...]A"), so the order of modules shows in the body. NewRequest returns nil
// for a request with an X-Skip header of its name, and RequestFilter answers 403 to one
// with an X-Deny header of its name.
type bracketModule struct {
	name string
	log  *callLog
}

func (m *bracketModule) Name() string { return m.name }

func (m *bracketModule) NewRequest(s *Session) ModuleRequest {
	if s.Request().Header.Get("X-Skip") == m.name {
		return nil
	}
	return &bracketRequest{m: m}
}

type bracketRequest struct {
	ModuleFilters
	m       *bracketModule
	started bool
}

func (r *bracketRequest) RequestFilter(_ context.Context, s *Session) (Result, error) {
	r.m.log.add(r.m.name + ".req")
	switch s.Request().Header.Get("X-Deny") {
	case r.m.name:
		return Handled, s.Respond(403, "denied by "+r.m.name+"\n")
	case r.m.name + "-error":
		return Continue, errors.New("module error")
	}
	s.Request().Header.Add("X-Modules", r.m.name)
	return Continue, nil
}

func (r *bracketRequest) RequestBodyFilter(_ context.Context, _ *Session, chunk []byte, end bool) ([]byte, error) {
	return bytes.ToUpper(chunk), nil
}

func (r *bracketRequest) ResponseFilter(_ context.Context, _ *Session, resp *message.ResponseHeader) error {
	r.m.log.add(r.m.name + ".resp")
	resp.Header.Del("Content-Length")
	resp.Header.Add("X-Order", r.m.name)
	return nil
}

func (r *bracketRequest) ResponseBodyFilter(_ context.Context, _ *Session, chunk []byte, end bool) ([]byte, error) {
	var out []byte
	if !r.started {
		r.started = true
		out = append(out, r.m.name+"["...)
	}
	out = append(out, chunk...)
	if end {
		r.m.log.add(r.m.name + ".body-end")
		out = append(out, "]"+r.m.name...)
	}
	return out, nil
}

func (r *bracketRequest) ResponseTrailerFilter(_ context.Context, _ *Session, trl *message.Header) error {
	r.m.log.add(r.m.name + ".trailers")
	trl.Add("X-Trailer-Order", r.m.name)
	return nil
}

func (r *bracketRequest) Done(*Session) { r.m.log.add(r.m.name + ".done") }

// moduleOrigin answers with the request's body and X-Modules, a trailer when asked.
func moduleOrigin(t *testing.T) string {
	_, addr := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Query().Has("trailer") {
			w.Header().Set("Trailer", "X-Trailer-Order")
		}
		w.Header().Set("X-Got-Modules", strings.Join(r.Header.Values("X-Modules"), ","))
		w.Header().Set("Content-Length", fmt.Sprint(len(b)+len("body:")))
		if r.URL.Query().Has("trailer") {
			w.Header().Del("Content-Length")
		}
		io.WriteString(w, "body:")
		w.Write(b)
		if r.URL.Query().Has("trailer") {
			w.Header().Set("X-Trailer-Order", "origin")
		}
	}))
	return addr
}

// TestModulesOrder checks where modules run among the user's phases, in the order they
// are registered, over HTTP/1.1 and h2c: request filters after EarlyRequestFilter and
// before RequestFilter, request bodies before RequestBodyFilter, responses after the
// user's filters, Done before Logging.
func TestModulesOrder(t *testing.T) {
	log := newCallLog()
	app := phaseLogProxy{peer: testPeer(moduleOrigin(t)), log: log}
	svc, _ := newTestService[*testCtx](t, app, ServiceOptions{Modules: []Module{
		&bracketModule{name: "A", log: log}, &bracketModule{name: "B", log: log},
	}})
	addr := startProxy(t, svc)
	for _, client := range []struct {
		name string
		c    *http.Client
	}{{"h1", testClient(t)}, {"h2c", h2cClient(t)}} {
		t.Run(client.name, func(t *testing.T) {
			resp, err := client.c.Post("http://"+addr+"/", "text/plain", strings.NewReader("hello"))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			// The body went through A then B (upper-cased once each), the response
			// through the user's filter, then A, then B.
			if got, want := string(b), "B[A[body:HELLO]A]B"; got != want {
				t.Errorf("body %q, want %q", got, want)
			}
			if got := resp.Header.Get("X-Got-Modules"); got != "A,B" {
				t.Errorf("origin saw X-Modules %q, want A,B", got)
			}
			if got := resp.Header.Values("X-Order"); strings.Join(got, ",") != "user,A,B" {
				t.Errorf("X-Order %q, want user,A,B", got)
			}
			if resp.ContentLength != -1 {
				t.Errorf("ContentLength %d: the modules removed it", resp.ContentLength)
			}
			want := "early A.req B.req req reqbody(HELLO) reqbody-end resp A.resp B.resp " +
				"body-end A.body-end B.body-end A.done B.done logging"
			if got := log.take(t); got != want {
				t.Errorf("calls\n got %s\nwant %s", got, want)
			}
		})
	}
}

// TestModulesTrailers checks that the modules' trailer filters run after the user's.
func TestModulesTrailers(t *testing.T) {
	log := newCallLog()
	app := phaseLogProxy{peer: testPeer(moduleOrigin(t)), log: log}
	svc, _ := newTestService[*testCtx](t, app, ServiceOptions{Modules: []Module{
		&bracketModule{name: "A", log: log}, &bracketModule{name: "B", log: log},
	}})
	addr := startProxy(t, svc)
	resp, err := h2cClient(t).Get("http://" + addr + "/?trailer")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got, want := string(b), "B[A[body:]A]B"; got != want {
		t.Errorf("body %q, want %q", got, want)
	}
	if got := strings.Join(resp.Trailer.Values("X-Trailer-Order"), ","); got != "origin,user,A,B" {
		t.Errorf("trailers %q, want origin,user,A,B", got)
	}
	want := "early A.req B.req req resp A.resp B.resp body-end A.body-end B.body-end " +
		"trailers A.trailers B.trailers A.done B.done logging"
	if got := log.take(t); got != want {
		t.Errorf("calls\n got %s\nwant %s", got, want)
	}
}

// TestModulesEarlyEnds checks the requests that end before the peer: a module that
// answers itself, one that fails, one that sits a request out, and a panicking phase.
// Done runs for every module that took part, and only for those.
func TestModulesEarlyEnds(t *testing.T) {
	log := newCallLog()
	app := phaseLogProxy{peer: testPeer(moduleOrigin(t)), log: log}
	svc, logs := newTestService[*testCtx](t, app, ServiceOptions{Modules: []Module{
		&bracketModule{name: "A", log: log}, &bracketModule{name: "B", log: log},
	}})
	addr := startProxy(t, svc)
	c := testClient(t)
	for _, tc := range []struct {
		name, target, header, value string
		status                      int
		body                        string
		calls                       string
	}{
		{"A answers", "/", "X-Deny", "A", 403, "denied by A\n", "early A.req A.done B.done logging"},
		{"B answers", "/", "X-Deny", "B", 403, "denied by B\n", "early A.req B.req A.done B.done logging"},
		{"A fails", "/", "X-Deny", "A-error", 500, "", "early A.req A.done B.done logging"},
		{"A sits out", "/", "X-Skip", "A", 200, "B[body:]B",
			"early B.req req resp B.resp body-end B.body-end B.done logging"},
		{"phase panics", "/panic", "", "", 500, "", "early A.req B.req req A.done B.done logging"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", "http://"+addr+tc.target, nil)
			if tc.header != "" {
				req.Header.Set(tc.header, tc.value)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || (tc.body != "" && string(b) != tc.body) {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, b, tc.status, tc.body)
			}
			if got := log.take(t); got != tc.calls {
				t.Errorf("calls\n got %s\nwant %s", got, tc.calls)
			}
		})
	}
	if !strings.Contains(logs.String(), "phase panic") {
		t.Errorf("the panic was not logged:\n%s", logs)
	}
}

// TestModulesCacheHit checks that a cache hit goes through the modules' response
// filters, as it goes through the user's, and that what is stored is the response as
// it came from the peer.
func TestModulesCacheHit(t *testing.T) {
	log := newCallLog()
	var origins int
	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origins++
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "cached")
	}))
	app := &cachingLoggedProxy{phaseLogProxy: phaseLogProxy{peer: testPeer(origin), log: log}, c: newModuleTestCache(t)}
	svc, _ := newTestService[*testCtx](t, app, ServiceOptions{Modules: []Module{&bracketModule{name: "A", log: log}}})
	addr := startProxy(t, svc)
	c := testClient(t)
	for i := range 2 {
		resp, err := c.Get("http://" + addr + "/c")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "A[cached]A" {
			t.Errorf("request %d: body %q", i, b)
		}
		log.take(t)
	}
	if origins != 1 {
		t.Errorf("the origin was asked %d times, want 1 (the second request is a hit)", origins)
	}
}

// TestModulesValidate checks that a nil module and two modules of one name are refused,
// each named.
func TestModulesValidate(t *testing.T) {
	a := &bracketModule{name: "A"}
	for _, tc := range []struct {
		mods []Module
		want string
	}{
		{[]Module{a, nil}, "Modules[1] is nil"},
		{[]Module{a, &bracketModule{name: "B"}, &bracketModule{name: "A"}}, `Modules[2] has the name "A" of Modules[0]`},
	} {
		err := ServiceOptions{Modules: tc.mods}.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate: %v, want %q", err, tc.want)
		}
	}
	if err := (ServiceOptions{Modules: []Module{a, &bracketModule{name: "B"}}}).Validate(); err != nil {
		t.Errorf("Validate of two modules: %v", err)
	}
}

// cachingLoggedProxy is a phaseLogProxy with a cache.
type cachingLoggedProxy struct {
	phaseLogProxy
	c *cache.Cache
}

func (p *cachingLoggedProxy) RequestCacheFilter(context.Context, *Session, *testCtx) (*cache.Cache, error) {
	return p.c, nil
}

func newModuleTestCache(t *testing.T) *cache.Cache {
	st, err := memory.New(memory.Options{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(cache.Options{Storage: st})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
