package proxytest_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/gotthard-proxy/gotthard/message"
	"github.com/gotthard-proxy/gotthard/proxy"
	"github.com/gotthard-proxy/gotthard/proxy/proxytest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// tagger sends every request to one peer and tags it on the way.
type tagger struct {
	proxy.Phases[struct{}]
	peer *proxy.Peer
}

var _ proxy.ProxyHTTP[struct{}] = (*tagger)(nil)

func (*tagger) NewCtx() struct{} { return struct{}{} }

func (g *tagger) UpstreamPeer(context.Context, *proxy.Session, struct{}) (*proxy.Peer, error) {
	return g.peer, nil
}

func (*tagger) UpstreamRequestFilter(_ context.Context, _ *proxy.Session, _ struct{}, req *message.RequestHeader) error {
	req.Header.Set("X-Tag", "seen")
	return nil
}

// echoProto answers with the protocol the origin received and the tag.
var echoProto = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(w, "%s %s", r.Proto, r.Header.Get("X-Tag"))
})

func get(t *testing.T, cl *http.Client, url string) (proto, body string) {
	t.Helper()
	resp, err := cl.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return resp.Proto, string(b)
}

func TestEndToEnd(t *testing.T) {
	plain := proxytest.NewOrigin(t, echoProto)
	secure := proxytest.NewTLSOrigin(t, echoProto)
	cert := proxytest.NewCert(t)
	tests := []struct {
		name       string
		peer       *proxy.Peer
		tls        bool // the client talks TLS to the proxy
		client     func(t *testing.T) *http.Client
		wantClient string // protocol between client and proxy
		wantOrigin string // protocol between proxy and origin
	}{
		{"h1 to h1", plain.Peer(), false, func(t *testing.T) *http.Client { return proxytest.H1Client(t, nil) }, "HTTP/1.1", "HTTP/1.1"},
		{"h2c to h2c", plain.H2Peer(), false, func(t *testing.T) *http.Client { return proxytest.H2CClient(t) }, "HTTP/2.0", "HTTP/2.0"},
		{"h2 to h1 over TLS", secure.Peer(), true, func(t *testing.T) *http.Client { return proxytest.H2Client(t, cert) }, "HTTP/2.0", "HTTP/1.1"},
		{"h1 over TLS to h2 over TLS", secure.H2Peer(), true, func(t *testing.T) *http.Client { return proxytest.H1Client(t, cert) }, "HTTP/1.1", "HTTP/2.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := proxytest.NewService(t, "gw", &tagger{peer: tt.peer}, proxy.ServiceOptions{})
			scheme := "http"
			if tt.tls {
				svc.AddTLS("0.0.0.0:443", cert.Config) // served on loopback whatever it names
				scheme = "https"
			}
			addr := proxytest.Serve(t, svc)
			if !strings.HasPrefix(addr, "127.0.0.1:") {
				t.Fatalf("Serve = %q, want a loopback address", addr)
			}
			proto, body := get(t, tt.client(t), scheme+"://"+addr+"/")
			if proto != tt.wantClient || body != tt.wantOrigin+" seen" {
				t.Fatalf("got %s %q, want %s %q", proto, body, tt.wantClient, tt.wantOrigin+" seen")
			}
		})
	}
}

func TestServeUnixEndpoint(t *testing.T) {
	origin := proxytest.NewOrigin(t, echoProto)
	svc := proxytest.NewService(t, "gw", &tagger{peer: origin.Peer()}, proxy.ServiceOptions{})
	svc.AddUnix("/nonexistent/dir/gw.sock")
	path := proxytest.Serve(t, svc)
	peer := &proxy.Peer{Network: "unix", Address: path}
	front := proxytest.NewService(t, "front", &tagger{peer: peer}, proxy.ServiceOptions{})
	addr := proxytest.Serve(t, front)
	if _, body := get(t, proxytest.H1Client(t, nil), "http://"+addr+"/"); body != "HTTP/1.1 seen" {
		t.Fatalf("body %q", body)
	}
}

// misspelt has a phase name with a typo: its RequestFiltr never runs.
type misspelt struct{ tagger }

func (*misspelt) RequestFiltr(context.Context, *proxy.Session, struct{}) (proxy.Result, error) {
	return proxy.Handled, nil
}

// fatalRecorder is a testing.TB whose failures are recorded instead of failing the test.
type fatalRecorder struct {
	testing.TB
	mu   sync.Mutex
	msgs []string
}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	runtime.Goexit()
}

func (f *fatalRecorder) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
}

func (f *fatalRecorder) Error(args ...any) { f.Errorf("%s", fmt.Sprint(args...)) }

func (f *fatalRecorder) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.msgs, "\n")
}

// failing runs fn with a recorder and returns what it recorded.
func failing(t *testing.T, fn func(tb testing.TB)) string {
	rec := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(rec)
	}()
	<-done
	return rec.String()
}

func TestServeChecksPhases(t *testing.T) {
	origin := proxytest.NewOrigin(t, echoProto)
	app := &misspelt{tagger{peer: origin.Peer()}}
	got := failing(t, func(tb testing.TB) {
		proxytest.Serve(tb, proxytest.NewService(tb, "gw", app, proxy.ServiceOptions{}))
		tb.Errorf("Serve returned")
	})
	if !strings.Contains(got, `service gw`) || !strings.Contains(got, "RequestFiltr (RequestFilter?)") || strings.Contains(got, "Serve returned") {
		t.Fatalf("Serve recorded %q, want a fatal error naming RequestFiltr", got)
	}
	got = failing(t, func(tb testing.TB) { proxytest.CheckPhases(tb, app) })
	if !strings.Contains(got, "RequestFiltr (RequestFilter?)") {
		t.Fatalf("CheckPhases recorded %q", got)
	}
	if got := failing(t, func(tb testing.TB) { proxytest.CheckPhases(tb, &tagger{}) }); got != "" {
		t.Fatalf("CheckPhases of a good proxy recorded %q", got)
	}
}
