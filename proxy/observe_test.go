package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	gtls "github.com/gotthard-proxy/gotthard/tls"

	"github.com/gotthard-proxy/gotthard/observe"
)

// countingObserver counts the events it sees; it allocates nothing.
type countingObserver struct {
	starts, attempts, upstreams, attemptEnds, ends atomic.Int64
	opens, handshakes, closes, upConns             atomic.Int64
}

func (o *countingObserver) RequestStart(*observe.Request)                   { o.starts.Add(1) }
func (o *countingObserver) AttemptStart(*observe.Request, *observe.Attempt) { o.attempts.Add(1) }
func (o *countingObserver) UpstreamRequest(*observe.Request, *observe.Attempt, observe.Header) {
	o.upstreams.Add(1)
}
func (o *countingObserver) AttemptEnd(*observe.Request, *observe.Attempt) { o.attemptEnds.Add(1) }
func (o *countingObserver) RequestEnd(*observe.Request)                   { o.ends.Add(1) }
func (o *countingObserver) ConnOpen(*observe.Conn)                        { o.opens.Add(1) }
func (o *countingObserver) ConnTLS(*observe.Conn)                         { o.handshakes.Add(1) }
func (o *countingObserver) ConnClose(*observe.Conn)                       { o.closes.Add(1) }
func (o *countingObserver) UpstreamConn(*observe.Conn)                    { o.upConns.Add(1) }

// recorder is an observer that writes down what it sees, one line per event, and keeps
// a value of its own in Request.Data and Attempt.Data to check that each observer gets
// its own back. It sets X-Observed on the upstream request.
type recorder struct {
	name string
	mu   sync.Mutex
	log  []string
	ends []observe.Request // copies, at RequestEnd
	conn []observe.Conn    // copies, at each connection event
	ev   []string          // the event of each of conn
	// closed gets a value at each client connection's close.
	closed chan struct{}
}

func newRecorder(name string) *recorder { return &recorder{name: name, closed: make(chan struct{}, 8)} }

func (o *recorder) add(format string, args ...any) {
	o.mu.Lock()
	o.log = append(o.log, fmt.Sprintf(format, args...))
	o.mu.Unlock()
}

func (o *recorder) RequestStart(r *observe.Request) {
	if r.Data != nil {
		o.add("start: Data not nil")
	}
	r.Data = o.name + ":" + r.Target
	o.add("start %s %s %s %s host=%s client=%s", r.Proto, r.Scheme, r.Method, r.Target, r.Host, r.Client)
}

func (o *recorder) AttemptStart(r *observe.Request, a *observe.Attempt) {
	a.Data = fmt.Sprint(o.name, " attempt ", a.N)
	o.add("attempt %d %s data=%v", a.N, a.Peer, r.Data)
}

func (o *recorder) UpstreamRequest(r *observe.Request, a *observe.Attempt, h observe.Header) {
	h.Set("X-Observed-"+o.name, fmt.Sprint(r.Data))
	o.add("upstream %d %s data=%v", a.N, a.Proto, a.Data)
}

func (o *recorder) AttemptEnd(r *observe.Request, a *observe.Attempt) {
	if a.Start.IsZero() || a.End.Before(a.Start) || a.Start.Before(r.Start) ||
		!a.Connected.IsZero() && (a.Connected.Before(a.Start) || a.End.Before(a.Connected)) ||
		!a.FirstByte.IsZero() && (a.FirstByte.Before(a.Start) || a.End.Before(a.FirstByte)) {
		o.add("attempt-end: times out of order: request start %v start %v connected %v first byte %v end %v",
			r.Start, a.Start, a.Connected, a.FirstByte, a.End)
	}
	o.add("attempt-end %d status=%d err=%q reused=%v firstbyte=%v data=%v", a.N, a.Status, a.ErrType, a.Reused,
		!a.FirstByte.IsZero(), a.Data)
}

func (o *recorder) RequestEnd(r *observe.Request) {
	o.add("end status=%d attempts=%d upstream-status=%d err=%q data=%v", r.Status, r.Attempts, r.UpstreamStatus,
		r.ErrType, r.Data)
	o.mu.Lock()
	c := *r
	c.Header, c.Data = nil, nil
	o.ends = append(o.ends, c)
	o.mu.Unlock()
}

func (o *recorder) conns(ev string, c *observe.Conn) {
	o.mu.Lock()
	o.conn = append(o.conn, *c)
	o.ev = append(o.ev, ev)
	o.log = append(o.log, ev)
	o.mu.Unlock()
}

func (o *recorder) ConnOpen(c *observe.Conn) { o.conns("conn-open", c) }
func (o *recorder) ConnTLS(c *observe.Conn)  { o.conns("conn-tls", c) }
func (o *recorder) ConnClose(c *observe.Conn) {
	o.conns("conn-close", c)
	o.closed <- struct{}{}
}
func (o *recorder) UpstreamConn(c *observe.Conn) { o.conns("upstream-conn", c) }

func (o *recorder) lines() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.log...)
}

// observedProxy sends a request's first attempt to dead and the others to good for
// /retry, its first attempt to good and the others to dead for /then-dead, and panics
// in RequestFilter for /panic.
type observedProxy struct {
	Phases[*testCtx]
	dead, good *Peer
}

func (observedProxy) NewCtx() *testCtx { return &testCtx{} }

func (p observedProxy) UpstreamPeer(_ context.Context, s *Session, _ *testCtx) (*Peer, error) {
	switch t := s.Request().Target; {
	case s.Retries() == 0 && strings.HasPrefix(t, "/retry"):
		return p.dead, nil
	case s.Retries() > 0 && strings.HasPrefix(t, "/then-dead"):
		return p.dead, nil
	}
	return p.good, nil
}

func (observedProxy) RequestFilter(_ context.Context, s *Session, _ *testCtx) (Result, error) {
	if s.Request().Target == "/panic" {
		panic("boom")
	}
	return Continue, nil
}

// TestObserverEvents: the events of a retried request, in order, each observer with
// its own Data, the header an observer sets reaching the origin; a panicking phase;
// the connection events.
func TestObserverEvents(t *testing.T) {
	got := make(chan string, 4)
	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("X-Observed-A") + "|" + r.Header.Get("X-Observed-B")
		io.WriteString(w, "hello")
	}))
	a, b := newRecorder("A"), newRecorder("B")
	app := observedProxy{dead: testPeer(deadAddr(t)), good: testPeer(origin)}
	svc, logs := newTestService[*testCtx](t, app, ServiceOptions{Observers: []observe.Observer{a, b}})
	addr := startProxy(t, svc)

	c, br := dialRaw(t, addr)
	io.WriteString(c, "GET /retry HTTP/1.1\r\nHost: h.test\r\n\r\n")
	resp, body := readResponse(t, br, "GET")
	if resp.StatusCode != 200 || body != "hello" {
		t.Fatalf("retried request: %d %q\n%s", resp.StatusCode, body, logs.String())
	}
	if h := <-got; h != "A:/retry|B:/retry" {
		t.Fatalf("origin got X-Observed %q", h)
	}
	io.WriteString(c, "GET /panic HTTP/1.1\r\nHost: h.test\r\n\r\n")
	if resp, _ := readResponse(t, br, "GET"); resp.StatusCode != 500 {
		t.Fatalf("panicking phase: %d", resp.StatusCode)
	}
	c.Close()
	waitFor(t, "the connection's close", b.closed)
	waitFor(t, "the connection's close", a.closed)

	want := []string{
		"conn-open",
		"start HTTP/1.1 http GET /retry host=h.test client=127.0.0.1",
		"attempt 0 " + app.dead.Address + " data=B:/retry",
		"upstream-conn",
		`attempt-end 0 status=0 err="connection refused" reused=false firstbyte=false data=B attempt 0`,
		"attempt 1 " + origin + " data=B:/retry",
		"upstream-conn",
		"upstream 1 HTTP/1.1 data=B attempt 1",
		`attempt-end 1 status=200 err="" reused=false firstbyte=true data=B attempt 1`,
		`end status=200 attempts=2 upstream-status=200 err="" data=B:/retry`,
		"start HTTP/1.1 http GET /panic host=h.test client=127.0.0.1",
		`end status=500 attempts=0 upstream-status=0 err="internal error" data=B:/panic`,
		"conn-close",
	}
	if l := b.lines(); strings.Join(l, "\n") != strings.Join(want, "\n") {
		t.Fatalf("observer B saw:\n%s\nwant:\n%s", strings.Join(l, "\n"), strings.Join(want, "\n"))
	}
	if l := a.lines(); len(l) != len(want) || l[2] != "attempt 0 "+app.dead.Address+" data=A:/retry" {
		t.Fatalf("observer A saw:\n%s", strings.Join(l, "\n"))
	}
	end := b.ends[0]
	if end.Upstream != origin || end.BytesSent != 5 || end.End.Before(end.Start) || end.TTFB() <= 0 ||
		end.Duration() < end.TTFB() || end.Connected.IsZero() || end.Panic != nil || end.Service != "test" {
		t.Fatalf("RequestEnd of the retried request: %+v", end)
	}
	if p := b.ends[1]; p.Panic != "boom" || !strings.Contains(string(p.Stack), "RequestFilter") || p.ErrSource != "internal" {
		t.Fatalf("RequestEnd of the panic: panic %v source %q stack:\n%s", p.Panic, p.ErrSource, p.Stack)
	}
	// Both attempts dialled: the refused one and the good one.
	var ups []observe.Conn
	for _, c := range b.conn {
		if c.Upstream {
			ups = append(ups, c)
		}
	}
	if len(ups) != 2 || ups[0].Err == nil || ups[1].Err != nil || ups[1].Remote != origin || ups[1].Connected.IsZero() {
		t.Fatalf("upstream connections seen: %+v", ups)
	}
	if cl := b.conn[len(b.conn)-1]; cl.Proto != "HTTP/1.1" || cl.Requests != 2 || cl.Upstream {
		t.Fatalf("ConnClose: %+v", cl)
	}
}

// TestObserverTLSConn: a TLS client connection's handshake reaches the connection
// observers with its state, and an HTTP/2 connection closes counting its streams.
func TestObserverTLSConn(t *testing.T) {
	p := newPKI(t)
	cert := p.issue(t, "api", []string{"api.test"}, false)
	origin := startXFPOrigin(t)
	rec := newRecorder("R")
	svc, _ := newTestService[*testCtx](t, tlsProxy{peer: testPeer(origin), seen: &tlsSeen{}},
		ServiceOptions{Observers: []observe.Observer{rec}})
	_, secure := startTLSProxy(t, svc, gtls.Options{Certificates: []gtls.CertFile{cert}})
	cl := tlsClient(t, &tls.Config{ServerName: "api.test", RootCAs: p.pool()})
	for range 3 {
		if resp, body := getBody(t, cl, "https://"+secure+"/x"); resp.StatusCode != 200 || body != "proto=https" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
	}
	cl.Transport.(*http.Transport).CloseIdleConnections()
	waitFor(t, "the connection's close", rec.closed)
	var hs, cl2 *observe.Conn
	for i := range rec.conn {
		switch rec.ev[i] {
		case "conn-tls":
			hs = &rec.conn[i]
		case "conn-close":
			cl2 = &rec.conn[i]
		}
	}
	if hs == nil || hs.TLS.Version != tls.VersionTLS13 || hs.TLS.CurveID != tls.X25519MLKEM768 || hs.Handshake <= 0 || hs.Err != nil {
		t.Fatalf("ConnTLS: %+v", hs)
	}
	if cl2 == nil || cl2.Proto != "HTTP/2" || cl2.Requests != 3 {
		t.Fatalf("ConnClose: %+v", cl2)
	}
	for _, e := range rec.ends {
		if e.Proto != "HTTP/2" || e.Scheme != "https" || e.Host != secure {
			t.Fatalf("request over HTTP/2: %+v", e)
		}
	}
}

// TestObserverNil: a nil observer is refused when the service is made, named.
func TestObserverNil(t *testing.T) {
	_, err := NewService[*testCtx]("x", fixedProxy{}, ServiceOptions{Observers: []observe.Observer{&countingObserver{}, nil}})
	if err == nil || err.Error() != "proxy: Observers[1] is nil" {
		t.Fatalf("NewService: %v", err)
	}
}

// panicky is an observer that panics at RequestEnd and when a connection opens.
type panicky struct{ observe.Base }

func (panicky) RequestEnd(*observe.Request) { panic("observer bug") }
func (panicky) ConnOpen(*observe.Conn)      { panic("observer bug at open") }
func (panicky) ConnTLS(*observe.Conn)       {}
func (panicky) ConnClose(*observe.Conn)     {}
func (panicky) UpstreamConn(*observe.Conn)  {}

// TestObserverPanic: an observer that panics, at a request's end or a connection's
// opening, is logged; the process and the connection go on.
func TestObserverPanic(t *testing.T) {
	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	rec := newRecorder("R")
	svc, logs := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)},
		ServiceOptions{Observers: []observe.Observer{panicky{}, rec}})
	addr := startProxy(t, svc)
	c, br := dialRaw(t, addr)
	defer c.Close()
	for range 2 {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
		if resp, body := readResponse(t, br, "GET"); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
	}
	svc.Close() // waits for the connection's goroutines: the logs are written
	if l := logs.String(); strings.Count(l, "panic in an observer") != 3 || !strings.Contains(l, "observer bug") {
		t.Fatalf("log:\n%s", l)
	}
	if n := len(rec.ends); n != 0 {
		// The panicking observer comes first: RequestEnd does not reach the next.
		t.Fatalf("recorder saw %d request ends", n)
	}
}

// TestObserverAttemptConnection: an attempt that did not connect reports no connection,
// though the attempt before it took a pooled one; so does the request it ended.
// The observer sees every event, or RequestEnd alone, or the ends of attempts and
// requests only (the attempts then read their start time themselves: see attemptClock).
func TestObserverAttemptConnection(t *testing.T) {
	for _, events := range []string{"all", "request end", "ends"} {
		t.Run(events, func(t *testing.T) { testObserverAttemptConnection(t, events) })
	}
}

// requestEndOnly is a recorder that observes RequestEnd alone: the service then keeps
// no times of its own for attempts (see lastAttempt).
type requestEndOnly struct{ *recorder }

func (requestEndOnly) ObservedEvents() observe.Events { return observe.EventRequestEnd }

func testObserverAttemptConnection(t *testing.T, events string) {
	// An origin that answers a connection's first request and closes it on the second,
	// unanswered: the proxy's pooled connection fails as it is taken, and the request
	// is retried (on the dead peer, which refuses).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				http.ReadRequest(br)
			}()
		}
	}()
	rec := newRecorder("R")
	var ob observe.Observer = rec
	switch events {
	case "request end":
		ob = requestEndOnly{rec}
	case "ends":
		ob = endsOnly{rec}
	}
	app := observedProxy{dead: testPeer(deadAddr(t)), good: testPeer(ln.Addr().String())}
	svc, logs := newTestService[*testCtx](t, app, ServiceOptions{Observers: []observe.Observer{ob}, MaxRetries: 1})
	addr := startProxy(t, svc)
	c, br := dialRaw(t, addr)
	defer c.Close()
	io.WriteString(c, "GET /first HTTP/1.1\r\nHost: h\r\n\r\n")
	if resp, _ := readResponse(t, br, "GET"); resp.StatusCode != 200 {
		t.Fatalf("first: %d\n%s", resp.StatusCode, logs.String())
	}
	io.WriteString(c, "GET /then-dead HTTP/1.1\r\nHost: h\r\n\r\n")
	if resp, _ := readResponse(t, br, "GET"); resp.StatusCode != 502 {
		t.Fatalf("then-dead: %d\n%s", resp.StatusCode, logs.String())
	}
	svc.Close() // the events are all in
	if events != "request end" {
		var ends []string
		for _, l := range rec.lines() {
			if strings.HasPrefix(l, "attempt-end") {
				ends = append(ends, l[:strings.Index(l, " data=")])
			}
		}
		want := []string{
			`attempt-end 0 status=200 err="" reused=false firstbyte=true`,
			`attempt-end 0 status=0 err="connection closed" reused=true firstbyte=false`,
			`attempt-end 1 status=0 err="connection refused" reused=false firstbyte=false`,
		}
		if strings.Join(ends, "\n") != strings.Join(want, "\n") {
			t.Fatalf("attempt ends:\n%s\nwant:\n%s", strings.Join(ends, "\n"), strings.Join(want, "\n"))
		}
	}
	if len(rec.ends) != 2 {
		t.Fatalf("%d RequestEnds, want 2", len(rec.ends))
	}
	if e := rec.ends[0]; e.Reused || e.Connected.IsZero() || e.FirstByte.IsZero() || e.Attempts != 1 || e.Status != 200 {
		t.Fatalf("RequestEnd of the first request: reused %v connected %v first byte %v attempts %d status %d",
			e.Reused, e.Connected, e.FirstByte, e.Attempts, e.Status)
	}
	if e := rec.ends[1]; e.Reused || !e.Connected.IsZero() || !e.FirstByte.IsZero() || e.Attempts != 2 || e.Status != 502 {
		t.Fatalf("RequestEnd of the failed request: reused %v connected %v first byte %v attempts %d status %d",
			e.Reused, e.Connected, e.FirstByte, e.Attempts, e.Status)
	}
}

// endsOnly is a recorder that declares it uses RequestEnd and AttemptEnd only.
type endsOnly struct{ *recorder }

func (endsOnly) ObservedEvents() observe.Events {
	return observe.EventAttemptEnd | observe.EventRequestEnd
}

// TestObserverEventFilter: an observer that declares the events it uses gets those
// only, and its Data stays its own beside an observer that gets them all.
func TestObserverEventFilter(t *testing.T) {
	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}))
	all, ends := newRecorder("A"), endsOnly{newRecorder("E")}
	svc, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{Observers: []observe.Observer{ends, all}})
	addr := startProxy(t, svc)
	c, br := dialRaw(t, addr)
	io.WriteString(c, "GET /f HTTP/1.1\r\nHost: h.test\r\n\r\n")
	if resp, _ := readResponse(t, br, "GET"); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	c.Close()
	waitFor(t, "the connection's close", all.closed)
	var reqEvents []string
	for _, l := range ends.lines() {
		if !strings.HasPrefix(l, "conn-") && !strings.HasPrefix(l, "upstream-conn") {
			reqEvents = append(reqEvents, l)
		}
	}
	want := []string{
		`attempt-end 0 status=200 err="" reused=false firstbyte=true data=<nil>`,
		`end status=200 attempts=1 upstream-status=200 err="" data=<nil>`,
	}
	if strings.Join(reqEvents, "\n") != strings.Join(want, "\n") {
		t.Errorf("the filtered observer saw\n%s\nwant\n%s", strings.Join(reqEvents, "\n"), strings.Join(want, "\n"))
	}
	if l := all.lines(); !slices.Contains(l, "start HTTP/1.1 http GET /f host=h.test client=127.0.0.1") ||
		!slices.Contains(l, `end status=200 attempts=1 upstream-status=200 err="" data=A:/f`) {
		t.Errorf("the other observer saw\n%s", strings.Join(l, "\n"))
	}
}

// TestObserverBadHead: a request head the proxy refuses is one request to observers,
// with the error page's status and an invalid-HTTP error, and no method or target; the
// Logging phase does not run for it.
func TestObserverBadHead(t *testing.T) {
	rec := newRecorder("R")
	app := &loggingCounter{}
	svc, _ := newTestService[*testCtx](t, app, ServiceOptions{Observers: []observe.Observer{rec}})
	addr := startProxy(t, svc)
	c, br := dialRaw(t, addr)
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\nBad Header Line\r\n\r\n")
	if resp, _ := readResponse(t, br, "GET"); resp.StatusCode != 400 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	waitFor(t, "the connection's close", rec.closed)
	want := []string{
		"start  http   host= client=127.0.0.1",
		`end status=400 attempts=0 upstream-status=0 err="invalid HTTP" data=R:`,
	}
	var got []string
	for _, l := range rec.lines() {
		if !strings.HasPrefix(l, "conn-") {
			got = append(got, l)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	e := rec.ends[0]
	if e.ErrSource != "downstream" || e.Start.IsZero() || e.End.Before(e.Start) || e.Method != "" || e.Target != "" {
		t.Errorf("RequestEnd: source %q start %v end %v method %q target %q", e.ErrSource, e.Start, e.End, e.Method, e.Target)
	}
	if n := app.logged.Load(); n != 0 {
		t.Errorf("Logging ran %d times", n)
	}
}

// loggingCounter is a proxy that counts its Logging phases.
type loggingCounter struct {
	fixedProxy
	logged atomic.Int64
}

func (p *loggingCounter) Logging(context.Context, *Session, *testCtx, error) { p.logged.Add(1) }

// skipper is a recorder that skips events of a request by its target: at RequestStart
// the attempt's start and end on /no-attempts, and all but UpstreamRequest on
// /upstream-only; at UpstreamRequest the request's end on /no-end.
type skipper struct{ *recorder }

func (o skipper) RequestStart(r *observe.Request) {
	o.recorder.RequestStart(r)
	switch r.Target {
	case "/no-attempts":
		r.Skip = observe.EventAttemptStart | observe.EventAttemptEnd
	case "/upstream-only":
		r.Skip = observe.EventAttemptStart | observe.EventAttemptEnd | observe.EventRequestEnd
	}
}

func (o skipper) UpstreamRequest(r *observe.Request, a *observe.Attempt, h observe.Header) {
	o.recorder.UpstreamRequest(r, a, h)
	if r.Target == "/no-end" {
		r.Skip |= observe.EventRequestEnd
	}
}

// TestObserverSkip: an observer that skips events of a request gets none of them for
// that request, and all of them again for the next; its Data and header still work,
// and an observer beside it gets every event. Alone, it gets the same.
func TestObserverSkip(t *testing.T) {
	for _, alone := range []bool{false, true} {
		t.Run(fmt.Sprint("alone=", alone), func(t *testing.T) {
			got := make(chan string, 8)
			_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got <- r.Header.Get("X-Observed-S")
				io.WriteString(w, "hello")
			}))
			s, b := skipper{newRecorder("S")}, newRecorder("B")
			obs := []observe.Observer{s, b}
			if alone {
				obs = obs[:1]
			}
			svc, logs := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{Observers: obs})
			addr := startProxy(t, svc)
			c, br := dialRaw(t, addr)
			targets := []string{"/no-attempts", "/upstream-only", "/no-end", "/plain"}
			for _, target := range targets {
				io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: h.test\r\n\r\n")
				if resp, body := readResponse(t, br, "GET"); resp.StatusCode != 200 || body != "hello" {
					t.Fatalf("%s: %d %q\n%s", target, resp.StatusCode, body, logs.String())
				}
				if h := <-got; h != "S:"+target {
					t.Fatalf("%s: the origin got X-Observed-S %q", target, h)
				}
			}
			svc.Close() // the events are all in
			var want []string
			for _, target := range targets {
				want = append(want, "start HTTP/1.1 http GET "+target+" host=h.test client=127.0.0.1")
				attempts := target != "/no-attempts" && target != "/upstream-only"
				if attempts {
					want = append(want, "attempt 0 "+origin+" data=S:"+target)
				}
				data := "<nil>"
				if attempts {
					data = "S attempt 0"
				}
				want = append(want, "upstream 0 HTTP/1.1 data="+data)
				if attempts {
					want = append(want, `attempt-end 0 status=200 err=""`)
				}
				if target != "/upstream-only" && target != "/no-end" {
					want = append(want, `end status=200 attempts=1 upstream-status=200 err="" data=S:`+target)
				}
			}
			var l []string
			for _, line := range s.lines() {
				switch {
				case strings.HasPrefix(line, "conn-") || strings.HasPrefix(line, "upstream-conn"):
				case strings.HasPrefix(line, "attempt-end"):
					l = append(l, line[:strings.Index(line, " reused=")]) // (reuse is the pool's business)
				default:
					l = append(l, line)
				}
			}
			if strings.Join(l, "\n") != strings.Join(want, "\n") {
				t.Fatalf("the skipping observer saw:\n%s\nwant:\n%s", strings.Join(l, "\n"), strings.Join(want, "\n"))
			}
			if !alone {
				if n := len(b.ends); n != len(targets) {
					t.Fatalf("the observer beside it saw %d RequestEnds, want %d:\n%s", n, len(targets), strings.Join(b.lines(), "\n"))
				}
				if e := b.ends[1]; e.Attempts != 1 || e.Connected.IsZero() || e.FirstByte.IsZero() || e.Status != 200 {
					t.Fatalf("RequestEnd of /upstream-only beside it: %+v", e)
				}
			}
		})
	}
}
