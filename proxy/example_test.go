package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/gotthard-proxy/gotthard/message"
	"github.com/gotthard-proxy/gotthard/proxy"
)

// Gateway sends every request to one origin and tags it on the way.
type Gateway struct {
	proxy.Phases[*Ctx] // the defaults of every phase not written below
	origin             *proxy.Peer
}

// Ctx is the per-request state every phase of one request shares.
type Ctx struct{ path string }

// A phase with a wrong signature fails to compile here, naming the method.
var _ proxy.ProxyHTTP[*Ctx] = (*Gateway)(nil)

func (*Gateway) NewCtx() *Ctx { return &Ctx{} }

func (g *Gateway) UpstreamPeer(_ context.Context, s *proxy.Session, c *Ctx) (*proxy.Peer, error) {
	c.path = s.Request().Path()
	return g.origin, nil
}

func (*Gateway) UpstreamRequestFilter(_ context.Context, _ *proxy.Session, c *Ctx, req *message.RequestHeader) error {
	req.Header.Set("X-Routed-Path", c.path)
	return nil
}

func (*Gateway) ResponseFilter(_ context.Context, _ *proxy.Session, _ *Ctx, resp *message.ResponseHeader) error {
	resp.Header.Set("Server", "gotthard")
	return nil
}

// A whole proxy service in front of an origin, answering one request.
func Example() {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "origin saw %s", r.Header.Get("X-Routed-Path"))
	}))
	defer origin.Close()

	peer, err := proxy.NewPeer(strings.TrimPrefix(origin.URL, "http://"))
	if err != nil {
		panic(err)
	}
	svc, err := proxy.NewService("gateway", &Gateway{origin: peer}, proxy.ServiceOptions{})
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	served := make(chan error, 1)
	go func() { served <- svc.Serve([]net.Listener{ln}) }() // or svc.ListenAndServe, or a server.Server

	tr := &http.Transport{}
	resp, err := (&http.Client{Transport: tr}).Get("http://" + ln.Addr().String() + "/hello?x=1")
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	tr.CloseIdleConnections()
	fmt.Println(resp.StatusCode, resp.Header.Get("Server"), string(body))

	svc.Close()
	fmt.Println("Serve:", <-served)
	// Output:
	// 200 gotthard origin saw /hello
	// Serve: <nil>
}

// Typo is a proxy whose author misspelt a phase: RequestFiltr compiles, as a method
// nothing calls, and the default RequestFilter runs instead.
type Typo struct{ Gateway }

func (*Typo) RequestFiltr(context.Context, *proxy.Session, *Ctx) (proxy.Result, error) {
	return proxy.Handled, nil
}

func ExampleCheckPhases() {
	fmt.Println(proxy.CheckPhases(&Gateway{}))
	fmt.Println(proxy.CheckPhases(&Typo{}))
	// Output:
	// <nil>
	// proxy: *proxy_test.Typo has methods named like phases that are not phases, so they never run: RequestFiltr (RequestFilter?)
}
