package sentry_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	sentrygo "github.com/getsentry/sentry-go"

	"github.com/gotthard-proxy/gotthard/observe"
	"github.com/gotthard-proxy/gotthard/observe/sentry"
)

// printTransport is a sentry-go Transport that prints the events instead of sending
// them.
type printTransport struct{ mu sync.Mutex }

func (*printTransport) Configure(sentrygo.ClientOptions)      {}
func (*printTransport) Flush(time.Duration) bool              { return true }
func (*printTransport) FlushWithContext(context.Context) bool { return true }
func (*printTransport) Close()                                {}
func (t *printTransport) SendEvent(e *sentrygo.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Println(e.Level, e.Exception[0].Type+":", e.Exception[0].Value)
	fmt.Println(" ", e.Request.Method, e.Request.URL, "status", e.Tags["status"], "upstream", e.Tags["upstream"])
}

// An Observer with a client of the program's own. Of three requests, the one the proxy
// failed with a 502 is reported; the 200 and the 404 are not.
func Example() {
	client, err := sentrygo.NewClient(sentrygo.ClientOptions{
		Transport:      &printTransport{},
		Release:        "gateway@1.4.2",
		DisableMetrics: true,
	})
	if err != nil {
		panic(err)
	}
	defer client.Close()
	obs, err := sentry.New(sentry.Options{Client: client, EventsPerSecond: 5, Burst: 10})
	if err != nil {
		panic(err)
	}
	defer obs.Close()

	// What a proxy service hands its observers (proxy.ServiceOptions.Observers).
	for _, status := range []int{200, 404, 502} {
		r := &observe.Request{Service: "gateway", Scheme: "https", Method: "GET",
			Host: "shop.example", Target: "/cart?session=abc", Status: status}
		if status == 502 {
			r.Err = errors.New("dial tcp 10.0.0.7:8080: connect: connection refused")
			r.ErrType, r.ErrSource, r.Upstream = "connection refused", "upstream", "10.0.0.7:8080"
		}
		obs.RequestEnd(r)
	}
	fmt.Println("flushed:", obs.Flush(5*time.Second), "dropped:", obs.Dropped())
	// Output:
	// error connection refused: dial tcp 10.0.0.7:8080: connect: connection refused
	//   GET https://shop.example/cart status 502 upstream 10.0.0.7:8080
	// flushed: true dropped: 0
}

// Options are checked by New, which names the field at fault.
func ExampleNew_badOptions() {
	_, err := sentry.New(sentry.Options{DSN: "https://key@o1.ingest.sentry.io/2", Headers: []string{"User-Agent", "Cookie"}})
	fmt.Println(err)
	// Output:
	// sentry: Options.Headers: Cookie carries credentials and is never sent
}
