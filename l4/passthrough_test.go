package l4

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"
)

// sniRouter sends each connection to the peer named by its server name.
type sniRouter struct {
	*testApp
	routes map[string]*Peer
	alpn   chan []string
}

func (r sniRouter) UpstreamPeer(_ context.Context, s *Session, _ *testCtx) (*Peer, error) {
	r.alpn <- s.ALPN()
	p, ok := r.routes[s.ServerName()]
	if !ok {
		return nil, fmt.Errorf("no route for %q", s.ServerName())
	}
	return p, nil
}

// TestTLSPassthrough routes crypto/tls clients by SNI to two TLS backends that
// terminate TLS themselves: their handshakes succeed through the proxy, so every byte
// reached them as the client sent it.
func TestTLSPassthrough(t *testing.T) {
	routes := map[string]*Peer{}
	clients := map[string]*tls.Config{}
	for _, name := range []string{"a.test", "b.test"} {
		cfg, pool := testCerts(t, name)
		addr := backend(t, func(c net.Conn) {
			tc := tls.Server(c, cfg.ServerConfig())
			if err := tc.Handshake(); err != nil {
				return
			}
			io.WriteString(tc, tc.ConnectionState().ServerName+":")
			io.Copy(tc, tc)
			tc.CloseWrite()
		})
		routes[name] = &Peer{Address: addr}
		clients[name] = &tls.Config{ServerName: name, RootCAs: pool, NextProtos: []string{"echo/1", "x/2"}}
	}
	app := sniRouter{testApp: newTestApp(&Peer{Address: "127.0.0.1:1"}), routes: routes, alpn: make(chan []string, 8)}
	svc, err := NewService("sni", app, ServiceOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	svc.AddTLSPassthrough("127.0.0.1:0")
	addr := serve(t, svc)[0]

	for _, name := range []string{"a.test", "b.test", "a.test"} {
		c, err := tls.Dial("tcp", addr, clients[name])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if c.ConnectionState().NegotiatedProtocol != "echo/1" {
			t.Errorf("%s: ALPN %q from the backend", name, c.ConnectionState().NegotiatedProtocol)
		}
		got := roundTrip(t, c, []byte("hello "+name))
		c.Close()
		if want := name + ":hello " + name; string(got) != want {
			t.Fatalf("%s: got %q, want %q", name, got, want)
		}
		if alpn := <-app.alpn; !slices.Equal(alpn, []string{"echo/1", "x/2"}) {
			t.Errorf("%s: Session.ALPN = %q", name, alpn)
		}
		e := app.next(t)
		if e.err != nil || e.serverName != name || e.peer != routes[name] || e.tlsVersion != 0 {
			t.Fatalf("%s: Logging: %v, server name %q, peer %v", name, e.err, e.serverName, e.peer)
		}
		if e.toUp < 200 || e.toClient < 200 { // the handshakes went through, counted
			t.Fatalf("%s: %d bytes up, %d down", name, e.toUp, e.toClient)
		}
	}

	// Plain bytes are not a ClientHello.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\n\r\n")
	io.ReadAll(c)
	if e := app.next(t); !errors.Is(e.err, ErrNotTLSHello) {
		t.Fatalf("plain client: Logging %v, want ErrNotTLSHello", e.err)
	}
}
