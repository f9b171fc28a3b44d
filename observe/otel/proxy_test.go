package otel_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/gotthard-proxy/gotthard/observe"
	"github.com/gotthard-proxy/gotthard/observe/otel"
	"github.com/gotthard-proxy/gotthard/proxy"
	"github.com/gotthard-proxy/gotthard/proxy/proxytest"
)

// hops sends a request to its peers in turn: the first attempt to peers[0], a retry
// to peers[1], and so on (the last one again when they run out).
type hops struct {
	proxy.Phases[*hopCtx]
	peers []*proxy.Peer
}

type hopCtx struct{ n int }

func (*hops) NewCtx() *hopCtx { return &hopCtx{} }

func (h *hops) UpstreamPeer(_ context.Context, s *proxy.Session, c *hopCtx) (*proxy.Peer, error) {
	if s.Request().Path() == "/once" { // no retry: the dead peer alone
		return h.peers[0], nil
	}
	p := h.peers[min(c.n, len(h.peers)-1)]
	c.n++
	return p, nil
}

func (h *hops) FailToConnect(_ context.Context, s *proxy.Session, _ *hopCtx, _ *proxy.Peer, err *proxy.Error) *proxy.Error {
	if s.Request().Path() == "/once" {
		err.Retry = false
	}
	return err
}

// spanSink is a span processor that hands each ended span to a channel, so a test
// can wait for a request's spans: they end after the client has its response.
type spanSink struct{ ended chan sdktrace.ReadOnlySpan }

func (s *spanSink) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (s *spanSink) OnEnd(span sdktrace.ReadOnlySpan)                { s.ended <- span }
func (s *spanSink) Shutdown(context.Context) error                  { return nil }
func (s *spanSink) ForceFlush(context.Context) error                { return nil }

// next returns the spans of the next request to end: its client spans, then its
// server span (the last to end).
func (s *spanSink) next(t *testing.T) (server sdktrace.ReadOnlySpan, clients []sdktrace.ReadOnlySpan) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case span := <-s.ended:
			if span.SpanKind() == trace.SpanKindServer {
				return span, clients
			}
			clients = append(clients, span)
		case <-deadline.C:
			t.Fatalf("no server span after 10s (%d client spans)", len(clients))
		}
	}
}

// TestProxy runs requests through a real proxy service to a real origin, over
// HTTP/1.1 and h2c, and checks the spans and the trace context the origin gets.
func TestProxy(t *testing.T) {
	seen := make(chan string, 16) // the traceparent each origin request carried
	origin := proxytest.NewOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Get("traceparent")
		io.WriteString(w, "hello")
	}))
	originAddr := origin.Addr
	_, originPort, _ := net.SplitHostPort(originAddr)

	// deadPeer returns a peer at an address nothing listens on (one just freed: a
	// fresh one for each test, so that another listener is unlikely to have it).
	deadPeer := func(t *testing.T) *proxy.Peer {
		p, err := proxy.NewPeer(proxytest.DeadAddr(t))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	livePeer, err := proxy.NewPeer(originAddr)
	if err != nil {
		t.Fatal(err)
	}

	sink := &spanSink{ended: make(chan sdktrace.ReadOnlySpan, 64)}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(sink))
	defer tp.Shutdown(context.Background())
	obs, err := otel.New(otel.Options{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}

	cert := proxytest.NewCert(t)

	// serve starts a proxy service to peers, on a TLS endpoint if secure. What an
	// earlier test that failed left unread is dropped first.
	serve := func(t *testing.T, secure bool, peers ...*proxy.Peer) string {
		for len(seen) > 0 {
			<-seen
		}
		for len(sink.ended) > 0 {
			<-sink.ended
		}
		svc := proxytest.NewService(t, "traced", &hops{peers: peers}, proxy.ServiceOptions{
			Observers: []observe.Observer{obs},
			Logger:    slog.New(slog.DiscardHandler), // the dead peer's warnings
		})
		if secure {
			svc.AddTLS("127.0.0.1:0", cert.Config)
		}
		return proxytest.Serve(t, svc)
	}

	for _, proto := range []struct {
		name, version string
		secure        bool
		client        func(t *testing.T) *http.Client
	}{
		{"HTTP/1.1", "1.1", false, func(t *testing.T) *http.Client { return proxytest.H1Client(t, nil) }},
		{"h2c", "2", false, func(t *testing.T) *http.Client { return proxytest.H2CClient(t) }},
		{"TLS HTTP/1.1", "1.1", true, func(t *testing.T) *http.Client { return proxytest.H1Client(t, cert) }},
		{"TLS HTTP/2", "2", true, func(t *testing.T) *http.Client { return proxytest.H2Client(t, cert) }},
	} {
		t.Run(proto.name, func(t *testing.T) {
			client := proto.client(t)
			scheme := "http"
			if proto.secure {
				scheme = "https"
			}
			get := func(t *testing.T, addr, path, traceparent string) *http.Response {
				t.Helper()
				req, err := http.NewRequest("GET", scheme+"://"+addr+path, nil)
				if err != nil {
					t.Fatal(err)
				}
				if traceparent != "" {
					req.Header.Set("traceparent", traceparent)
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return resp
			}
			originSaw := func(t *testing.T) string {
				t.Helper()
				select {
				case tp := <-seen:
					return tp
				case <-time.After(10 * time.Second):
					t.Fatal("the origin got no request")
					return ""
				}
			}
			// checkOrigin checks that the origin was told of span.
			checkOrigin := func(t *testing.T, got string, span sdktrace.ReadOnlySpan) {
				t.Helper()
				sc := span.SpanContext()
				if want := fmt.Sprintf("00-%s-%s-01", sc.TraceID(), sc.SpanID()); got != want {
					t.Errorf("origin got traceparent %q, want the client span's %q", got, want)
				}
			}

			t.Run("traced", func(t *testing.T) {
				addr := serve(t, proto.secure, livePeer)
				t.Cleanup(client.CloseIdleConnections) // before the service closes
				resp := get(t, addr, "/a?secret=1", clientParent)
				if resp.StatusCode != 200 || resp.Proto != "HTTP/"+proto.version && resp.Proto != "HTTP/"+proto.version+".0" {
					t.Fatalf("status %d over %s", resp.StatusCode, resp.Proto)
				}
				got := originSaw(t)
				server, clients := sink.next(t)
				if len(clients) != 1 {
					t.Fatalf("%d client spans, want 1", len(clients))
				}
				client := clients[0]
				if p := server.Parent(); p.TraceID().String() != clientTraceID || p.SpanID().String() != clientSpanID {
					t.Errorf("server span's parent %s/%s, want the client's", p.TraceID(), p.SpanID())
				}
				if client.Parent().SpanID() != server.SpanContext().SpanID() || client.SpanContext().TraceID() != server.SpanContext().TraceID() {
					t.Errorf("client span's parent %s, want the server span %s", client.Parent().SpanID(), server.SpanContext().SpanID())
				}
				if server.SpanKind() != trace.SpanKindServer || client.SpanKind() != trace.SpanKindClient {
					t.Errorf("kinds %s, %s", server.SpanKind(), client.SpanKind())
				}
				checkOrigin(t, got, client)
				host, port, _ := net.SplitHostPort(addr)
				checkAttrs(t, server, map[string]string{
					"http.request.method":       "GET",
					"url.path":                  "/a",
					"url.scheme":                scheme,
					"server.address":            host,
					"server.port":               port,
					"client.address":            "127.0.0.1",
					"network.protocol.version":  proto.version,
					"http.response.status_code": "200",
				}, "url.query", "error.type")
				checkAttrs(t, client, map[string]string{
					"http.request.method":       "GET",
					"server.address":            "127.0.0.1",
					"server.port":               originPort,
					"url.full":                  "http://" + originAddr + "/a",
					"http.response.status_code": "200",
				}, "error.type", "http.request.resend_count")
				if server.Status().Code != codes.Unset || client.Status().Code != codes.Unset {
					t.Errorf("statuses %v %v", server.Status(), client.Status())
				}
				if !server.StartTime().Before(client.StartTime()) || client.EndTime().After(server.EndTime()) {
					t.Errorf("client span %v..%v outside the server span %v..%v",
						client.StartTime(), client.EndTime(), server.StartTime(), server.EndTime())
				}
			})

			t.Run("new trace", func(t *testing.T) {
				addr := serve(t, proto.secure, livePeer)
				t.Cleanup(client.CloseIdleConnections) // before the service closes
				if status := get(t, addr, "/b", "").StatusCode; status != 200 {
					t.Fatalf("status %d", status)
				}
				got := originSaw(t)
				server, clients := sink.next(t)
				if server.Parent().IsValid() || len(clients) != 1 {
					t.Fatalf("server span's parent %v, %d client spans", server.Parent(), len(clients))
				}
				checkOrigin(t, got, clients[0])
			})

			t.Run("dead peer", func(t *testing.T) {
				addr := serve(t, proto.secure, deadPeer(t))
				t.Cleanup(client.CloseIdleConnections) // before the service closes
				if status := get(t, addr, "/once", clientParent).StatusCode; status != 502 {
					t.Fatalf("status %d, want 502", status)
				}
				server, clients := sink.next(t)
				if len(clients) != 1 {
					t.Fatalf("%d client spans, want 1", len(clients))
				}
				if server.Status().Code != codes.Error || clients[0].Status().Code != codes.Error {
					t.Errorf("statuses %v %v, want Error", server.Status(), clients[0].Status())
				}
				checkAttrs(t, server, map[string]string{"http.response.status_code": "502"})
				checkAttrs(t, clients[0], map[string]string{"server.address": "127.0.0.1"}, "http.response.status_code")
				for _, s := range []sdktrace.ReadOnlySpan{server, clients[0]} {
					if et := attrs(s)["error.type"].AsString(); et == "" || et == "_OTHER" {
						t.Errorf("%s span's error.type %q, want the proxy's error type", s.SpanKind(), et)
					}
				}
			})

			t.Run("retry", func(t *testing.T) {
				dead := deadPeer(t)
				addr := serve(t, proto.secure, dead, livePeer)
				t.Cleanup(client.CloseIdleConnections) // before the service closes
				if status := get(t, addr, "/c", clientParent).StatusCode; status != 200 {
					t.Fatalf("status %d", status)
				}
				got := originSaw(t)
				server, clients := sink.next(t)
				if len(clients) != 2 {
					t.Fatalf("%d client spans, want 2", len(clients))
				}
				for i, c := range clients {
					if c.Parent().SpanID() != server.SpanContext().SpanID() {
						t.Errorf("attempt %d's parent %s, want the server span", i, c.Parent().SpanID())
					}
				}
				_, deadPort, _ := net.SplitHostPort(dead.Address)
				checkAttrs(t, clients[0], map[string]string{"server.port": deadPort}, "http.request.resend_count")
				checkAttrs(t, clients[1], map[string]string{"server.port": originPort, "http.request.resend_count": "1"})
				if clients[0].Status().Code != codes.Error || clients[1].Status().Code != codes.Unset || server.Status().Code != codes.Unset {
					t.Errorf("statuses %v %v %v", clients[0].Status(), clients[1].Status(), server.Status())
				}
				checkOrigin(t, got, clients[1])
			})
		})
	}
}

// TestProxyNotSampled checks that a request the sampler drops still tells the origin,
// in the client's trace, not to sample it either.
func TestProxyNotSampled(t *testing.T) {
	seen := make(chan string, 1)
	origin := proxytest.NewOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Get("traceparent")
	}))
	peer, err := proxy.NewPeer(origin.Addr)
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	defer tp.Shutdown(context.Background())
	obs, err := otel.New(otel.Options{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	addr := startService(t, obs, peer)
	client := proxytest.H1Client(t, nil) // closed before the service
	req, err := http.NewRequest("GET", "http://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("traceparent", clientParent)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := <-seen // the handler ran before the response came
	if len(got) != 55 || got[3:35] != clientTraceID || got[36:52] == clientSpanID || got[53:] != "00" {
		t.Errorf("origin got traceparent %q, want trace %s, a new parent id, not sampled", got, clientTraceID)
	}
}

// TestProxySamplerDrops checks what the origin gets for requests that
// Options.Sampler drops, through a real proxy: with the client's trace context, that
// trace, not sampled, under a new parent id, and the client's tracestate; without
// one, a new trace, not sampled, so that the origin follows the proxy's decision.
func TestProxySamplerDrops(t *testing.T) {
	type fields struct{ traceparent, tracestate string }
	seen := make(chan fields, 1)
	origin := proxytest.NewOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- fields{r.Header.Get("traceparent"), r.Header.Get("tracestate")}
	}))
	peer, err := proxy.NewPeer(origin.Addr)
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	defer tp.Shutdown(context.Background())
	obs, err := otel.New(otel.Options{TracerProvider: tp, Sampler: sdkSampler(sdktrace.NeverSample())})
	if err != nil {
		t.Fatal(err)
	}
	addr := startService(t, obs, peer)
	for _, proto := range []struct {
		name   string
		client func(t *testing.T) *http.Client
	}{
		{"HTTP/1.1", func(t *testing.T) *http.Client { return proxytest.H1Client(t, nil) }},
		{"h2c", func(t *testing.T) *http.Client { return proxytest.H2CClient(t) }},
	} {
		t.Run(proto.name, func(t *testing.T) {
			client := proto.client(t) // closed before the service
			for _, tc := range []struct {
				name, traceparent, tracestate string
			}{
				{"traceparent", clientParent, "vendor=x"},
				{"none", "", ""},
			} {
				t.Run(tc.name, func(t *testing.T) {
					req, err := http.NewRequest("GET", "http://"+addr+"/", nil)
					if err != nil {
						t.Fatal(err)
					}
					if tc.traceparent != "" {
						req.Header.Set("traceparent", tc.traceparent)
						req.Header.Set("tracestate", tc.tracestate)
					}
					resp, err := client.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					got := <-seen // the handler ran before the response came
					m := traceparentRE.FindStringSubmatch(got.traceparent)
					if m == nil || m[2] == clientSpanID || m[3] != "00" || got.tracestate != tc.tracestate {
						t.Fatalf("origin got traceparent %q tracestate %q, want a new parent id, not sampled, tracestate %q",
							got.traceparent, got.tracestate, tc.tracestate)
					}
					if tc.traceparent != "" && m[1] != clientTraceID || tc.traceparent == "" && m[1] == clientTraceID {
						t.Errorf("origin got trace %s", m[1])
					}
				})
			}
		})
	}
}

// TestProxyHTTP2Upstream checks the trace context the proxy sends to an origin it
// speaks HTTP/2 to (h2c), and the attempt's protocol.
func TestProxyHTTP2Upstream(t *testing.T) {
	seen := make(chan string, 1)
	origin := proxytest.NewOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Proto + " " + r.Header.Get("traceparent")
	}))
	peer := origin.H2Peer()

	sink := &spanSink{ended: make(chan sdktrace.ReadOnlySpan, 8)}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(sink))
	defer tp.Shutdown(context.Background())
	obs, err := otel.New(otel.Options{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	addr := startService(t, obs, peer)

	resp, err := proxytest.H1Client(t, nil).Get("http://" + addr + "/h2") // closed before the service
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := <-seen
	server, clients := sink.next(t)
	if len(clients) != 1 {
		t.Fatalf("%d client spans", len(clients))
	}
	sc := clients[0].SpanContext()
	if want := fmt.Sprintf("HTTP/2.0 00-%s-%s-01", sc.TraceID(), sc.SpanID()); got != want {
		t.Errorf("origin got %q, want %q", got, want)
	}
	checkAttrs(t, clients[0], map[string]string{"network.protocol.version": "2", "http.response.status_code": "200"})
	checkAttrs(t, server, map[string]string{"network.protocol.version": "1.1", "http.response.status_code": "200"})
}

// startService serves a proxy service with obs that sends every request to peer, on
// loopback until the test ends, and returns its address.
func startService(t *testing.T, obs observe.Observer, peer *proxy.Peer) string {
	t.Helper()
	return proxytest.Serve(t, proxytest.NewService(t, "traced", proxytest.FixedPeer{Peer: peer}, proxy.ServiceOptions{
		Observers: []observe.Observer{obs},
	}))
}
