package proxytest_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"testing"

	"github.com/gotthard-proxy/gotthard/proxy"
	"github.com/gotthard-proxy/gotthard/proxy/proxytest"
)

// Gateway is the proxy under test: it sends every request to one origin.
type Gateway struct {
	proxy.Phases[struct{}]
	origin *proxy.Peer
}

var _ proxy.ProxyHTTP[struct{}] = (*Gateway)(nil)

func (*Gateway) NewCtx() struct{} { return struct{}{} }

func (g *Gateway) UpstreamPeer(context.Context, *proxy.Session, struct{}) (*proxy.Peer, error) {
	return g.origin, nil
}

// testGateway is what a test of Gateway does with its t.
func testGateway(t testing.TB) {
	origin := proxytest.NewOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from the origin")
	}))
	svc := proxytest.NewService(t, "gw", &Gateway{origin: origin.Peer()}, proxy.ServiceOptions{})
	addr := proxytest.Serve(t, svc) // checks svc, serves it until the test ends

	for _, cl := range []*http.Client{proxytest.H1Client(t, nil), proxytest.H2CClient(t)} {
		resp, err := cl.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.Proto, resp.StatusCode, string(body))
	}
}

func Example() {
	// In a test: func TestGateway(t *testing.T) { testGateway(t) }. An example has no t,
	// so it lends one that runs the cleanups when it returns.
	t := &exampleT{}
	defer t.done()
	testGateway(t)
	// Output:
	// HTTP/1.1 200 hello from the origin
	// HTTP/2.0 200 hello from the origin
}

// exampleT is the little of testing.TB an example needs.
type exampleT struct {
	testing.TB
	cleanups []func()
}

func (*exampleT) Helper()                      {}
func (e *exampleT) Cleanup(f func())           { e.cleanups = append(e.cleanups, f) }
func (*exampleT) Fatal(args ...any)            { panic(fmt.Sprint(args...)) }
func (*exampleT) Fatalf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }
func (*exampleT) Errorf(f string, args ...any) { fmt.Fprintf(os.Stderr, f+"\n", args...) }
func (e *exampleT) done() {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
}
