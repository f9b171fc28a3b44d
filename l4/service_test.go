package l4

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	gtls "github.com/gotthard-proxy/gotthard/tls"
)

func TestPeerValidate(t *testing.T) {
	tests := []struct {
		name  string
		peer  Peer
		field string // "" when valid
	}{
		{"tcp", Peer{Address: "127.0.0.1:6379"}, ""},
		{"tcp named", Peer{Network: "tcp", Address: "redis.internal:6379"}, ""},
		{"unix", Peer{Network: "unix", Address: "/run/redis.sock"}, ""},
		{"tls", Peer{Address: "db.example:5432", TLS: &tls.Config{}}, ""},
		{"no port", Peer{Address: "127.0.0.1"}, "Address"},
		{"bad port", Peer{Address: "127.0.0.1:99999"}, "Address"},
		{"no host", Peer{Address: ":80"}, "Address"},
		{"relative socket", Peer{Network: "unix", Address: "redis.sock"}, "Address"},
		{"udp", Peer{Network: "udp", Address: "127.0.0.1:53"}, "Network"},
		{"negative timeout", Peer{Address: "127.0.0.1:1", ConnectTimeout: -1}, "ConnectTimeout"},
		{"unix tls unverifiable", Peer{Network: "unix", Address: "/s", TLS: &tls.Config{}}, "TLS.ServerName"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.peer.Validate()
			switch {
			case tt.field == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.field != "" && (err == nil || !strings.Contains(err.Error(), tt.field)):
				t.Fatalf("Validate = %v, want an error naming %s", err, tt.field)
			}
		})
	}
}

func TestNewServiceOptions(t *testing.T) {
	app := newTestApp(&Peer{Address: "127.0.0.1:1"})
	tests := []struct {
		name  string
		opts  ServiceOptions
		field string
	}{
		{"MaxConns", ServiceOptions{MaxConns: -1}, "MaxConns"},
		{"TotalTimeout", ServiceOptions{TotalTimeout: -1}, "TotalTimeout"},
		{"ConnectTimeout", ServiceOptions{ConnectTimeout: -1}, "ConnectTimeout"},
		{"TLSHandshakeTimeout", ServiceOptions{TLSHandshakeTimeout: -1}, "TLSHandshakeTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewService("x", app, tt.opts); err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("NewService = %v, want an error naming %s", err, tt.field)
			}
		})
	}
	if _, err := NewService("", app, ServiceOptions{}); err == nil {
		t.Fatal("NewService accepted an empty name")
	}
}

// roundTrip sends payload, half-closes, and reads until the end: what an echo peer
// sends back.
func roundTrip(t *testing.T, c net.Conn, payload []byte) []byte {
	t.Helper()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		if err == nil {
			err = c.(interface{ CloseWrite() error }).CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(c)
	if werr := <-errc; werr != nil {
		t.Fatalf("write: %v", werr)
	}
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return got
}

// testCerts writes a self-signed certificate for names to files and returns a gtls
// configuration for it and a pool that trusts it.
func testCerts(t testing.TB, names ...string) (*gtls.Config, *x509.CertPool) {
	t.Helper()
	certPEM, keyPEM, err := gtls.SelfSigned(names, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cf, kf := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cf, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kf, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := gtls.New(gtls.Options{Certificates: []gtls.CertFile{{CertFile: cf, KeyFile: kf}}, ALPN: []string{"echo/1"},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return cfg, pool
}

// TestEndpoints carries 4 MiB each way with half-close over a TCP, a Unix and a TLS
// endpoint, to a TCP peer, a Unix peer and a TLS peer, and checks the bytes are
// untouched and counted.
func TestEndpoints(t *testing.T) {
	echoAddr := backend(t, echo)
	unixPeer := tempSock(t, "peer.sock")
	uln, err := net.Listen("unix", unixPeer)
	if err != nil {
		t.Fatal(err)
	}
	defer uln.Close()
	go func() {
		for {
			c, err := uln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c); c.(*net.UnixConn).CloseWrite(); io.Copy(io.Discard, c) }()
		}
	}()
	srvCfg, pool := testCerts(t, "proxy.test", "peer.test", "127.0.0.1")
	tlsPeer := backend(t, func(c net.Conn) {
		tc := tls.Server(c, srvCfg.ServerConfig())
		io.Copy(tc, tc)
		tc.CloseWrite()
	})

	payload := make([]byte, 4<<20)
	rand.Read(payload)
	peers := map[string]*Peer{
		"tcp-peer":  {Address: echoAddr},
		"unix-peer": {Network: "unix", Address: unixPeer},
		"tls-peer":  {Address: tlsPeer, TLS: &tls.Config{ServerName: "peer.test", RootCAs: pool}},
	}
	for pname, peer := range peers {
		app := newTestApp(peer)
		svc, err := NewService("t", app, ServiceOptions{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		svc.AddTCP("127.0.0.1:0")
		svc.AddUnix(tempSock(t, "svc.sock"))
		svc.AddTLS("127.0.0.1:0", srvCfg)
		addrs := serve(t, svc)
		dials := map[string]func() (net.Conn, error){
			"tcp":  func() (net.Conn, error) { return net.Dial("tcp", addrs[0]) },
			"unix": func() (net.Conn, error) { return net.Dial("unix", addrs[1]) },
			"tls": func() (net.Conn, error) {
				return tls.Dial("tcp", addrs[2], &tls.Config{ServerName: "proxy.test", RootCAs: pool, NextProtos: []string{"echo/1"}})
			},
		}
		for ename, dial := range dials {
			t.Run(ename+"-to-"+pname, func(t *testing.T) {
				c, err := dial()
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				got := roundTrip(t, c, payload)
				if !bytes.Equal(got, payload) {
					t.Fatalf("echoed %d bytes, want the %d sent", len(got), len(payload))
				}
				e := app.next(t)
				if e.err != nil || e.toUp != int64(len(payload)) || e.toClient != int64(len(payload)) {
					t.Fatalf("Logging: %v, %d up, %d down", e.err, e.toUp, e.toClient)
				}
				if ename == "tls" && (e.serverName != "proxy.test" || e.tlsVersion != tls.VersionTLS13) {
					t.Fatalf("Logging: server name %q, TLS version %#x", e.serverName, e.tlsVersion)
				}
				if ename != "tls" && (e.serverName != "" || e.tlsVersion != 0) {
					t.Fatalf("Logging: TLS state on a plain endpoint")
				}
			})
		}
	}
}

func TestRetryOnRefusal(t *testing.T) {
	echoAddr := backend(t, echo)
	for _, retry := range []bool{true, false} {
		app := newTestApp(&Peer{Address: refusedAddr(t)}, &Peer{Address: echoAddr})
		app.retry = retry
		_, addr := newService(t, app, ServiceOptions{})
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		if retry {
			got = roundTrip(t, c, []byte("ping"))
		} else { // the proxy closes the connection unread: the client may see a reset
			c.SetDeadline(time.Now().Add(10 * time.Second))
			c.Write([]byte("ping"))
			got, _ = io.ReadAll(c)
		}
		c.Close()
		e := app.next(t)
		if retry {
			if string(got) != "ping" || e.err != nil || e.attempts != 2 || e.peer.Address != echoAddr {
				t.Fatalf("with retry: got %q; Logging: %v after %d attempts", got, e.err, e.attempts)
			}
			continue
		}
		var ce *ConnectError
		if len(got) != 0 || !errors.As(e.err, &ce) || !errors.Is(e.err, syscall.ECONNREFUSED) || e.attempts != 1 {
			t.Fatalf("without retry: got %q; Logging: %v after %d attempts", got, e.err, e.attempts)
		}
	}
}

func TestRetryLimit(t *testing.T) {
	app := newTestApp(&Peer{Address: refusedAddr(t)})
	app.retry = true
	_, addr := newService(t, app, ServiceOptions{MaxRetries: 2})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	e := app.next(t)
	if !errors.Is(e.err, syscall.ECONNREFUSED) || e.attempts != 3 {
		t.Fatalf("Logging: %v after %d attempts, want refused after 3", e.err, e.attempts)
	}
}

func TestConnectionFilter(t *testing.T) {
	contacted := make(chan struct{}, 1)
	peer := backend(t, func(net.Conn) { contacted <- struct{}{} })
	app := newTestApp(&Peer{Address: peer})
	app.filter = func(s *Session) error {
		if s.LocalAddr() == nil || s.ClientAddr() == nil {
			return errors.New("no addresses")
		}
		return errors.New("not from here")
	}
	_, addr := newService(t, app, ServiceOptions{})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read on a rejected connection: %d, %v", n, err)
	}
	e := app.next(t)
	if !errors.Is(e.err, ErrRejected) || !strings.Contains(e.err.Error(), "not from here") || e.peer != nil {
		t.Fatalf("Logging: %v, peer %v", e.err, e.peer)
	}
	select {
	case <-contacted:
		t.Fatal("the peer was contacted for a rejected connection")
	default:
	}
}

// TestMaxConns checks that the connection over the limit waits, unserved, until one
// being served ends.
func TestMaxConns(t *testing.T) {
	app := newTestApp(&Peer{Address: backend(t, echo)})
	_, addr := newService(t, app, ServiceOptions{MaxConns: 1})
	first, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	first.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := first.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(first, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	second, err := net.Dial("tcp", addr) // the kernel completes it; the service does not accept
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if _, err := second.Write([]byte("b")); err != nil {
		t.Fatal(err)
	}
	second.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := second.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the connection over the limit was served: %d, %v", n, err)
	}
	first.Close()
	if e := app.next(t); e.err != nil && !errors.Is(e.err, syscall.ECONNRESET) {
		t.Fatalf("first connection: %v", e.err)
	}
	second.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 1)
	if _, err := io.ReadFull(second, b); err != nil || b[0] != 'b' {
		t.Fatalf("the waiting connection, once a slot freed: %q, %v", b, err)
	}
}

func TestIdleTimeout(t *testing.T) {
	const idle = 400 * time.Millisecond
	const tick = idle / 8
	// The peer talks every tick for 12 ticks (1.5×idle) while the client says nothing:
	// the connection is not idle. Then both are silent and it ends.
	peer := backend(t, func(c net.Conn) {
		tk := time.NewTicker(tick)
		defer tk.Stop()
		for range 12 {
			<-tk.C
			if _, err := c.Write([]byte("x")); err != nil {
				return
			}
		}
		io.Copy(io.Discard, c)
	})
	app := newTestApp(&Peer{Address: peer})
	_, addr := newService(t, app, ServiceOptions{IdleTimeout: idle})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatal(err)
	}
	if string(got) != strings.Repeat("x", 12) {
		t.Fatalf("read %q before the end: cut while the peer talked", got)
	}
	e := app.next(t)
	if !errors.Is(e.err, ErrIdleTimeout) {
		t.Fatalf("Logging: %v, want ErrIdleTimeout", e.err)
	}
	if lo, hi := 12*tick+idle, 12*tick+2*idle+idle; e.dur < lo || e.dur > hi {
		t.Fatalf("lasted %v, want between %v and %v", e.dur, lo, hi)
	}
}

func TestTotalTimeout(t *testing.T) {
	const total = 300 * time.Millisecond
	app := newTestApp(&Peer{Address: backend(t, echo)})
	_, addr := newService(t, app, ServiceOptions{TotalTimeout: total})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	// A busy connection: the client keeps echoing until the service cuts it.
	buf := make([]byte, 4)
	var err2 error
	for err2 == nil {
		if _, err2 = c.Write([]byte("ping")); err2 == nil {
			_, err2 = io.ReadFull(c, buf)
		}
	}
	e := app.next(t)
	if !errors.Is(e.err, ErrTotalTimeout) || e.dur < total || e.dur > total+2*time.Second {
		t.Fatalf("Logging: %v after %v, want ErrTotalTimeout after %v", e.err, e.dur, total)
	}
}

// TestPeerReset checks that a peer that resets its connection mid-stream ends that
// connection only, with one log line.
func TestPeerReset(t *testing.T) {
	peer := backend(t, func(c net.Conn) {
		b := make([]byte, 5)
		if _, err := io.ReadFull(c, b); err != nil {
			return
		}
		if string(b) != "RESET" {
			c.Write(b)
			echo(c)
			return
		}
		c.Write([]byte("partial"))
		c.(*net.TCPConn).SetLinger(0) // Close sends RST
	})
	var lg logs
	app := newTestApp(&Peer{Address: peer})
	_, addr := newService(t, app, ServiceOptions{Logger: slog.New(&lg)})

	other, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.SetDeadline(time.Now().Add(10 * time.Second))
	say := func(s string) {
		t.Helper()
		if _, err := io.WriteString(other, s); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, len(s))
		if _, err := io.ReadFull(other, b); err != nil || string(b) != s {
			t.Fatalf("other connection: %q, %v", b, err)
		}
	}
	say("hello")

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "RESET")
	got, _ := io.ReadAll(c)
	if !strings.HasPrefix("partial", string(got)) {
		t.Fatalf("reset connection read %q", got)
	}
	e := app.next(t)
	if !errors.Is(e.err, syscall.ECONNRESET) {
		t.Fatalf("Logging: %v, want a reset", e.err)
	}
	say("still here")
	var warns []string
	for _, l := range lg.lines() {
		if !strings.HasPrefix(l, "DEBUG") {
			warns = append(warns, l)
		}
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "reset") || !strings.Contains(warns[0], "peer=") {
		t.Fatalf("log lines %q, want one about the reset", warns)
	}
}

func TestShutdown(t *testing.T) {
	app := newTestApp(&Peer{Address: backend(t, echo)})
	svc, addr := newService(t, app, ServiceOptions{})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Shutdown(context.Background()) }()
	// The connection in flight goes on; new ones are refused once accepting stopped.
	got := roundTrip(t, c, []byte("bc"))
	if string(got) != "bc" {
		t.Fatalf("in-flight connection during Shutdown: %q", got)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if e := app.next(t); e.err != nil {
		t.Fatalf("Logging: %v", e.err)
	}
	if c2, err := net.Dial("tcp", addr); err == nil {
		c2.Close()
		t.Fatal("a connection was accepted after Shutdown")
	}
}

func TestShutdownTimeout(t *testing.T) {
	app := newTestApp(&Peer{Address: backend(t, echo)})
	svc, addr := newService(t, app, ServiceOptions{})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := svc.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want the context's deadline", err)
	}
	if e := app.next(t); !errors.Is(e.err, ErrShutdown) {
		t.Fatalf("Logging: %v, want ErrShutdown", e.err)
	}
	if _, err := io.ReadAll(c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("client after the cut: %v", err)
	}
}

func TestCloseStreams(t *testing.T) {
	app := newTestApp(&Peer{Address: backend(t, echo)})
	svc, addr := newService(t, app, ServiceOptions{})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("a"))
	io.ReadFull(c, make([]byte, 1))
	svc.CloseStreams()
	if e := app.next(t); !errors.Is(e.err, ErrShutdown) {
		t.Fatalf("Logging: %v, want ErrShutdown", e.err)
	}
	// The listener still accepts.
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if got := roundTrip(t, c2, []byte("z")); string(got) != "z" {
		t.Fatalf("after CloseStreams: %q", got)
	}
	app.next(t)
}

func TestSpliceable(t *testing.T) {
	client, server := tcpPair(t)
	tc := tls.Client(client, &tls.Config{})
	uc1, uc2, err := unixPair()
	if err != nil {
		t.Fatal(err)
	}
	defer uc1.Close()
	defer uc2.Close()
	linux := spliceable(client, server)
	tests := []struct {
		name     string
		dst, src net.Conn
		want     bool
	}{
		{"tcp from tcp", client, server, linux},
		{"tcp from unix", client, uc1, linux},
		{"unix from tcp", uc1, client, false},
		{"tcp from tls", client, tc, false},
		{"tls from tcp", tc, client, false},
	}
	for _, tt := range tests {
		if got := spliceable(tt.dst, tt.src); got != tt.want {
			t.Errorf("%s: spliceable = %v, want %v", tt.name, got, tt.want)
		}
	}
}
