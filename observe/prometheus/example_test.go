package prometheus_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/gotthard-proxy/gotthard/observe"
	"github.com/gotthard-proxy/gotthard/observe/prometheus"
	"github.com/gotthard-proxy/gotthard/proxy"
)

// The events of one request, as a proxy service reports them, and the request counter
// they make, as a scrape of Handler shows it.
func Example() {
	m, err := prometheus.New(prometheus.Options{})
	if err != nil {
		panic(err)
	}
	start := time.Now()
	r := &observe.Request{Service: "gateway", Proto: "HTTP/1.1", Method: "GET", Target: "/", Start: start}
	m.RequestStart(r)
	a := &observe.Attempt{Peer: "127.0.0.1:8080", Start: start}
	m.AttemptStart(r, a)
	a.Status, a.End = 200, start.Add(time.Millisecond)
	m.AttemptEnd(r, a)
	r.Status, r.Attempts, r.End = 200, 1, start.Add(time.Millisecond)
	m.RequestEnd(r)

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "gotthard_requests_total") ||
			strings.HasPrefix(line, "gotthard_upstream_attempts_total") {
			fmt.Println(line)
		}
	}
	// Output:
	// gotthard_requests_total{method="GET",service="gateway",status_class="2xx"} 1
	// gotthard_upstream_attempts_total{connection="new",service="gateway"} 1
	// gotthard_upstream_attempts_total{connection="reused",service="gateway"} 0
}

// origin is the proxy of Example_proxy: every request goes to one peer.
type origin struct {
	proxy.Phases[struct{}]
	peer *proxy.Peer
}

func (origin) NewCtx() struct{} { return struct{}{} }

func (o origin) UpstreamPeer(context.Context, *proxy.Session, struct{}) (*proxy.Peer, error) {
	return o.peer, nil
}

// Metrics as the observer of a proxy service: two requests through it, then the
// request counter as a scrape shows it.
func Example_proxy() {
	m, err := prometheus.New(prometheus.Options{})
	if err != nil {
		panic(err)
	}
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, "hello")
	}))
	defer upstream.Close()
	peer, err := proxy.NewPeer(strings.TrimPrefix(upstream.URL, "http://"))
	if err != nil {
		panic(err)
	}
	svc, err := proxy.NewService("gateway", origin{peer: peer}, proxy.ServiceOptions{
		Observers: []observe.Observer{m},
	})
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	served := make(chan error, 1)
	go func() { served <- svc.Serve([]net.Listener{ln}) }()

	tr := &http.Transport{}
	for _, path := range []string{"/", "/nowhere"} {
		resp, err := (&http.Client{Transport: tr}).Get("http://" + ln.Addr().String() + path)
		if err != nil {
			panic(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	tr.CloseIdleConnections()
	if err := svc.Shutdown(context.Background()); err != nil { // the requests have ended
		panic(err)
	}
	<-served

	srv := httptest.NewServer(m.Handler()) // in a program: an admin listener's /metrics
	defer srv.Close()
	resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
	if err != nil {
		panic(err)
	}
	defer tr.CloseIdleConnections()
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "gotthard_requests_total") ||
			strings.HasPrefix(line, "gotthard_request_duration_seconds_count") {
			fmt.Println(line)
		}
	}
	// Output:
	// gotthard_request_duration_seconds_count{service="gateway"} 2
	// gotthard_requests_total{method="GET",service="gateway",status_class="2xx"} 1
	// gotthard_requests_total{method="GET",service="gateway",status_class="4xx"} 1
}
