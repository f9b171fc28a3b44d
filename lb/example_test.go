package lb_test

import (
	"errors"
	"fmt"

	"github.com/gotthard-proxy/gotthard/lb"
)

// upstream stands for what a proxy's UpstreamPeer returns (a *proxy.Peer): the
// balancer hands it back typed.
type upstream struct {
	addr string
	zone string
}

// The balancer is generic over the value each backend carries: Attach makes it once
// per backend, and Pick.Value returns it with its type, no assertion needed.
func Example() {
	l, err := lb.New(lb.Options[*upstream]{
		Backends: []lb.Backend{
			{Addr: "10.0.0.1:8080", Weight: 2, Meta: map[string]string{"zone": "a"}},
			{Addr: "10.0.0.2:8080", Meta: map[string]string{"zone": "b"}},
		},
		Attach: func(b lb.Backend) *upstream { return &upstream{addr: b.Addr, zone: b.Meta["zone"]} },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for range 3 {
		p, err := l.Select("", nil)
		if err != nil {
			fmt.Println(err)
			return
		}
		var u *upstream = p.Value()
		fmt.Println(u.addr, "in zone", u.zone)
		p.Done(lb.Success)
	}
	_, err = lb.New(lb.Options[*upstream]{Backends: []lb.Backend{{Addr: "10.0.0.1"}}})
	fmt.Println(err)
	// Output:
	// 10.0.0.1:8080 in zone a
	// 10.0.0.2:8080 in zone b
	// 10.0.0.1:8080 in zone a
	// lb: Options.Backends[0]: address "10.0.0.1": missing port in address
}

// A Failover lives in the per-request context: a proxy calls Select from UpstreamPeer,
// FailToConnect or ErrorWhileProxy from the phases of those names, and Done from
// Logging. Each retry goes to a backend the request has not tried.
func ExampleFailover() {
	l, err := lb.New(lb.Options[*upstream]{
		Backends: []lb.Backend{{Addr: "10.0.0.1:8080"}, {Addr: "10.0.0.2:8080"}},
		Attach:   func(b lb.Backend) *upstream { return &upstream{addr: b.Addr} },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	var f lb.Failover[*upstream] // one per request
	refused := errors.New("connection refused")

	u, _ := f.Select(l, "/index.html") // UpstreamPeer
	fmt.Println("attempt 1:", u.addr)
	fmt.Println("retry:", f.FailToConnect(refused, true)) // FailToConnect

	u, _ = f.Select(l, "/index.html") // UpstreamPeer again
	fmt.Println("attempt 2:", u.addr)
	fmt.Println("retry:", f.FailToConnect(refused, true)) // no backend left to try

	f.Done(502, refused) // Logging
	fmt.Println("attempts:", f.Attempts())
	// Output:
	// attempt 1: 10.0.0.1:8080
	// retry: true
	// attempt 2: 10.0.0.2:8080
	// retry: false
	// attempts: 2
}
