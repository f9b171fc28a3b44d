package l4

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/gotthard-proxy/gotthard/observe"
)

// eventLog is a connection observer that writes down each event.
type eventLog struct {
	mu     sync.Mutex
	events []string
	panic  bool // panic in ConnOpen, after writing it down
}

func (l *eventLog) add(format string, a ...any) {
	l.mu.Lock()
	l.events = append(l.events, fmt.Sprintf(format, a...))
	l.mu.Unlock()
}

func (l *eventLog) ConnOpen(c *observe.Conn) {
	c.Data = "mine"
	l.add("open %s remote=%v local=%v start=%v", c.Proto, c.Remote != "", c.Local != "", !c.Start.IsZero())
	if l.panic {
		panic("observer bug")
	}
}

func (l *eventLog) ConnTLS(c *observe.Conn) {
	ok := c.TLS != nil && c.TLS.Version == tls.VersionTLS13 && c.Handshake > 0
	l.add("tls ok=%v err=%v data=%v", ok, c.Err != nil, c.Data)
}

func (l *eventLog) ConnClose(c *observe.Conn) {
	l.add("close data=%v sent=%d received=%d", c.Data, c.BytesSent, c.BytesReceived)
}

func (l *eventLog) UpstreamConn(c *observe.Conn) {
	l.add("upstream %s up=%v connected=%v err=%v", c.Proto, c.Upstream, !c.Connected.IsZero() && !c.Connected.Before(c.Start), c.Err != nil)
}

// wait returns the events once there are n.
func (l *eventLog) wait(t *testing.T, n int) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.mu.Lock()
		if len(l.events) >= n {
			s := strings.Join(l.events, "\n")
			l.mu.Unlock()
			return s
		}
		l.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("%d events, want %d", len(l.events), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The observers see each connection's events in order: a refused peer and the retry
// that connected, the TLS handshake on a TLS endpoint, and the close before Logging.
func TestObservers(t *testing.T) {
	srvCfg, pool := testCerts(t, "proxy.test")
	for _, ep := range []string{"tcp", "tls"} {
		t.Run(ep, func(t *testing.T) {
			app := newTestApp(&Peer{Address: refusedAddr(t)}, &Peer{Address: backend(t, echo)})
			app.retry = true
			obs := &eventLog{}
			svc, err := NewService("t", app, ServiceOptions{Logger: slog.New(slog.DiscardHandler),
				Observers: []observe.ConnObserver{obs}})
			if err != nil {
				t.Fatal(err)
			}
			if ep == "tcp" {
				svc.AddTCP("127.0.0.1:0")
			} else {
				svc.AddTLS("127.0.0.1:0", srvCfg)
			}
			addr := serve(t, svc)[0]
			c, err := dialEndpoint(ep, addr, pool)
			if err != nil {
				t.Fatal(err)
			}
			if got := roundTrip(t, c, []byte("hello")); string(got) != "hello" {
				t.Fatalf("echoed %q", got)
			}
			c.Close()
			if e := app.next(t); e.err != nil || e.attempts != 2 {
				t.Fatalf("Logging: %v, %d attempts", e.err, e.attempts)
			}
			want := []string{
				"open TCP remote=true local=true start=true",
				"upstream TCP up=true connected=false err=true",
				"upstream TCP up=true connected=true err=false",
				"close data=mine sent=5 received=5",
			}
			if ep == "tls" {
				want = append(want[:1], append([]string{"tls ok=true err=false data=mine"}, want[1:]...)...)
			}
			if got := obs.wait(t, len(want)); got != strings.Join(want, "\n") {
				t.Fatalf("events:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
			}
		})
	}
}

// A panic in an observer is logged and ends that event, not the connection.
func TestObserverPanic(t *testing.T) {
	app := newTestApp(&Peer{Address: backend(t, echo)})
	obs := &eventLog{panic: true}
	l := &logs{}
	svc, addr := newService(t, app, ServiceOptions{Logger: slog.New(l), Observers: []observe.ConnObserver{obs}})
	_ = svc
	c, err := dialEndpoint("tcp", addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := roundTrip(t, c, []byte("hello")); string(got) != "hello" {
		t.Fatalf("echoed %q", got)
	}
	c.Close()
	if e := app.next(t); e.err != nil {
		t.Fatalf("Logging: %v", e.err)
	}
	obs.wait(t, 3)
	if !strings.Contains(strings.Join(l.lines(), "\n"), "panic in an observer") {
		t.Fatalf("the panic was not logged:\n%s", strings.Join(l.lines(), "\n"))
	}
}

func TestObserversValidated(t *testing.T) {
	_, err := NewService("t", newTestApp(&Peer{Address: "127.0.0.1:1"}), ServiceOptions{
		Observers: []observe.ConnObserver{&eventLog{}, nil}})
	if err == nil || !strings.Contains(err.Error(), "Observers[1] is nil") {
		t.Fatalf("got %v, want the nil observer named", err)
	}
	_, err = NewUDPService("u", &udpTestApp{}, UDPOptions{Listen: []string{"127.0.0.1:0"},
		Observers: []observe.ConnObserver{nil}})
	if err == nil || !strings.Contains(err.Error(), "UDPOptions.Observers[0] is nil") {
		t.Fatalf("UDP: got %v, want the nil observer named", err)
	}
}

// dialEndpoint connects to a service endpoint of kind ep ("tcp" or "tls", the latter
// as proxy.test with roots).
func dialEndpoint(ep, addr string, roots *x509.CertPool) (net.Conn, error) {
	if ep == "tls" {
		return tls.Dial("tcp", addr, &tls.Config{ServerName: "proxy.test", RootCAs: roots, NextProtos: []string{"echo/1"}})
	}
	return net.Dial("tcp", addr)
}

// A failed TLS handshake is told with its error, and the connection's close follows.
func TestObserversHandshakeFailed(t *testing.T) {
	srvCfg, _ := testCerts(t, "proxy.test")
	app := newTestApp(&Peer{Address: backend(t, echo)})
	obs := &eventLog{}
	svc, err := NewService("t", app, ServiceOptions{Logger: slog.New(slog.DiscardHandler),
		Observers: []observe.ConnObserver{obs}})
	if err != nil {
		t.Fatal(err)
	}
	svc.AddTLS("127.0.0.1:0", srvCfg)
	addr := serve(t, svc)[0]
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("GET / HTTP/1.1\r\n\r\n")) // not a ClientHello
	c.Close()
	app.next(t)
	want := "open TCP remote=true local=true start=true\ntls ok=false err=true data=mine\nclose data=mine sent=0 received=0"
	if got := obs.wait(t, 3); got != want {
		t.Fatalf("events:\n%s\nwant:\n%s", got, want)
	}
}

// A connection's one allocation (conn: its session, context and copy state) stays
// within the 512-byte size class on 64-bit platforms: the next class is 576 bytes, 64
// more for every connection held, idle ones included (docs/l4-tcp.md).
func TestConnSizeClass(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("64-bit layout")
	}
	if n := unsafe.Sizeof(conn[*testCtx]{}); n > 512 {
		t.Fatalf("conn is %d bytes, past the 512-byte size class", n)
	}
}

// A UDP session is seen as a connection: opened with its first datagram, its socket to
// the peer, and its close at the idle timeout with the payload bytes each way.
func TestUDPObservers(t *testing.T) {
	dnsSrv := startDNS(t, "txt")
	app := &udpTestApp{peers: []string{dnsSrv.addr}, ended: make(chan endEvent, 4)}
	obs := &eventLog{}
	_, addr := startUDP(t, app, UDPOptions{IdleTimeout: 100 * time.Millisecond, Observers: []observe.ConnObserver{obs}})
	c, conn := dnsConn(t, addr)
	if got, err := askTXT(c, conn, "q.example.test."); err != nil || got != "txt" {
		t.Fatalf("through the proxy: %q, %v", got, err)
	}
	ev := waitEnd(t, app.ended, 10*time.Second)
	want := fmt.Sprintf("open UDP remote=true local=true start=true\nupstream UDP up=true connected=true err=false\nclose data=mine sent=%d received=%d",
		ev.counts.BytesDown, ev.counts.BytesUp)
	if got := obs.wait(t, 3); got != want {
		t.Fatalf("events:\n%s\nwant:\n%s", got, want)
	}
	if ev.counts.BytesUp == 0 || ev.counts.BytesDown == 0 {
		t.Fatalf("counts %+v", ev.counts)
	}
}
