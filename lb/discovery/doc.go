// Package discovery provides sources of backends for an lb.LoadBalancer: a static
// list, DNS (A/AAAA or SRV records) and a file reloaded when it changes. Each is an
// lb.Discovery; set one as lb.Options.Discovery and run the balancer (a background
// service) so that it watches.
//
//	d := &discovery.DNS{Host: "api.internal", Port: 8080}
//	bal, err := lb.New(lb.Options[*proxy.Peer]{Discovery: d, Attach: mkPeer})
//	srv.Add(bal) // a server.Server runs its Run method
//
// For another source (Consul, Kubernetes endpoints), implement lb.Discovery: see the
// example of lb.Discovery in this package's tests.
package discovery
