// Package proxytest helps test a Gotthard proxy end to end, in a user's own tests: it
// starts origins and a [proxy.Service] on loopback ports, makes clients for HTTP/1.1, h2c
// and HTTP/2 over TLS, and checks the proxy's phase methods. Everything it starts is
// stopped by t.Cleanup.
//
//	func TestGateway(t *testing.T) {
//		origin := proxytest.NewOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
//			io.WriteString(w, "hello")
//		}))
//		svc := proxytest.NewService(t, "gw", &Gateway{peer: origin.Peer()}, proxy.ServiceOptions{})
//		addr := proxytest.Serve(t, svc) // checks svc (and its phase names) first
//		resp, err := proxytest.H1Client(t, nil).Get("http://" + addr + "/")
//		...
//	}
//
// For TLS, [NewCert] makes a throwaway self-signed certificate: add an endpoint with
// svc.AddTLS("127.0.0.1:0", cert.Config) and talk to it with [H2Client] or [H1Client]
// given the same cert, which trust it.
//
// A service with several endpoints (plain and TLS, say) is served with [ServeAll], which
// returns each endpoint's address. [FixedPeer] is the smallest proxy, one that sends
// every request to one peer, for testing what sits around a proxy (an observer, say);
// [DeadAddr] is an address that refuses connections, for a peer that fails.
//
// For benchmarks, [NewRawOrigin] is an origin that costs next to nothing and
// [BenchmarkGet] times keep-alive GETs through a proxy:
//
//	func BenchmarkGateway(b *testing.B) {
//		peer := &proxy.Peer{Address: proxytest.NewRawOrigin(b, 1<<10)}
//		svc := proxytest.NewService(b, "gw", proxytest.FixedPeer{Peer: peer}, proxy.ServiceOptions{})
//		proxytest.BenchmarkGet(b, proxytest.Serve(b, svc), "/", 1<<10)
//	}
//
// [NewRawClient] is the client BenchmarkGet uses, for a test that counts a request's
// allocations through a proxy with testing.AllocsPerRun.
//
// The helpers call t.Fatal on failure, so call them from the test's goroutine. They are
// for tests only: the certificates are throwaway and the clients trust them.
package proxytest
