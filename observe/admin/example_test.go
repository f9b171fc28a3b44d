package admin_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http/httptest"
	"time"

	"github.com/gotthard-proxy/gotthard/observe"
	"github.com/gotthard-proxy/gotthard/observe/admin"
)

// An admin service's routes, here called without a listener. A program registers the
// Stats on its proxy services (proxy.ServiceOptions.Observers) and adds the service to
// its server.Server; this example runs a request's events through the Stats by hand.
func Example() {
	stats := admin.NewStats()
	r := &observe.Request{Service: "gateway", Start: time.Now()}
	stats.RequestStart(r)
	r.End, r.Status = r.Start.Add(3*time.Millisecond), 200
	stats.RequestEnd(r)

	svc, err := admin.New(admin.Options{Stats: stats, Token: "s3cret"})
	if err != nil {
		panic(err)
	}
	h := svc.Handler()

	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/healthz", nil))
	fmt.Println("/healthz:", w.Code)

	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/status.json", nil))
	fmt.Println("/status.json without the token:", w.Code)

	w = httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/status.json", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	h.ServeHTTP(w, req)
	var st admin.Status
	if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil {
		panic(err)
	}
	s := st.Services[0]
	fmt.Println(s.Name, s.RequestsTotal, s.ByClass["2xx"], s.LatencySamples)
	// Output:
	// /healthz: 200
	// /status.json without the token: 401
	// gateway 1 1 1
}

func ExampleListenersOf() {
	addrs := func(name string) []net.Addr { // a server.Server's Addrs
		if name == "gateway" {
			return []net.Addr{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 6188}}
		}
		return nil
	}
	fmt.Println(admin.ListenersOf(addrs, "gateway", "other")())
	// Output:
	// map[gateway:[127.0.0.1:6188] other:[]]
}
