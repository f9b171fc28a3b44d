package prometheus_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/l4"
	"github.com/gotthard-proxy/gotthard/observe"
	"github.com/gotthard-proxy/gotthard/observe/prometheus"
)

// tcpApp sends each connection to peers[attempt] (the last one after), retrying a
// refused connect, and reports each end on done.
type tcpApp struct {
	l4.Phases[struct{}]
	peers []*l4.Peer
	done  chan error
}

func (*tcpApp) NewCtx() struct{} { return struct{}{} }

func (a *tcpApp) UpstreamPeer(_ context.Context, s *l4.Session, _ struct{}) (*l4.Peer, error) {
	return a.peers[min(s.Attempts(), len(a.peers)-1)], nil
}

func (*tcpApp) FailToConnect(_ context.Context, _ *l4.Session, _ struct{}, _ *l4.Peer, err *l4.ConnectError) *l4.ConnectError {
	err.Retry = true
	return err
}

func (a *tcpApp) Logging(_ context.Context, _ *l4.Session, _ struct{}, err error) { a.done <- err }

// A TCP service counts its connections as an HTTP service does: client connections
// open (none once they closed), and the upstream connections made and failed, with
// their connect times.
func TestTCPService(t *testing.T) {
	m, err := prometheus.New(prometheus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	refused, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedAddr := refused.Addr().String()
	refused.Close()
	app := &tcpApp{peers: []*l4.Peer{{Address: refusedAddr}, {Address: echo.Addr().String()}}, done: make(chan error, 8)}
	svc, err := l4.NewService("tcp", app, l4.ServiceOptions{Logger: slog.New(slog.DiscardHandler),
		Observers: []observe.ConnObserver{m}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc.AddTCP(ln.Addr().String())
	served := make(chan error, 1)
	go func() { served <- svc.Serve([]net.Listener{ln}) }()
	defer func() {
		svc.Close()
		<-served
	}()
	const conns = 3
	for range conns {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 4)
		if _, err := io.ReadFull(c, b); err != nil || string(b) != "ping" {
			t.Fatalf("echo: %q, %v", b, err)
		}
		f := scrape(t, m)
		f.expect(map[string]float64{`gotthard_connections_open{service=tcp}`: 1})
		c.Close()
		select {
		case err := <-app.done:
			if err != nil {
				t.Fatalf("connection ended with %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the connection did not end")
		}
	}
	f := scrape(t, m)
	f.expect(map[string]float64{
		`gotthard_connections_open{service=tcp}`:                        0,
		`gotthard_upstream_connections_total{service=tcp}`:              2 * conns,
		`gotthard_upstream_connection_errors_total{service=tcp}`:        conns,
		`gotthard_upstream_connect_duration_seconds{service=tcp}`:       conns, // (the count: made ones only)
		`gotthard_upstream_tls_handshake_duration_seconds{service=tcp}`: 0,
		`gotthard_sent_bytes_total{service=tcp}`:                        4 * conns,
		`gotthard_received_bytes_total{service=tcp}`:                    4 * conns,
	})
}
