package sentry

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	sentrygo "github.com/getsentry/sentry-go"

	"github.com/gotthard-proxy/gotthard/observe"
)

func TestOptions(t *testing.T) {
	cl, err := sentrygo.NewClient(sentrygo.ClientOptions{
		Transport: &transport{}, Release: "x", DisableMetrics: true, DisableClientReports: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	tests := []struct {
		name string
		opts Options
		bad  string // the field the error names, "" for none
	}{
		{name: "client", opts: Options{Client: cl}},
		{name: "dsn", opts: Options{DSN: "http://public@127.0.0.1:1/1", Release: "x"}},
		{name: "neither", opts: Options{}, bad: "Options.DSN"},
		{name: "both", opts: Options{DSN: "http://public@127.0.0.1:1/1", Client: cl}, bad: "Options.DSN"},
		{name: "bad dsn", opts: Options{DSN: "not a dsn"}, bad: "Options.DSN"},
		{name: "negative rate", opts: Options{Client: cl, EventsPerSecond: -1}, bad: "Options.EventsPerSecond"},
		{name: "NaN rate", opts: Options{Client: cl, EventsPerSecond: math.NaN()}, bad: "Options.EventsPerSecond"},
		{name: "infinite rate", opts: Options{Client: cl, EventsPerSecond: math.Inf(1)}, bad: "Options.EventsPerSecond"},
		{name: "tiny rate", opts: Options{Client: cl, EventsPerSecond: 1e-9}},
		{name: "negative burst", opts: Options{Client: cl, Burst: -1}, bad: "Options.Burst"},
		{name: "huge burst", opts: Options{Client: cl, Burst: maxBurst + 1}, bad: "Options.Burst"},
		{name: "cookie", opts: Options{Client: cl, Headers: []string{"user-agent", "cookie"}}, bad: "Options.Headers"},
		{name: "authorization", opts: Options{Client: cl, Headers: []string{"AUTHORIZATION"}}, bad: "Options.Headers"},
		{name: "proxy-authorization", opts: Options{Client: cl, Headers: []string{"Proxy-Authorization"}}, bad: "Options.Headers"},
		{name: "set-cookie", opts: Options{Client: cl, Headers: []string{"set-cookie"}}, bad: "Options.Headers"},
		{name: "bad header name", opts: Options{Client: cl, Headers: []string{"X Foo"}}, bad: "Options.Headers"},
		{name: "empty header name", opts: Options{Client: cl, Headers: []string{""}}, bad: "Options.Headers"},
		{name: "empty tag key", opts: Options{Client: cl, Tags: map[string]string{"": "x"}}, bad: "Options.Tags"},
		{name: "negative flush timeout", opts: Options{Client: cl, FlushTimeout: -time.Second}, bad: "Options.FlushTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := New(tt.opts)
			if tt.bad == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				o.Close()
				return
			}
			if err == nil {
				o.Close()
				t.Fatalf("New accepted the options; want an error naming %s", tt.bad)
			}
			if !strings.Contains(err.Error(), tt.bad) {
				t.Errorf("New: %v; want an error naming %s", err, tt.bad)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	o, _ := newObserver(t, Options{Tags: map[string]string{"region": "eu"}})
	c := o.c
	if c.rate != DefaultEventsPerSecond || c.burst != DefaultBurst || c.flushTimeout != DefaultFlushTimeout || c.name != DefaultName {
		t.Errorf("defaults: rate %v burst %d flush %v name %q", c.rate, c.burst, c.flushTimeout, c.name)
	}
	if strings.Join(c.headers, ",") != "User-Agent" {
		t.Errorf("default headers %q", c.headers)
	}
	if o.Name() != "sentry" {
		t.Errorf("Name() = %q", o.Name())
	}
}

func TestPanicEvent(t *testing.T) {
	o, tr := newObserver(t, Options{Environment: "staging", Tags: map[string]string{"region": "eu"}})
	r := request(500, nil)
	r.Panic, r.Stack = panicking()
	o.RequestEnd(r)

	evs := flushed(t, o, tr)
	if len(evs) != 1 {
		t.Fatalf("%d events; want 1", len(evs))
	}
	ev := evs[0]
	checkNoSecrets(t, ev)
	if ev.Level != sentrygo.LevelFatal {
		t.Errorf("level %q; want fatal", ev.Level)
	}
	if ev.Environment != "staging" {
		t.Errorf("environment %q", ev.Environment)
	}
	if len(ev.Exception) != 1 {
		t.Fatalf("%d exceptions; want 1", len(ev.Exception))
	}
	ex := ev.Exception[0]
	if ex.Type != "panic" || ex.Value != "runtime error: index out of range [3] with length 1" {
		t.Errorf("exception %q: %q", ex.Type, ex.Value)
	}
	if ex.Mechanism == nil || ex.Mechanism.Handled == nil || *ex.Mechanism.Handled {
		t.Errorf("mechanism %+v; want unhandled", ex.Mechanism)
	}
	if ex.Stacktrace == nil || len(ex.Stacktrace.Frames) == 0 {
		t.Fatal("no stack trace")
	}
	frames := ex.Stacktrace.Frames
	last := frames[len(frames)-1] // Sentry's order: the panicking frame last
	if last.Function != "explode" || !strings.HasSuffix(last.AbsPath, "helpers_test.go") || last.Lineno == 0 {
		t.Errorf("innermost frame %+v; want explode in helpers_test.go", last)
	}
	for _, f := range frames {
		if f.Module == "runtime" || f.Module == "runtime/debug" || f.Function == "panic" {
			t.Errorf("frame of the recovery or the runtime: %+v", f)
		}
	}
	if ev.Request == nil || ev.Request.Method != "POST" || ev.Request.URL != "http://shop.example/cart/checkout" || ev.Request.QueryString != "" {
		t.Errorf("request %+v", ev.Request)
	}
	if ev.Request.Headers["User-Agent"] != "curl/8.5.0" {
		t.Errorf("headers %v; want User-Agent", ev.Request.Headers)
	}
	for k, want := range map[string]string{
		"service": "gateway", "method": "POST", "host": "shop.example", "status": "500",
		"upstream": "127.0.0.1:9", "panic.type": "runtime.boundsError", "region": "eu",
	} {
		if ev.Tags[k] != want {
			t.Errorf("tag %s = %q; want %q", k, ev.Tags[k], want)
		}
	}
	if got := ev.Contexts["gotthard"]["path"]; got != "/cart/checkout" {
		t.Errorf("context path %v", got)
	}
	if got := ev.Contexts["response"]["status_code"]; got != 500 {
		t.Errorf("context status_code %v", got)
	}
	if o.Reported() != 1 || o.Dropped() != 0 {
		t.Errorf("Reported %d Dropped %d; want 1, 0", o.Reported(), o.Dropped())
	}
}

func TestFailureEvent(t *testing.T) {
	o, tr := newObserver(t, Options{})
	o.RequestEnd(request(502, errRefused))

	evs := flushed(t, o, tr)
	if len(evs) != 1 {
		t.Fatalf("%d events; want 1", len(evs))
	}
	ev := evs[0]
	checkNoSecrets(t, ev)
	if ev.Level != sentrygo.LevelError {
		t.Errorf("level %q; want error", ev.Level)
	}
	if len(ev.Exception) != 1 || ev.Exception[0].Type != "connection refused" || ev.Exception[0].Value != errRefused.Error() {
		t.Errorf("exception %+v", ev.Exception)
	}
	for k, want := range map[string]string{
		"status": "502", "upstream": "127.0.0.1:9", "error.type": "connection refused", "error.source": "upstream",
	} {
		if ev.Tags[k] != want {
			t.Errorf("tag %s = %q; want %q", k, ev.Tags[k], want)
		}
	}
	if want := "gotthard gateway 502 connection refused"; strings.Join(ev.Fingerprint, " ") != want {
		t.Errorf("fingerprint %q; want %q", ev.Fingerprint, want)
	}
}

func TestWhatIsReported(t *testing.T) {
	fiveXX := func(s int) bool { return s >= 500 }
	tests := []struct {
		name   string
		status int
		err    error
		report func(int) bool
		want   int
	}{
		{name: "200", status: 200},
		{name: "204", status: 204},
		{name: "404", status: 404},
		{name: "499 client left", status: 499, err: errors.New("client closed")},
		{name: "400 with error", status: 400, err: errors.New("bad request")},
		{name: "502 from proxy", status: 502, err: errRefused, want: 1},
		{name: "504 from proxy", status: 504, err: errors.New("timeout"), want: 1},
		{name: "500 from peer", status: 500},
		{name: "503 from peer", status: 503},
		{name: "503 from peer, ReportStatus", status: 503, report: fiveXX, want: 1},
		{name: "200, ReportStatus", status: 200, report: fiveXX},
		{name: "429, ReportStatus", status: 429, report: func(s int) bool { return s == 429 }, want: 1},
		{name: "502 from proxy, ReportStatus refuses", status: 502, err: errRefused, report: func(int) bool { return false }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, tr := newObserver(t, Options{ReportStatus: tt.report})
			o.RequestEnd(request(tt.status, tt.err))
			evs := flushed(t, o, tr)
			if len(evs) != tt.want {
				t.Fatalf("%d events; want %d", len(evs), tt.want)
			}
			if len(evs) == 1 && tt.err == nil && evs[0].Message == "" {
				t.Errorf("event without error has no message")
			}
		})
	}
}

func TestStatusEventWithoutError(t *testing.T) {
	o, tr := newObserver(t, Options{ReportStatus: func(s int) bool { return s >= 500 }})
	o.RequestEnd(request(503, nil))
	evs := flushed(t, o, tr)
	if len(evs) != 1 {
		t.Fatalf("%d events; want 1", len(evs))
	}
	if ev := evs[0]; ev.Message != "503 Service Unavailable" || len(ev.Exception) != 0 || ev.Level != sentrygo.LevelError {
		t.Errorf("event %q %v %q", ev.Message, ev.Exception, ev.Level)
	}
}

func TestHeadersAndQuery(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		headers map[string]string
		query   string
	}{
		{name: "default", headers: map[string]string{"User-Agent": "curl/8.5.0"}},
		{name: "none", opts: Options{Headers: []string{}}},
		{name: "allow-list", opts: Options{Headers: []string{"x-request-id", "User-Agent"}},
			headers: map[string]string{"X-Request-Id": "r-1", "User-Agent": "curl/8.5.0"}},
		{name: "query", opts: Options{Query: true}, headers: map[string]string{"User-Agent": "curl/8.5.0"},
			query: "token=q-secret&x=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, tr := newObserver(t, tt.opts)
			r := request(502, errRefused)
			r.Header = append(secretHeader(), [2]string{"X-Request-Id", "r-1"})
			o.RequestEnd(r)
			evs := flushed(t, o, tr)
			if len(evs) != 1 {
				t.Fatalf("%d events; want 1", len(evs))
			}
			req := evs[0].Request
			if len(req.Headers) != len(tt.headers) {
				t.Errorf("headers %v; want %v", req.Headers, tt.headers)
			}
			for k, v := range tt.headers {
				if req.Headers[k] != v {
					t.Errorf("header %s = %q; want %q", k, req.Headers[k], v)
				}
			}
			if req.QueryString != tt.query {
				t.Errorf("query %q; want %q", req.QueryString, tt.query)
			}
			if req.URL != "http://shop.example/cart/checkout" {
				t.Errorf("URL %q", req.URL)
			}
			js := eventJSON(t, evs[0])
			for _, s := range secrets[:4] {
				if strings.Contains(js, s) {
					t.Errorf("event contains %q", s)
				}
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	// One token an hour: the burst is all this test can get.
	o, tr := newObserver(t, Options{EventsPerSecond: 1.0 / 3600, Burst: 3})
	for range 10 {
		o.RequestEnd(request(502, errRefused))
	}
	if evs := flushed(t, o, tr); len(evs) != 3 {
		t.Errorf("%d events; want the burst, 3", len(evs))
	}
	if o.Dropped() != 7 || o.Reported() != 3 {
		t.Errorf("Dropped %d Reported %d; want 7, 3", o.Dropped(), o.Reported())
	}
	// 200s do not take tokens and are not counted as dropped.
	o.RequestEnd(request(200, nil))
	if o.Dropped() != 7 {
		t.Errorf("Dropped %d after a 200; want 7", o.Dropped())
	}
}

// TestRateLimitPanics: panics have a bucket of their own, which a storm of failures
// does not empty, and which limits them as much.
func TestRateLimitPanics(t *testing.T) {
	o, tr := newObserver(t, Options{EventsPerSecond: 1.0 / 3600, Burst: 2})
	for range 5 {
		o.RequestEnd(request(502, errRefused))
	}
	for range 3 {
		r := request(500, nil)
		r.Panic, r.Stack = panicking()
		o.RequestEnd(r)
	}
	evs := flushed(t, o, tr)
	panics := 0
	for _, ev := range evs {
		if ev.Level == sentrygo.LevelFatal {
			panics++
		}
	}
	if len(evs) != 4 || panics != 2 || o.Dropped() != 4 {
		t.Errorf("%d events, %d of them panics, %d dropped; want 2 failures and 2 panics sent, 3 and 1 dropped",
			len(evs), panics, o.Dropped())
	}
}

func TestRateLimitRefills(t *testing.T) {
	o, tr := newObserver(t, Options{EventsPerSecond: 10, Burst: 2})
	var now int64
	o.now = func() int64 { return now }
	o.panics, o.failures = newBucket(10, 2, 0), newBucket(10, 2, 0)
	for range 5 {
		o.RequestEnd(request(502, errRefused))
	}
	now += int64(250 * time.Millisecond) // 2.5 tokens' worth, capped at the burst
	for range 5 {
		o.RequestEnd(request(502, errRefused))
	}
	if evs := flushed(t, o, tr); len(evs) != 4 {
		t.Errorf("%d events; want 4", len(evs))
	}
	if o.Dropped() != 6 {
		t.Errorf("Dropped %d; want 6", o.Dropped())
	}
}

func TestConcurrent(t *testing.T) {
	o, tr := newObserver(t, Options{EventsPerSecond: 1.0 / 3600, Burst: 50})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				if (i+j)%2 == 0 {
					o.RequestEnd(request(200, nil))
				} else {
					o.RequestEnd(request(502, errRefused))
				}
			}
		})
	}
	wg.Wait()
	evs := flushed(t, o, tr)
	if got := uint64(len(evs)); got != o.Reported() || got+o.Dropped() != 400 || got > 50 {
		t.Errorf("%d events, Reported %d, Dropped %d; want at most 50, adding up to 400", got, o.Reported(), o.Dropped())
	}
}

// stuckTransport blocks SendEvent until release is closed.
type stuckTransport struct {
	transport
	entered chan struct{}
	release chan struct{}
}

func (t *stuckTransport) SendEvent(e *sentrygo.Event) {
	t.entered <- struct{}{}
	<-t.release
	t.transport.SendEvent(e)
}

func TestStuckClient(t *testing.T) {
	tr := &stuckTransport{transport: transport{flushOK: true}, entered: make(chan struct{}, 10), release: make(chan struct{})}
	cl, err := sentrygo.NewClient(sentrygo.ClientOptions{Transport: tr, Release: "x", DisableMetrics: true, DisableClientReports: true})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	o, err := New(Options{Client: cl})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	o.maxPending = 2
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 5 {
			o.RequestEnd(request(502, errRefused)) // returns at once, the client stuck or not
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("RequestEnd waited for the client")
	}
	<-tr.entered
	<-tr.entered
	if o.Flush(0) {
		t.Error("Flush(0) reported success with events stuck")
	}
	close(tr.release)
	if !o.Flush(10 * time.Second) {
		t.Fatal("Flush timed out")
	}
	if len(tr.Events()) != 2 || o.Dropped() != 3 {
		t.Errorf("%d events, Dropped %d; want 2 and 3 (maxPending is the most handed over at once)", len(tr.Events()), o.Dropped())
	}
}

func TestRun(t *testing.T) {
	t.Run("flushed", func(t *testing.T) {
		o, tr := newObserver(t, Options{})
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan error, 1)
		go func() { ran <- o.Run(ctx) }()
		o.RequestEnd(request(502, errRefused))
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
		if len(tr.Events()) != 1 {
			t.Errorf("%d events after Run; want 1", len(tr.Events()))
		}
	})
	t.Run("timeout", func(t *testing.T) {
		o, tr := newObserver(t, Options{FlushTimeout: time.Millisecond})
		tr.flushOK = false
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := o.Run(ctx); !errors.Is(err, ErrFlushTimeout) {
			t.Errorf("Run: %v; want ErrFlushTimeout", err)
		}
	})
}

func TestClose(t *testing.T) {
	o, tr := newObserver(t, Options{})
	o.RequestEnd(request(502, errRefused))
	o.Close()
	if len(tr.Events()) != 1 {
		t.Errorf("%d events after Close; want the one reported before", len(tr.Events()))
	}
	o.RequestEnd(request(502, errRefused))
	if o.Dropped() != 1 {
		t.Errorf("Dropped %d after Close; want 1", o.Dropped())
	}
	o.Close() // a second Close does nothing
}

// The Observer is what a service and a server take.
var (
	_ observe.Observer = (*Observer)(nil)
	_ interface {
		Name() string
		Run(context.Context) error
	} = (*Observer)(nil)
)
