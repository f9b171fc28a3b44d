package discovery_test

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/lb"
	"github.com/gotthard-proxy/gotthard/lb/discovery"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// watch runs d.Watch in the background and returns its updates; it stops when the
// test ends.
func watch(t *testing.T, d lb.Discovery) <-chan []lb.Backend {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan []lb.Backend, 16)
	done := make(chan error, 1)
	go func() { done <- d.Watch(ctx, func(bs []lb.Backend) { ch <- bs }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch: %v", err)
		}
	})
	return ch
}

func next(t *testing.T, ch <-chan []lb.Backend) []lb.Backend {
	t.Helper()
	select {
	case bs := <-ch:
		return bs
	case <-time.After(10 * time.Second):
		t.Fatal("no update")
		return nil
	}
}

func addrs(bs []lb.Backend) string {
	var s []string
	for _, b := range bs {
		s = append(s, b.Addr)
	}
	return strings.Join(s, ",")
}

func TestParseBackends(t *testing.T) {
	tests := []struct {
		name, in, want, err string
	}{
		{"plain", "10.0.0.1:80\n\n# c\n  10.0.0.2:81  \n", "10.0.0.1:80,10.0.0.2:81", ""},
		{"fields", "10.0.0.1:80 weight=3 zone=a\n", "10.0.0.1:80", ""},
		{"no port", "10.0.0.1\n", "", `line 1: syntax error: address "10.0.0.1": missing port in address`},
		{"bad weight", "10.0.0.1:80\n10.0.0.1:81 weight=0\n", "", "line 2"},
		{"bad field", "10.0.0.1:80 heavy\n", "", "key=value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bs, err := discovery.ParseBackends([]byte(tt.in))
			if tt.err != "" {
				if err == nil || !errors.Is(err, discovery.ErrSyntax) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want ErrSyntax naming %q", err, tt.err)
				}
				return
			}
			if err != nil || addrs(bs) != tt.want {
				t.Fatalf("got %v, %v", bs, err)
			}
			if tt.name == "fields" && (bs[0].Weight != 3 || bs[0].Meta["zone"] != "a") {
				t.Fatalf("got %+v", bs[0])
			}
		})
	}
}

func TestFileReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "backends")
	write := func(s string) {
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write("10.0.0.1:80\n")
	ch := watch(t, &discovery.File{Path: path, Interval: 10 * time.Millisecond})
	if got := addrs(next(t, ch)); got != "10.0.0.1:80" {
		t.Fatalf("first: %s", got)
	}
	write("10.0.0.1:80\n10.0.0.2:80 weight=2\n")
	if got := addrs(next(t, ch)); got != "10.0.0.1:80,10.0.0.2:80" {
		t.Fatalf("second: %s", got)
	}
	write("garbage line\n") // logged, the last set stays
	write("10.0.0.3:80\n")
	if got := addrs(next(t, ch)); got != "10.0.0.3:80" {
		t.Fatalf("third: %s", got)
	}
}

// dnsServer is a tiny authoritative DNS server on loopback UDP that answers A and SRV
// questions from its records, and SERVFAIL while failing is set.
type dnsServer struct {
	pc      net.PacketConn
	mu      sync.Mutex
	a       map[string][]net.IP // name (with final dot) → addresses
	srv     map[string][]net.SRV
	failing atomic.Bool
	queries atomic.Int64
	wg      sync.WaitGroup
}

func startDNS(t *testing.T) *dnsServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &dnsServer{pc: pc, a: map[string][]net.IP{}, srv: map[string][]net.SRV{}}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(func() { pc.Close(); s.wg.Wait() })
	return s
}

func (s *dnsServer) set(f func()) { s.mu.Lock(); f(); s.mu.Unlock() }

// resolver returns a net.Resolver that sends every query to s.
func (s *dnsServer) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", s.pc.LocalAddr().String())
	}}
}

func encodeName(b []byte, name string) []byte {
	for _, l := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	return append(b, 0)
}

func (s *dnsServer) serve() {
	defer s.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, from, err := s.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		q := buf[:n]
		if n < 12 {
			continue
		}
		s.queries.Add(1)
		// The question: labels from offset 12, then type and class.
		i := 12
		var labels []string
		for i < n && q[i] != 0 {
			l := int(q[i])
			labels = append(labels, string(q[i+1:i+1+l]))
			i += 1 + l
		}
		qend := i + 5
		if qend > n {
			continue
		}
		name := strings.ToLower(strings.Join(labels, ".")) + "."
		qtype := binary.BigEndian.Uint16(q[i+1:])
		resp := append([]byte{}, q[:qend]...)
		binary.BigEndian.PutUint16(resp[2:], 0x8180) // response, recursion available
		binary.BigEndian.PutUint16(resp[6:], 0)      // answers, set below
		binary.BigEndian.PutUint16(resp[8:], 0)
		binary.BigEndian.PutUint16(resp[10:], 0)
		if s.failing.Load() {
			binary.BigEndian.PutUint16(resp[2:], 0x8182) // SERVFAIL
			s.pc.WriteTo(resp, from)
			continue
		}
		var answers int
		rr := func(typ uint16, rdata []byte) {
			resp = append(resp, 0xc0, 12) // the question's name
			resp = binary.BigEndian.AppendUint16(resp, typ)
			resp = binary.BigEndian.AppendUint16(resp, 1)  // IN
			resp = binary.BigEndian.AppendUint32(resp, 60) // TTL
			resp = binary.BigEndian.AppendUint16(resp, uint16(len(rdata)))
			resp = append(resp, rdata...)
			answers++
		}
		s.mu.Lock()
		switch qtype {
		case 1: // A
			for _, ip := range s.a[name] {
				rr(1, ip.To4())
			}
		case 33: // SRV
			for _, r := range s.srv[name] {
				rd := binary.BigEndian.AppendUint16(nil, r.Priority)
				rd = binary.BigEndian.AppendUint16(rd, r.Weight)
				rd = binary.BigEndian.AppendUint16(rd, r.Port)
				rr(33, encodeName(rd, r.Target))
			}
		}
		s.mu.Unlock()
		binary.BigEndian.PutUint16(resp[6:], uint16(answers))
		s.pc.WriteTo(resp, from)
	}
}

func TestDNS(t *testing.T) {
	s := startDNS(t)
	s.set(func() { s.a["api.test."] = []net.IP{net.ParseIP("10.0.0.2"), net.ParseIP("10.0.0.1")} })
	d := &discovery.DNS{Host: "api.test", Port: 8080, Resolver: s.resolver(), Interval: 20 * time.Millisecond, MinInterval: 10 * time.Millisecond}
	ch := watch(t, d)
	if got := addrs(next(t, ch)); got != "10.0.0.1:8080,10.0.0.2:8080" {
		t.Fatalf("first: %s", got)
	}
	// While the server fails, no update comes (the last answer stays); once it answers
	// again with a new record, the update does.
	s.failing.Store(true)
	q := s.queries.Load()
	deadline := time.Now().Add(10 * time.Second)
	for s.queries.Load() < q+4 && time.Now().Before(deadline) {
		select {
		case bs := <-ch:
			t.Fatalf("update while failing: %v", bs)
		case <-time.After(5 * time.Millisecond):
		}
	}
	s.set(func() { s.a["api.test."] = append(s.a["api.test."], net.ParseIP("10.0.0.3")) })
	s.failing.Store(false)
	if got := addrs(next(t, ch)); got != "10.0.0.1:8080,10.0.0.2:8080,10.0.0.3:8080" {
		t.Fatalf("after failure: %s", got)
	}
}

func TestDNSSRV(t *testing.T) {
	s := startDNS(t)
	s.set(func() {
		s.srv["_http._tcp.api.test."] = []net.SRV{
			{Target: "a.test.", Port: 9001, Priority: 10, Weight: 3},
			{Target: "b.test.", Port: 9002, Priority: 10, Weight: 1},
			{Target: "backup.test.", Port: 9003, Priority: 20, Weight: 1},
		}
		s.a["a.test."] = []net.IP{net.ParseIP("10.0.1.1")}
		s.a["b.test."] = []net.IP{net.ParseIP("10.0.1.2")}
		s.a["backup.test."] = []net.IP{net.ParseIP("10.0.1.3")}
	})
	d := &discovery.DNS{SRV: "_http._tcp.api.test", Resolver: s.resolver()}
	bs, err := d.Lookup(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if addrs(bs) != "10.0.1.1:9001,10.0.1.2:9002" || bs[0].Weight != 3 || bs[1].Weight != 1 {
		t.Fatalf("got %+v", bs)
	}
}

func TestStatic(t *testing.T) {
	ch := watch(t, discovery.Static{{Addr: "10.0.0.1:80"}})
	if got := addrs(next(t, ch)); got != "10.0.0.1:80" {
		t.Fatalf("got %s", got)
	}
}
