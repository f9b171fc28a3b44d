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
// The helpers call t.Fatal on failure, so call them from the test's goroutine. They are
// for tests only: the certificates are throwaway and the clients trust them.
package proxytest
