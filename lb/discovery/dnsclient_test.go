package discovery

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/gotthard-proxy/gotthard/lb"
)

// ttlServer is a DNS server on loopback (UDP and TCP on the same port) that answers A
// and SRV queries with a TTL; over UDP it can mark answers truncated.
type ttlServer struct {
	pc       net.PacketConn
	ln       net.Listener
	mu       sync.Mutex
	ip       [4]byte
	ttl      uint32
	truncate bool
	queries  atomic.Int32
	tcp      atomic.Int32
}

func startTTLServer(t *testing.T) *ttlServer {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		pc.Close()
		t.Skip("cannot listen on TCP and UDP on the same port:", err)
	}
	s := &ttlServer{pc: pc, ln: ln, ip: [4]byte{127, 0, 0, 7}, ttl: 1}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		buf := make([]byte, 1500)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := s.answer(buf[:n], true); resp != nil {
				pc.WriteTo(resp, addr)
			}
		}
	}()
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.tcp.Add(1)
			var l [2]byte
			if _, err := readFull(c, l[:]); err == nil {
				q := make([]byte, int(l[0])<<8|int(l[1]))
				if _, err := readFull(c, q); err == nil {
					resp := s.answer(q, false)
					c.Write(append([]byte{byte(len(resp) >> 8), byte(len(resp))}, resp...))
				}
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { pc.Close(); ln.Close(); wg.Wait() })
	return s
}

func (s *ttlServer) answer(q []byte, udp bool) []byte {
	var m dnsmessage.Message
	if err := m.Unpack(q); err != nil || len(m.Questions) != 1 {
		return nil
	}
	s.queries.Add(1)
	s.mu.Lock()
	ip, ttl, trunc := s.ip, s.ttl, s.truncate && udp
	s.mu.Unlock()
	qq := m.Questions[0]
	m.Header.Response, m.Header.Truncated = true, trunc
	hdr := dnsmessage.ResourceHeader{Name: qq.Name, Type: qq.Type, Class: dnsmessage.ClassINET, TTL: ttl}
	if !trunc {
		switch qq.Type {
		case dnsmessage.TypeA:
			m.Answers = []dnsmessage.Resource{{Header: hdr, Body: &dnsmessage.AResource{A: ip}}}
		case dnsmessage.TypeSRV:
			target, _ := dnsmessage.NewName("backend.test.")
			m.Answers = []dnsmessage.Resource{{Header: hdr, Body: &dnsmessage.SRVResource{Target: target, Port: 8080, Weight: 5}}}
		}
	}
	b, _ := m.Pack()
	return b
}

func TestClientTTL(t *testing.T) {
	s := startTTLServer(t)
	s.mu.Lock()
	s.ttl = 42
	s.mu.Unlock()
	c := &Client{Servers: []string{s.pc.LocalAddr().String()}}
	ctx := context.Background()
	ips, err := c.LookupIPAddr(ctx, "api.test")
	if err != nil || len(ips) != 1 || !ips[0].IP.Equal(net.IPv4(127, 0, 0, 7)) {
		t.Fatalf("LookupIPAddr: %v %v", ips, err)
	}
	if got := c.TTL("api.test"); got != 42*time.Second {
		t.Fatalf("TTL = %v", got)
	}
	_, srvs, err := c.LookupSRV(ctx, "http", "tcp", "api.test")
	if err != nil || len(srvs) != 1 || srvs[0].Port != 8080 || srvs[0].Weight != 5 {
		t.Fatalf("LookupSRV: %v %v", srvs, err)
	}
	if got := c.TTL("_http._tcp.api.test"); got != 42*time.Second {
		t.Fatalf("SRV TTL = %v", got)
	}
	// A truncated UDP answer is asked again over TCP.
	s.mu.Lock()
	s.truncate = true
	s.mu.Unlock()
	if ips, err := c.LookupIPAddr(ctx, "api.test"); err != nil || len(ips) != 1 || s.tcp.Load() == 0 {
		t.Fatalf("after truncation: %v %v (tcp queries %d)", ips, err, s.tcp.Load())
	}
}

// DNS re-resolves when the TTL of the answer runs out.
func TestDNSFollowsTTL(t *testing.T) {
	s := startTTLServer(t)
	d := &DNS{Host: "api.test", Port: 9000, Resolver: &Client{Servers: []string{s.pc.LocalAddr().String()}},
		Interval: time.Hour, MinInterval: 10 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	updates := make(chan []lb.Backend, 4)
	done := make(chan error, 1)
	go func() { done <- d.Watch(ctx, func(bs []lb.Backend) { updates <- bs }) }()
	defer func() { cancel(); <-done }()
	first := <-updates
	if len(first) != 1 || first[0].Addr != "127.0.0.7:9000" {
		t.Fatalf("first answer %v", first)
	}
	s.mu.Lock()
	s.ip = [4]byte{127, 0, 0, 8}
	s.mu.Unlock()
	select {
	case bs := <-updates:
		if len(bs) != 1 || bs[0].Addr != "127.0.0.8:9000" {
			t.Fatalf("second answer %v", bs)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no lookup after the TTL ran out (Interval is an hour)")
	}
}
