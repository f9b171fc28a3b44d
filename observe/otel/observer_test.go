package otel_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/gotthard-proxy/gotthard/message"
	"github.com/gotthard-proxy/gotthard/observe"
	"github.com/gotthard-proxy/gotthard/observe/otel"
)

const (
	clientTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientSpanID  = "00f067aa0ba902b7"
	clientParent  = "00-" + clientTraceID + "-" + clientSpanID + "-01"
)

// newRecorded returns an observer whose spans, all sampled, go to the returned
// recorder.
func newRecorded(t testing.TB, o otel.Options) (*otel.Observer, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	o.TracerProvider = tp
	obs, err := otel.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return obs, rec
}

// request returns a request as a service fills it before RequestStart.
func request(method, target string, fields ...string) *observe.Request {
	h := new(message.Header)
	for i := 0; i+1 < len(fields); i += 2 {
		h.Add(fields[i], fields[i+1])
	}
	return &observe.Request{
		Service: "gateway",
		Proto:   "HTTP/1.1",
		Scheme:  "http",
		Method:  method,
		Target:  target,
		Host:    "example.com:8080",
		Client:  "192.0.2.7",
		Header:  h,
		Start:   time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC),
	}
}

// attempt is one attempt's events: the attempt to send, its peer's status or error.
type attempt struct {
	peer    string
	status  int
	err     error
	errType string
}

// cycle runs the events of one request with the given attempts and ends it with
// status; it returns the upstream header of each attempt that connected.
func cycle(obs observe.Observer, r *observe.Request, status int, attempts ...attempt) []*message.Header {
	var sent []*message.Header
	obs.RequestStart(r)
	at := r.Start
	for i, a := range attempts {
		at = at.Add(time.Millisecond)
		att := &observe.Attempt{N: i, Peer: a.peer, Start: at}
		obs.AttemptStart(r, att)
		if a.err == nil {
			h := new(message.Header)
			h.Add("Host", r.Host)
			att.Proto, att.Connected = "HTTP/1.1", at
			obs.UpstreamRequest(r, att, h)
			sent = append(sent, h)
		}
		at = at.Add(time.Millisecond)
		att.End, att.Status, att.Err, att.ErrType = at, a.status, a.err, a.errType
		obs.AttemptEnd(r, att)
	}
	r.End, r.Status, r.Attempts = at.Add(time.Millisecond), status, len(attempts)
	if status >= 500 && len(attempts) > 0 {
		last := attempts[len(attempts)-1]
		r.Err, r.ErrType, r.ErrSource = last.err, last.errType, "upstream"
	}
	obs.RequestEnd(r)
	return sent
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := make(map[attribute.Key]attribute.Value)
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

// checkAttrs checks that span has the attributes of want (values as Value.String prints
// them) and none of absent.
func checkAttrs(t *testing.T, span sdktrace.ReadOnlySpan, want map[string]string, absent ...string) {
	t.Helper()
	got := attrs(span)
	for k, v := range want {
		if g, ok := got[attribute.Key(k)]; !ok || g.String() != v {
			t.Errorf("%s span: %s = %q (present %v), want %q", span.SpanKind(), k, g.String(), ok, v)
		}
	}
	for _, k := range absent {
		if g, ok := got[attribute.Key(k)]; ok {
			t.Errorf("%s span: %s = %q, want none", span.SpanKind(), k, g.String())
		}
	}
}

// split returns the server span and the client spans of ended, in order.
func split(t *testing.T, ended []sdktrace.ReadOnlySpan, clients int) (server sdktrace.ReadOnlySpan, client []sdktrace.ReadOnlySpan) {
	t.Helper()
	for _, s := range ended {
		switch s.SpanKind() {
		case trace.SpanKindServer:
			if server != nil {
				t.Fatal("two server spans")
			}
			server = s
		case trace.SpanKindClient:
			client = append(client, s)
		default:
			t.Fatalf("span %q of kind %s", s.Name(), s.SpanKind())
		}
	}
	if server == nil || len(client) != clients {
		t.Fatalf("%d spans: server %v, %d client spans, want %d", len(ended), server != nil, len(client), clients)
	}
	return server, client
}

func TestSpans(t *testing.T) {
	obs, rec := newRecorded(t, otel.Options{})
	r := request("GET", "/a/b?token=secret", "User-Agent", "curl/8.0", "traceparent", clientParent, "tracestate", "vendor=x")
	start := r.Start
	sent := cycle(obs, r, 200, attempt{peer: "10.0.0.7:9000", status: 200})

	server, clients := split(t, rec.Ended(), 1)
	client := clients[0]

	// The server span continues the client's trace; the client span is its child.
	if got := server.Parent(); got.TraceID().String() != clientTraceID || got.SpanID().String() != clientSpanID || !got.IsRemote() {
		t.Errorf("server span's parent = %s/%s remote %v, want the client's %s/%s", got.TraceID(), got.SpanID(), got.IsRemote(), clientTraceID, clientSpanID)
	}
	if server.SpanContext().TraceID().String() != clientTraceID {
		t.Errorf("server span's trace = %s, want %s", server.SpanContext().TraceID(), clientTraceID)
	}
	if got := client.Parent(); got.SpanID() != server.SpanContext().SpanID() || got.TraceID() != server.SpanContext().TraceID() {
		t.Errorf("client span's parent = %s/%s, want the server span %s", got.TraceID(), got.SpanID(), server.SpanContext().SpanID())
	}
	if server.Name() != "GET" || client.Name() != "GET" {
		t.Errorf("names %q, %q, want GET, GET", server.Name(), client.Name())
	}
	if !server.StartTime().Equal(start) || !server.EndTime().Equal(r.End) {
		t.Errorf("server span %v..%v, want %v..%v", server.StartTime(), server.EndTime(), start, r.End)
	}
	if !client.StartTime().Equal(start.Add(time.Millisecond)) || !client.EndTime().Equal(start.Add(2*time.Millisecond)) {
		t.Errorf("client span %v..%v", client.StartTime(), client.EndTime())
	}
	if got := client.SpanContext().TraceState().Get("vendor"); got != "x" {
		t.Errorf("client span's tracestate vendor = %q, want x", got)
	}
	checkAttrs(t, server, map[string]string{
		"http.request.method":       "GET",
		"url.scheme":                "http",
		"url.path":                  "/a/b",
		"server.address":            "example.com",
		"server.port":               "8080",
		"network.protocol.version":  "1.1",
		"client.address":            "192.0.2.7",
		"user_agent.original":       "curl/8.0",
		"http.response.status_code": "200",
	}, "url.query", "error.type", "http.route")
	checkAttrs(t, client, map[string]string{
		"http.request.method":       "GET",
		"server.address":            "10.0.0.7",
		"server.port":               "9000",
		"url.full":                  "http://10.0.0.7:9000/a/b",
		"network.protocol.version":  "1.1",
		"http.response.status_code": "200",
	}, "http.request.resend_count", "error.type")
	for _, s := range []sdktrace.ReadOnlySpan{server, client} {
		if s.Status().Code != codes.Unset {
			t.Errorf("%s span status %v, want unset", s.SpanKind(), s.Status())
		}
		if s.InstrumentationScope().Name != otel.ScopeName {
			t.Errorf("scope %q", s.InstrumentationScope().Name)
		}
	}

	// The upstream request carries the client span's context.
	want := fmt.Sprintf("00-%s-%s-01", client.SpanContext().TraceID(), client.SpanContext().SpanID())
	if got := sent[0].Get("traceparent"); got != want {
		t.Errorf("upstream traceparent = %q, want %q", got, want)
	}
	if got := sent[0].Get("tracestate"); got != "vendor=x" {
		t.Errorf("upstream tracestate = %q, want vendor=x", got)
	}
	if r.Data != nil {
		t.Errorf("Request.Data = %v after RequestEnd, want nil", r.Data)
	}
}

func TestNewTrace(t *testing.T) {
	// Without a traceparent, or with one that does not parse, the server span starts
	// a trace; the client's own field is replaced upstream.
	for _, tc := range []struct {
		name   string
		fields []string
	}{
		{"none", nil},
		{"invalid", []string{"traceparent", "00-zz-00f067aa0ba902b7-01"}},
		{"zero trace id", []string{"traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs, rec := newRecorded(t, otel.Options{})
			r := request("POST", "/", tc.fields...)
			sent := cycle(obs, r, 201, attempt{peer: "10.0.0.7:9000", status: 201})
			server, clients := split(t, rec.Ended(), 1)
			if server.Parent().IsValid() {
				t.Errorf("server span has parent %v", server.Parent())
			}
			sc := clients[0].SpanContext()
			if want := fmt.Sprintf("00-%s-%s-01", sc.TraceID(), sc.SpanID()); sent[0].Get("traceparent") != want {
				t.Errorf("upstream traceparent = %q, want %q", sent[0].Get("traceparent"), want)
			}
			if server.Name() != "POST" {
				t.Errorf("name %q", server.Name())
			}
		})
	}
}

func TestFailedAttempt(t *testing.T) {
	obs, rec := newRecorded(t, otel.Options{})
	r := request("GET", "/x")
	refused := errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
	sent := cycle(obs, r, 502, attempt{peer: "127.0.0.1:1", err: refused, errType: "ConnectRefused"})
	if len(sent) != 0 {
		t.Fatal("an attempt that did not connect sent a request")
	}
	server, clients := split(t, rec.Ended(), 1)
	client := clients[0]
	if s := client.Status(); s.Code != codes.Error || s.Description != refused.Error() {
		t.Errorf("client span status %v, want Error %q", s, refused)
	}
	checkAttrs(t, client, map[string]string{"error.type": "ConnectRefused", "server.port": "1"},
		"http.response.status_code", "network.protocol.version")
	if s := server.Status(); s.Code != codes.Error {
		t.Errorf("server span status %v, want Error", s)
	}
	checkAttrs(t, server, map[string]string{"error.type": "ConnectRefused", "http.response.status_code": "502"})
}

func TestStatus(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		upstream, downstream int
		serverErr, clientErr bool
		serverType           string
	}{
		{"200", 200, 200, false, false, ""},
		{"304", 304, 304, false, false, ""},
		{"404", 404, 404, false, true, ""},
		{"503 relayed", 503, 503, true, true, "503"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs, rec := newRecorded(t, otel.Options{})
			r := request("GET", "/")
			obs.RequestStart(r)
			a := &observe.Attempt{Peer: "10.0.0.7:80", Start: r.Start}
			obs.AttemptStart(r, a)
			a.Status, a.End = tc.upstream, r.Start
			obs.AttemptEnd(r, a)
			r.Status, r.End = tc.downstream, r.Start
			obs.RequestEnd(r)
			server, clients := split(t, rec.Ended(), 1)
			if got := server.Status().Code == codes.Error; got != tc.serverErr {
				t.Errorf("server span status %v", server.Status())
			}
			if got := clients[0].Status().Code == codes.Error; got != tc.clientErr {
				t.Errorf("client span status %v", clients[0].Status())
			}
			if tc.serverType != "" {
				checkAttrs(t, server, map[string]string{"error.type": tc.serverType})
			} else {
				checkAttrs(t, server, nil, "error.type")
			}
		})
	}
}

func TestRequestErrors(t *testing.T) {
	// A request that failed before any peer: a client that left (499) and a bad
	// request keep the server span's status unset but name the error; one that
	// ended with no status at all is an error.
	for _, tc := range []struct {
		name    string
		status  int
		errType string
		isErr   bool
	}{
		{"client left", 499, "ConnectionClosed", false},
		{"bad request", 400, "InvalidHTTPHeader", false},
		{"no status", 0, "WriteError", true},
		{"panic", 500, "", true}, // error.type is then the status
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs, rec := newRecorded(t, otel.Options{})
			r := request("GET", "/")
			obs.RequestStart(r)
			r.Status, r.Err, r.ErrType, r.End = tc.status, errors.New(tc.name), tc.errType, r.Start
			obs.RequestEnd(r)
			server, _ := split(t, rec.Ended(), 0)
			if got := server.Status().Code == codes.Error; got != tc.isErr {
				t.Errorf("status %v, want error %v", server.Status(), tc.isErr)
			}
			want := tc.errType
			if want == "" {
				want = fmt.Sprint(tc.status)
			}
			checkAttrs(t, server, map[string]string{"error.type": want})
		})
	}
}

func TestRetry(t *testing.T) {
	obs, rec := newRecorded(t, otel.Options{})
	r := request("GET", "/r")
	sent := cycle(obs, r, 200,
		attempt{peer: "10.0.0.7:9000", err: errors.New("refused"), errType: "ConnectRefused"},
		attempt{peer: "10.0.0.8:9000", status: 200})
	server, clients := split(t, rec.Ended(), 2)
	for i, c := range clients {
		if c.Parent().SpanID() != server.SpanContext().SpanID() {
			t.Errorf("attempt %d: parent %s, want the server span", i, c.Parent().SpanID())
		}
	}
	checkAttrs(t, clients[0], map[string]string{"server.address": "10.0.0.7", "error.type": "ConnectRefused"}, "http.request.resend_count")
	checkAttrs(t, clients[1], map[string]string{"server.address": "10.0.0.8", "http.request.resend_count": "1"}, "error.type")
	if clients[0].Status().Code != codes.Error || clients[1].Status().Code != codes.Unset || server.Status().Code != codes.Unset {
		t.Errorf("statuses %v %v %v", clients[0].Status(), clients[1].Status(), server.Status())
	}
	if want := clients[1].SpanContext().SpanID().String(); len(sent) != 1 || sent[0].Get("traceparent")[36:52] != want {
		t.Errorf("upstream traceparent %q, want span id %s", sent[0].Get("traceparent"), want)
	}
}

func TestOptions(t *testing.T) {
	obs, rec := newRecorded(t, otel.Options{
		Route: func(r *observe.Request) string {
			if r.Target == "/health" {
				return ""
			}
			return "/users/{id}"
		},
		Filter: func(r *observe.Request) bool { return r.Target != "/skip" },
		Query:  true,
	})

	r := request("GET", "/users/7?fields=name")
	cycle(obs, r, 200, attempt{peer: "[::1]:9000", status: 200})
	server, clients := split(t, rec.Ended(), 1)
	if server.Name() != "GET /users/{id}" {
		t.Errorf("server span name %q", server.Name())
	}
	checkAttrs(t, server, map[string]string{"http.route": "/users/{id}", "url.query": "fields=name", "url.path": "/users/7"})
	checkAttrs(t, clients[0], map[string]string{"url.full": "http://[::1]:9000/users/7?fields=name", "server.address": "::1", "server.port": "9000"})
	rec.Reset()

	r = request("GET", "/health")
	cycle(obs, r, 200)
	server, _ = split(t, rec.Ended(), 0)
	if server.Name() != "GET" {
		t.Errorf("server span name %q without a route", server.Name())
	}
	checkAttrs(t, server, nil, "http.route", "url.query")
	rec.Reset()

	// A filtered request: no spans, nothing written upstream.
	r = request("GET", "/skip", "traceparent", clientParent)
	sent := cycle(obs, r, 200, attempt{peer: "10.0.0.7:9000", status: 200})
	if n := len(rec.Ended()) + len(rec.Started()); n != 0 {
		t.Errorf("%d spans for a filtered request", n)
	}
	if sent[0].Has("traceparent") {
		t.Error("traceparent written for a filtered request")
	}
}

func TestOtherMethod(t *testing.T) {
	obs, rec := newRecorded(t, otel.Options{})
	r := request("PROPFIND", "/dav")
	r.Host, r.Scheme = "example.com", "https"
	cycle(obs, r, 207, attempt{peer: "/run/origin.sock", status: 207})
	server, clients := split(t, rec.Ended(), 1)
	if server.Name() != "HTTP" || clients[0].Name() != "HTTP" {
		t.Errorf("names %q %q, want HTTP", server.Name(), clients[0].Name())
	}
	checkAttrs(t, server, map[string]string{
		"http.request.method": "_OTHER", "http.request.method_original": "PROPFIND",
		"server.address": "example.com", "server.port": "443", "url.scheme": "https",
	})
	checkAttrs(t, clients[0], map[string]string{
		"server.address": "/run/origin.sock", "network.transport": "unix", "url.full": "http://localhost/dav",
	}, "server.port")
}

func TestNeverSample(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()), sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(t.Context())
	obs, err := otel.New(otel.Options{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	r := request("GET", "/", "traceparent", clientParent)
	sent := cycle(obs, r, 200, attempt{peer: "10.0.0.7:9000", status: 200})
	if n := len(rec.Ended()); n != 0 {
		t.Errorf("%d spans recorded", n)
	}
	// The decision travels on: the origin is told not to sample, in the same trace.
	got := sent[0].Get("traceparent")
	if len(got) != 55 || got[3:35] != clientTraceID || got[53:] != "00" || got[36:52] == clientSpanID {
		t.Errorf("upstream traceparent %q, want trace %s, a new span id, not sampled", got, clientTraceID)
	}
}

func TestGlobalProvider(t *testing.T) {
	// With no provider, the global one: a no-op until the program sets one. It keeps
	// the client's trace context going upstream.
	obs, err := otel.New(otel.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := request("GET", "/", "traceparent", clientParent)
	sent := cycle(obs, r, 200, attempt{peer: "10.0.0.7:9000", status: 200})
	if got := sent[0].Get("traceparent"); got != clientParent {
		t.Errorf("upstream traceparent %q, want %q", got, clientParent)
	}
}

func TestPropagator(t *testing.T) {
	obs, rec := newRecorded(t, otel.Options{
		Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	})
	r := request("GET", "/", "traceparent", clientParent, "baggage", "tenant=acme")
	sent := cycle(obs, r, 200, attempt{peer: "10.0.0.7:9000", status: 200})
	split(t, rec.Ended(), 1)
	if got := sent[0].Get("baggage"); got != "tenant=acme" {
		t.Errorf("upstream baggage %q", got)
	}
}

func TestConcurrent(t *testing.T) {
	obs, rec := newRecorded(t, otel.Options{})
	const workers, each = 8, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				r := request("GET", fmt.Sprintf("/%d/%d", w, i), "traceparent", clientParent)
				sent := cycle(obs, r, 200, attempt{peer: "10.0.0.7:9000", status: 200})
				if len(sent) != 1 || sent[0].Get("traceparent") == clientParent {
					t.Errorf("upstream traceparent %q", sent[0].Get("traceparent"))
					return
				}
			}
		})
	}
	wg.Wait()
	if n := len(rec.Ended()); n != 2*workers*each {
		t.Errorf("%d spans, want %d", n, 2*workers*each)
	}
	// Each client span is the child of the server span of its own request.
	servers := make(map[trace.SpanID]string)
	for _, s := range rec.Ended() {
		if s.SpanKind() == trace.SpanKindServer {
			servers[s.SpanContext().SpanID()] = attrs(s)["url.path"].AsString()
		}
	}
	for _, s := range rec.Ended() {
		if s.SpanKind() == trace.SpanKindClient {
			path, ok := servers[s.Parent().SpanID()]
			if !ok || "http://10.0.0.7:9000"+path != attrs(s)["url.full"].AsString() {
				t.Fatalf("client span %s under %q (known %v)", attrs(s)["url.full"].AsString(), path, ok)
			}
		}
	}
}

func TestHeaderCarrier(t *testing.T) {
	h := new(message.Header)
	h.Add("Traceparent", "a")
	h.Add("X-One", "1")
	h.Add("traceparent", "b")
	c := &otel.HeaderCarrier{Header: h}
	if got := fmt.Sprint(c.Keys()); got != "[Traceparent X-One]" {
		t.Errorf("Keys() = %s", got)
	}
	if c.Get("TRACEPARENT") != "a" {
		t.Errorf("Get = %q", c.Get("TRACEPARENT"))
	}
	c.Set("traceparent", "c")
	if got := fmt.Sprint(h.Values("traceparent")); got != "[c]" {
		t.Errorf("after Set: %s", got)
	}
	var empty otel.HeaderCarrier
	empty.Set("a", "b")
	if empty.Get("a") != "" || empty.Keys() != nil {
		t.Error("a carrier without a header is not empty")
	}
	if n := testing.AllocsPerRun(100, func() {
		var tc propagation.TextMapCarrier = c
		_ = tc.Get("traceparent")
		tc.Set("traceparent", "d")
	}); n != 0 {
		t.Errorf("Get and Set allocate %v times", n)
	}
}

// countingPropagator is W3C trace context that counts its Extract calls.
type countingPropagator struct {
	propagation.TraceContext
	extracts *int
}

func (p countingPropagator) Extract(ctx context.Context, c propagation.TextMapCarrier) context.Context {
	*p.extracts++
	return p.TraceContext.Extract(ctx, c)
}

// TestExtractOnlyWithFields: a request with none of the propagator's fields is not
// handed to Extract (there is nothing to find); one with them is.
func TestExtractOnlyWithFields(t *testing.T) {
	n := 0
	obs, _ := newRecorded(t, otel.Options{Propagator: countingPropagator{extracts: &n}})
	cycle(obs, request("GET", "/"), 200, attempt{peer: "10.0.0.7:9000", status: 200})
	if n != 0 {
		t.Errorf("%d extracts for a request without trace context", n)
	}
	cycle(obs, request("GET", "/", "traceparent", clientParent), 200, attempt{peer: "10.0.0.7:9000", status: 200})
	if n != 1 {
		t.Errorf("%d extracts for a request with a traceparent, want 1", n)
	}
}

// TestGRPC: a gRPC call's server span has the RPC attributes, and a grpc-status that is
// a server's error makes the span an error though the HTTP status is 200.
func TestGRPC(t *testing.T) {
	for _, tc := range []struct {
		name   string
		code   int
		status string
		err    bool
	}{
		{"ok", 0, "OK", false},
		{"not found", 5, "NOT_FOUND", false},
		{"unavailable", 14, "UNAVAILABLE", true},
		{"out of range code", 99, "99", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs, rec := newRecorded(t, otel.Options{})
			r := request("POST", "/helloworld.Greeter/SayHello", "Content-Type", "application/grpc")
			r.Proto = "HTTP/2"
			r.GRPC, r.GRPCStatus = true, tc.code
			cycle(obs, r, 200, attempt{peer: "10.0.0.7:50051", status: 200})
			server, _ := split(t, rec.Ended(), 1)
			want := map[string]string{
				"rpc.system.name":           "grpc",
				"rpc.response.status_code":  tc.status,
				"rpc.method":                "_OTHER",
				"rpc.method_original":       "helloworld.Greeter/SayHello",
				"http.response.status_code": "200",
			}
			if tc.err {
				want["error.type"] = tc.status
				checkAttrs(t, server, want)
			} else {
				checkAttrs(t, server, want, "error.type")
			}
			if got := server.Status().Code == codes.Error; got != tc.err {
				t.Errorf("server span status %v, want error %v", server.Status(), tc.err)
			}
		})
	}
	// Not gRPC: no RPC attributes.
	obs, rec := newRecorded(t, otel.Options{})
	cycle(obs, request("GET", "/a/b"), 200, attempt{peer: "10.0.0.7:80", status: 200})
	server, _ := split(t, rec.Ended(), 1)
	checkAttrs(t, server, nil, "rpc.system.name", "rpc.method", "rpc.response.status_code")
}
