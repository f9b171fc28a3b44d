package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// resolver is an authoritative DNS server on loopback that answers every A question
// with its address.
func resolver(t *testing.T, answer string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		for _, q := range r.Question {
			if q.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP(answer)})
			}
		}
		w.WriteMsg(m)
	})}
	done := make(chan struct{})
	go func() { srv.ActivateAndServe(); close(done) }()
	t.Cleanup(func() { srv.Shutdown(); <-done })
	return pc.LocalAddr().String()
}

// TestRoundRobinPerClient runs the example in front of two resolvers: each client
// (one UDP socket) keeps its resolver, and clients alternate between the two.
func TestRoundRobinPerClient(t *testing.T) {
	one, two := resolver(t, "192.0.2.1"), resolver(t, "192.0.2.2")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrc := make(chan string, 1)
	ran := make(chan error, 1)
	var logs strings.Builder
	go func() {
		ran <- run(ctx, []string{"-listen", "127.0.0.1:0", "-upstream", one + "," + two}, &logs, false,
			func(addrs []netip.AddrPort, _ []string, _ []net.Addr) { addrc <- addrs[0].String() })
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-ran:
		t.Fatalf("run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the proxy did not bind within 10s")
	}

	seen := map[string]int{}
	for i := range 4 {
		c := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
		conn, err := c.Dial(addr)
		if err != nil {
			t.Fatal(err)
		}
		var first string
		for range 3 {
			m := new(dns.Msg)
			m.SetQuestion("www.example.test.", dns.TypeA)
			r, _, err := c.ExchangeWithConn(m, conn)
			if err != nil || len(r.Answer) != 1 {
				t.Fatalf("client %d: %v, %v", i, r, err)
			}
			got := r.Answer[0].(*dns.A).A.String()
			if first == "" {
				first = got
			} else if got != first {
				t.Fatalf("client %d moved from %s to %s within its session", i, first, got)
			}
		}
		conn.Close()
		seen[first]++
	}
	if seen["192.0.2.1"] != 2 || seen["192.0.2.2"] != 2 {
		t.Errorf("answers per resolver over 4 clients: %v", seen)
	}

	// The Go resolver, as a program would use it.
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
	lctx, lcancel := context.WithTimeout(ctx, 5*time.Second)
	ips, err := r.LookupNetIP(lctx, "ip4", "api.example.test")
	lcancel()
	if err != nil || len(ips) != 1 || (ips[0].String() != "192.0.2.1" && ips[0].String() != "192.0.2.2") {
		t.Fatalf("LookupNetIP = %v, %v", ips, err)
	}

	cancel()
	if err := <-ran; err != nil {
		t.Fatalf("run: %v", err)
	}
	// Shutdown logged every session (4 clients and the resolver's).
	if n := strings.Count(logs.String(), "msg=session "); n != 5 {
		t.Errorf("%d session log lines, want 5:\n%s", n, logs.String())
	}
}

func TestNoUpstream(t *testing.T) {
	err := run(context.Background(), []string{"-listen", "127.0.0.1:0"}, &strings.Builder{}, false, nil)
	if err == nil || !strings.Contains(err.Error(), "-upstream") {
		t.Fatalf("run without -upstream: %v", err)
	}
}

// TestAdmin runs the example with -admin: its /metrics counts a client's session as a
// connection of the service, with its bytes once it ended.
func TestAdmin(t *testing.T) {
	one := resolver(t, "192.0.2.1")
	ctx, cancel := context.WithCancel(context.Background())
	type ready struct {
		addr  string
		admin []net.Addr
	}
	readyc := make(chan ready, 1)
	ran := make(chan error, 1)
	var logs strings.Builder
	go func() {
		ran <- run(ctx, []string{"-listen", "127.0.0.1:0", "-upstream", one, "-idle", "100ms", "-admin", "127.0.0.1:0"}, &logs, false,
			func(addrs []netip.AddrPort, _ []string, admin []net.Addr) { readyc <- ready{addrs[0].String(), admin} })
	}()
	var r ready
	select {
	case r = <-readyc:
	case err := <-ran:
		t.Fatalf("run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the proxy did not bind within 10s")
	}
	defer func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	if len(r.admin) != 1 {
		t.Fatalf("admin addresses %v, want one", r.admin)
	}
	c := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion("www.example.test.", dns.TypeA)
	if resp, _, err := c.Exchange(m, r.addr); err != nil || len(resp.Answer) != 1 {
		t.Fatalf("through the proxy: %v, %v", resp, err)
	}
	cl := &http.Client{Timeout: 10 * time.Second}
	want := []string{
		`gotthard_connections_open{service="udp-dns"} 0`,
		`gotthard_upstream_connections_total{service="udp-dns"} 1`,
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := cl.Get("http://" + r.admin[0].String() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		missing := ""
		for _, w := range want {
			if !strings.Contains(string(b), w+"\n") {
				missing = w
			}
		}
		if missing == "" && strings.Contains(string(b), `gotthard_sent_bytes_total{service="udp-dns"}`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics has no %s (the session ends after -idle):\n%s", missing, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
