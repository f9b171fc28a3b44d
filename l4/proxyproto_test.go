package l4

import (
	"bufio"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestProxyProtocol: a PROXY header from a trusted load balancer names the session's
// client, and a peer with ProxyProtocol gets a header naming that client before the
// client's bytes; a header from an untrusted address ends its connection only.
func TestProxyProtocol(t *testing.T) {
	lines := make(chan string, 4)
	up := backend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		l, err := br.ReadString('\n')
		if err != nil {
			return
		}
		lines <- l
		io.Copy(c, br) // then echo
	})
	app := newTestApp(&Peer{Address: up, ProxyProtocol: 1})
	_, addr := newService(t, app, ServiceOptions{ProxyProtocol: ProxyProtocolOptions{
		Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}})

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "PROXY TCP4 198.51.100.9 192.0.2.1 5555 6379\r\nping")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo %q, %v", buf, err)
	}
	if l := <-lines; l != "PROXY TCP4 198.51.100.9 192.0.2.1 5555 6379\r\n" {
		t.Errorf("the peer's header %q, want the load balancer's client", l)
	}
	c.Close()
	if e := app.next(t); e.err != nil {
		t.Errorf("Logging: %v", e.err)
	}

	// Untrusted: a service that trusts another range closes a connection that sends a
	// header, and keeps serving the others.
	app2 := newTestApp(&Peer{Address: backend(t, echo)})
	_, addr2 := newService(t, app2, ServiceOptions{ProxyProtocol: ProxyProtocolOptions{
		Trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}})
	bad, err := net.Dial("tcp", addr2)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	bad.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(bad, "PROXY TCP4 198.51.100.9 192.0.2.1 5555 6379\r\nping")
	if b, _ := io.ReadAll(bad); strings.Contains(string(b), "ping") {
		t.Errorf("an untrusted header was served: %q", b)
	}
	good, err := net.Dial("tcp", addr2)
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	good.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(good, "pong")
	if _, err := io.ReadFull(good, buf); err != nil || string(buf) != "pong" {
		t.Errorf("a plain client beside it: %q, %v", buf, err)
	}

	if _, err := NewService("bad", newTestApp(), ServiceOptions{ProxyProtocol: ProxyProtocolOptions{Required: true}}); err == nil ||
		!strings.Contains(err.Error(), "ProxyProtocol") {
		t.Errorf("Required without Trusted: %v", err)
	}
	if err := (&Peer{Address: "127.0.0.1:1", ProxyProtocol: 3}).Validate(); err == nil || !strings.Contains(err.Error(), "ProxyProtocol") {
		t.Errorf("ProxyProtocol 3: %v", err)
	}
}
