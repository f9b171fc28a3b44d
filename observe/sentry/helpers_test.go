package sentry

import (
	"context"
	"encoding/json"
	"errors"
	"net/textproto"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	sentrygo "github.com/getsentry/sentry-go"

	"github.com/gotthard-proxy/gotthard/observe"
)

// header is an observe.Header over a list of fields.
type header [][2]string

func (h header) Get(name string) string {
	for _, f := range h {
		if strings.EqualFold(f[0], name) {
			return f[1]
		}
	}
	return ""
}

func (h header) Set(string, string) { panic("observers must not change request headers") }

func (h header) Range(f func(name, value string) bool) {
	for _, kv := range h {
		if !f(kv[0], kv[1]) {
			return
		}
	}
}

var _ observe.Header = header(nil)

// secretHeader is what a client sends that must never reach Sentry.
func secretHeader() header {
	return header{
		{"Host", "shop.example"},
		{"User-Agent", "curl/8.5.0"},
		{"Cookie", "session=cookie-secret"},
		{"Authorization", "Bearer auth-secret"},
		{"Proxy-Authorization", "Basic proxy-secret"},
		{"X-Api-Key", "apikey-secret"},
	}
}

// secrets are the values of secretHeader that no event may contain.
var secrets = []string{"cookie-secret", "auth-secret", "proxy-secret", "apikey-secret", "token=q-secret"}

// transport is a sentry-go Transport that records the events it is given; flushOK is
// what its Flush returns.
type transport struct {
	mu      sync.Mutex
	events  []*sentrygo.Event
	flushOK bool
}

func (t *transport) Configure(sentrygo.ClientOptions) {}
func (t *transport) SendEvent(e *sentrygo.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.events = append(t.events, e)
}
func (t *transport) Flush(time.Duration) bool              { return t.flushOK }
func (t *transport) FlushWithContext(context.Context) bool { return t.flushOK }
func (t *transport) Close()                                {}

func (t *transport) Events() []*sentrygo.Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]*sentrygo.Event(nil), t.events...)
}

// newObserver returns an Observer sending to a client whose transport records the
// events; both are closed at the end of the test.
func newObserver(t testing.TB, opts Options) (*Observer, *transport) {
	t.Helper()
	tr := &transport{flushOK: true}
	cl, err := sentrygo.NewClient(sentrygo.ClientOptions{
		Transport:            tr,
		Release:              "gotthard-test", // (else sentry-go runs git to find one)
		DisableMetrics:       true,
		DisableClientReports: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	opts.Client = cl
	o, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		o.Close()
		cl.Close()
	})
	return o, tr
}

// flushed flushes o and returns the events its transport got.
func flushed(t testing.TB, o *Observer, tr *transport) []*sentrygo.Event {
	t.Helper()
	if !o.Flush(10 * time.Second) {
		t.Fatal("Flush timed out")
	}
	return tr.Events()
}

// request returns a request as a service fills it at RequestEnd.
func request(status int, err error) *observe.Request {
	start := time.Date(2026, 12, 6, 21, 0, 0, 0, time.UTC)
	r := &observe.Request{
		Service: "gateway", Proto: "HTTP/1.1", Scheme: "http",
		Method: "POST", Target: "/cart/checkout?token=q-secret&x=1", Host: "shop.example",
		Client: "192.0.2.7", Header: secretHeader(), Start: start,
		End: start.Add(42 * time.Millisecond), Status: status, Attempts: 1,
		Upstream: "127.0.0.1:9", Err: err,
	}
	if err != nil {
		r.ErrType, r.ErrSource = "connection refused", "upstream"
	}
	return r
}

// errRefused stands for a proxy error.
var errRefused = errors.New("dial tcp 127.0.0.1:9: connect: connection refused")

// explode indexes out of range: a runtime panic in a frame of its own.
//
//go:noinline
func explode(i int) int {
	a := []int{1}
	return a[i]
}

// panicking runs explode as a phase would be run, and returns what a service records
// of its panic: the value and the stack.
func panicking() (v any, stack []byte) {
	func() {
		defer func() {
			v = recover()
			stack = debug.Stack()
		}()
		explode(3)
	}()
	return v, stack
}

// eventJSON returns ev as sentry-go sends it.
func eventJSON(t *testing.T, ev *sentrygo.Event) string {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkNoSecrets fails if the event carries a credential or a header off the
// allow-list.
func checkNoSecrets(t *testing.T, ev *sentrygo.Event) {
	t.Helper()
	js := eventJSON(t, ev)
	for _, s := range secrets {
		if strings.Contains(js, s) {
			t.Errorf("event contains %q: %s", s, js)
		}
	}
	if ev.Request != nil {
		for name := range ev.Request.Headers {
			if textproto.CanonicalMIMEHeaderKey(name) != "User-Agent" {
				t.Errorf("event has header %s", name)
			}
		}
		if ev.Request.Cookies != "" {
			t.Errorf("event has cookies %q", ev.Request.Cookies)
		}
	}
}
