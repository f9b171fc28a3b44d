package prometheus_test

import (
	"bufio"
	"fmt"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/gotthard-proxy/gotthard/observe"
	"github.com/gotthard-proxy/gotthard/observe/prometheus"
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
