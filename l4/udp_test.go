package l4

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// dnsServer is an authoritative test server on loopback: it answers every TXT
// question with its text, and "big.test." with a TXT record of about 1,000 bytes.
type dnsServer struct {
	addr string
	srv  *dns.Server
	done chan error
}

func startDNS(t testing.TB, text string) *dnsServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		for _, q := range r.Question {
			txt := []string{text}
			if q.Name == "big.test." {
				txt = []string{strings.Repeat("x", 250), strings.Repeat("y", 250), strings.Repeat("z", 250), strings.Repeat("w", 250)}
			}
			m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: txt})
		}
		w.WriteMsg(m)
	})
	d := &dnsServer{addr: pc.LocalAddr().String(), srv: &dns.Server{PacketConn: pc, Handler: h}, done: make(chan error, 1)}
	go func() { d.done <- d.srv.ActivateAndServe() }()
	t.Cleanup(d.stop)
	return d
}

// stop shuts the server down and closes its socket, once.
func (d *dnsServer) stop() {
	if d.srv == nil {
		return
	}
	d.srv.Shutdown()
	<-d.done
	d.srv = nil
}

// endEvent is what Logging saw for one session.
type endEvent struct {
	client   netip.AddrPort
	upstream string
	counts   UDPCounts
	duration time.Duration
	err      error
}

type udpTestCtx struct{ peer string }

// udpTestApp sends each session to the next of peers (round robin) and reports every
// session's end on ended.
type udpTestApp struct {
	UDPPhases[*udpTestCtx]
	peers  []string
	next   atomic.Uint64
	deny   func(netip.AddrPort) error
	ended  chan endEvent
	peerFn func() (string, error)
}

var _ ProxyUDP[*udpTestCtx] = (*udpTestApp)(nil)

func (a *udpTestApp) NewCtx() *udpTestCtx { return &udpTestCtx{} }

func (a *udpTestApp) SessionFilter(_ context.Context, client netip.AddrPort, _ *udpTestCtx) error {
	if a.deny != nil {
		return a.deny(client)
	}
	return nil
}

func (a *udpTestApp) UpstreamPeer(_ context.Context, s *UDPSession, c *udpTestCtx) (string, error) {
	if a.peerFn != nil {
		return a.peerFn()
	}
	c.peer = a.peers[(a.next.Add(1)-1)%uint64(len(a.peers))]
	return c.peer, nil
}

func (a *udpTestApp) Logging(_ context.Context, s *UDPSession, c *udpTestCtx, err error) {
	if a.ended != nil {
		a.ended <- endEvent{s.Client(), s.Upstream(), s.Counts(), s.Duration(), err}
	}
}

// startUDP runs a service for app on a loopback port until the test ends and returns
// it with its address.
func startUDP(t testing.TB, app ProxyUDP[*udpTestCtx], opts UDPOptions) (*UDPService[*udpTestCtx], string) {
	t.Helper()
	if opts.Listen == nil {
		opts.Listen = []string{"127.0.0.1:0"}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	svc, err := NewUDPService("udp-test", app, opts)
	if err != nil {
		t.Fatal(err)
	}
	runUDP(t, svc)
	return svc, svc.Addrs()[0].String()
}

// runUDP runs svc until the test ends, or until the returned stop is called, which
// returns Run's error; it returns once svc is ready.
func runUDP[C any](t testing.TB, svc *UDPService[C]) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- svc.Run(ctx) }()
	select {
	case <-svc.Ready():
	case err := <-ran:
		cancel()
		t.Fatal(err)
	}
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-ran })
		return err
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return stop
}

// dnsConn is a DNS client on one UDP socket, so one session.
func dnsConn(t testing.TB, addr string) (*dns.Client, *dns.Conn) {
	t.Helper()
	c := &dns.Client{Net: "udp", Timeout: 5 * time.Second, UDPSize: 4096}
	conn, err := c.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return c, conn
}

// askTXT asks for name's TXT record on conn and returns the first string.
func askTXT(c *dns.Client, conn *dns.Conn, name string) (string, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeTXT)
	m.SetEdns0(4096, false)
	r, _, err := c.ExchangeWithConn(m, conn)
	if err != nil {
		return "", err
	}
	if len(r.Answer) != 1 {
		return "", fmt.Errorf("%d answers", len(r.Answer))
	}
	return r.Answer[0].(*dns.TXT).Txt[0], nil
}

// waitEnd waits for one session end, with a deadline.
func waitEnd(t *testing.T, ended <-chan endEvent, within time.Duration) endEvent {
	t.Helper()
	select {
	case ev := <-ended:
		return ev
	case <-time.After(within):
		t.Fatalf("no session ended within %v", within)
		return endEvent{}
	}
}

func TestUDPSessionsPerClient(t *testing.T) {
	a, b := startDNS(t, "from-a"), startDNS(t, "from-b")
	app := &udpTestApp{peers: []string{a.addr, b.addr}, ended: make(chan endEvent, 16)}
	svc, err := NewUDPService("dns", app, UDPOptions{Listen: []string{"127.0.0.1:0"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- svc.Run(ctx) }()
	<-svc.Ready()
	addr := svc.Addrs()[0].String()

	// Two clients, two sessions: round robin per session, each sticks to its resolver.
	c1, conn1 := dnsConn(t, addr)
	c2, conn2 := dnsConn(t, addr)
	for i := range 3 {
		for _, tc := range []struct {
			c    *dns.Client
			conn *dns.Conn
			want string
		}{{c1, conn1, "from-a"}, {c2, conn2, "from-b"}} {
			got, err := askTXT(tc.c, tc.conn, fmt.Sprintf("q%d.example.test.", i))
			if err != nil || got != tc.want {
				t.Fatalf("query %d: %q, %v; want %q", i, got, err, tc.want)
			}
		}
	}
	if n := svc.Sessions(); n != 2 {
		t.Errorf("Sessions() = %d, want 2", n)
	}
	// (A datagram is counted once it was sent: its reply, and the reply's reply, may
	// come first.)
	waitFor(t, 5*time.Second, func() bool {
		f := svc.Stats().Forwarded
		return f.DatagramsUp >= 6 && f.DatagramsDown >= 6
	})
	st := svc.Stats()
	if st.SessionsTotal != 2 || st.Forwarded.DatagramsUp != 6 || st.Forwarded.DatagramsDown != 6 || st.Received != 6 {
		t.Errorf("Stats() = %+v", st)
	}

	// A real resolver through the proxy: the Go resolver opens a socket per query.
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
	lctx, lcancel := context.WithTimeout(ctx, 5*time.Second)
	txts, err := r.LookupTXT(lctx, "resolver.example.test")
	lcancel()
	if err != nil || len(txts) != 1 || (txts[0] != "from-a" && txts[0] != "from-b") {
		t.Fatalf("LookupTXT = %q, %v", txts, err)
	}

	// Shutdown ends every session with ErrUDPShutdown; Logging has the counts.
	conn1.Close()
	conn2.Close()
	cancel()
	if err := <-ran; err != nil {
		t.Fatalf("Run: %v", err)
	}
	close(app.ended)
	byClient := map[string]endEvent{}
	for ev := range app.ended {
		if !errors.Is(ev.err, ErrUDPShutdown) && !errors.Is(ev.err, ErrUDPIdle) {
			t.Errorf("session %v ended with %v", ev.client, ev.err)
		}
		byClient[ev.client.String()] = ev
	}
	for _, tc := range []struct {
		conn     *dns.Conn
		upstream string
	}{{conn1, a.addr}, {conn2, b.addr}} {
		ev, ok := byClient[tc.conn.LocalAddr().String()]
		if !ok {
			t.Fatalf("no Logging for client %v", tc.conn.LocalAddr())
		}
		if ev.upstream != tc.upstream || ev.counts.DatagramsUp != 3 || ev.counts.DatagramsDown != 3 ||
			ev.counts.BytesUp == 0 || ev.counts.BytesDown <= ev.counts.BytesUp || !errors.Is(ev.err, ErrUDPShutdown) {
			t.Errorf("client %v: %+v", tc.conn.LocalAddr(), ev)
		}
	}
	if n := svc.Sessions(); n != 0 {
		t.Errorf("Sessions() after shutdown = %d", n)
	}
}

func TestUDPIdleExpiry(t *testing.T) {
	a := startDNS(t, "from-a")
	app := &udpTestApp{peers: []string{a.addr}, ended: make(chan endEvent, 4)}
	const idle = 200 * time.Millisecond
	svc, addr := startUDP(t, app, UDPOptions{IdleTimeout: idle})
	c, conn := dnsConn(t, addr)
	// Keep the session busy past the idle timeout: it must not expire while used.
	start := time.Now()
	for time.Since(start) < 2*idle {
		if got, err := askTXT(c, conn, "busy.test."); err != nil || got != "from-a" {
			t.Fatalf("query: %q, %v", got, err)
		}
		select {
		case ev := <-app.ended:
			t.Fatalf("busy session ended: %+v", ev)
		case <-time.After(idle / 4): // the pace of the client's queries
		}
	}
	ev := waitEnd(t, app.ended, 5*time.Second)
	if !errors.Is(ev.err, ErrUDPIdle) || ev.duration < 2*idle || ev.client.String() != conn.LocalAddr().String() {
		t.Fatalf("end = %+v", ev)
	}
	if n := svc.Sessions(); n != 0 {
		t.Errorf("Sessions() after idle end = %d", n)
	}
	// The same client comes back: a new session.
	if got, err := askTXT(c, conn, "again.test."); err != nil || got != "from-a" {
		t.Fatalf("query after expiry: %q, %v", got, err)
	}
	if st := svc.Stats(); st.SessionsTotal != 2 || st.Sessions != 1 {
		t.Errorf("Stats() = %+v", st)
	}
}

func TestUDPSessionLimitFlood(t *testing.T) {
	a := startDNS(t, "from-a")
	app := &udpTestApp{peers: []string{a.addr}}
	const maxSessions, flood, batch = 64, 10000, 100
	warns := &countHandler{}
	svc, addr := startUDP(t, app, UDPOptions{MaxSessions: maxSessions, IdleTimeout: time.Minute, Logger: slog.New(warns)})
	start := time.Now()
	c, conn := dnsConn(t, addr)
	if got, err := askTXT(c, conn, "first.test."); err != nil || got != "from-a" {
		t.Fatalf("query: %q, %v", got, err)
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc

	q := new(dns.Msg)
	q.SetQuestion("flood.test.", dns.TypeTXT)
	wire, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	dst := net.UDPAddrFromAddrPort(svc.Addrs()[0])
	var sent int64
	for i := 0; i < flood; i += batch {
		// batch sockets open at once: distinct source ports; a batch fits in the
		// listening socket's receive buffer (212,992 bytes by default on Linux).
		var conns []*net.UDPConn
		for range batch {
			uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, uc)
			if _, err := uc.WriteToUDP(wire, dst); err != nil {
				t.Fatal(err)
			}
		}
		sent += batch
		// Wait until the service has read them all, so the kernel drops none of
		// them before the service sees them.
		waitFor(t, 5*time.Second, func() bool { return svc.Stats().Received >= sent+1 })
		for _, uc := range conns {
			uc.Close()
		}
		if n := svc.Sessions(); n > maxSessions {
			t.Fatalf("after %d datagrams: %d sessions, bound %d", sent, n, maxSessions)
		}
		if i%(flood/4) == 0 { // the existing session is answered during the flood
			if got, err := askTXT(c, conn, "during.test."); err != nil || got != "from-a" {
				t.Fatalf("existing client during flood: %q, %v", got, err)
			}
		}
	}
	if got, err := askTXT(c, conn, "after.test."); err != nil || got != "from-a" {
		t.Fatalf("existing client after flood: %q, %v", got, err)
	}
	st := svc.Stats()
	if st.Sessions != maxSessions || st.SessionsTotal != maxSessions {
		t.Errorf("sessions %d (total %d), want the bound %d", st.Sessions, st.SessionsTotal, maxSessions)
	}
	// Every flood datagram made one of the 63 free sessions, hit one of them (a port
	// used again) or was dropped.
	if st.DroppedSessionLimit < flood-2*maxSessions {
		t.Errorf("DroppedSessionLimit = %d of %d flood datagrams", st.DroppedSessionLimit, flood)
	}
	// One log line a second at most about the drops.
	if n, most := warns.n.Load(), int64(time.Since(start)/time.Second)+1; n < 1 || n > most {
		t.Errorf("%d Warn lines about the session limit, want 1 to %d", n, most)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	growth := int64(ms.HeapAlloc) - int64(before)
	t.Logf("heap growth over the flood: %d KiB; stats %+v", growth>>10, st)
	if growth > 8<<20 {
		t.Errorf("heap grew by %d KiB over the flood", growth>>10)
	}
}

func TestUDPMaxDatagram(t *testing.T) {
	a := startDNS(t, "from-a")
	app := &udpTestApp{peers: []string{a.addr}}
	svc, addr := startUDP(t, app, UDPOptions{MaxDatagram: 512})
	c, conn := dnsConn(t, addr)

	// A client datagram over the bound is dropped and makes no session; the reader
	// handles the socket's datagrams in order, so the next query's answer means it was
	// counted.
	if _, err := conn.Write(make([]byte, 513)); err != nil {
		t.Fatal(err)
	}
	if got, err := askTXT(c, conn, "small.test."); err != nil || got != "from-a" {
		t.Fatalf("query: %q, %v", got, err)
	}
	if st := svc.Stats(); st.DroppedOversize != 1 || st.SessionsTotal != 1 || st.Forwarded.DatagramsUp != 1 {
		t.Fatalf("after an oversize query: %+v", st)
	}
	// An upstream answer over the bound (about 1,000 bytes) is dropped too.
	c.Timeout = 300 * time.Millisecond
	if got, err := askTXT(c, conn, "big.test."); err == nil {
		t.Fatalf("an answer over MaxDatagram reached the client: %.20q...", got)
	}
	waitFor(t, 5*time.Second, func() bool { return svc.Stats().DroppedOversize == 2 })
	if got, err := askTXT(c, conn, "small-again.test."); err != nil || got != "from-a" {
		t.Fatalf("query after an oversize answer: %q, %v", got, err)
	}
}

func TestUDPUpstreamGone(t *testing.T) {
	a := startDNS(t, "from-a")
	var peer atomic.Pointer[string]
	peer.Store(&a.addr)
	app := &udpTestApp{ended: make(chan endEvent, 4), peerFn: func() (string, error) { return *peer.Load(), nil }}
	svc, addr := startUDP(t, app, UDPOptions{})
	c, conn := dnsConn(t, addr)
	if got, err := askTXT(c, conn, "up.test."); err != nil || got != "from-a" {
		t.Fatalf("query: %q, %v", got, err)
	}
	a.stop() // its port now answers with ICMP port unreachable
	c.Timeout = 300 * time.Millisecond
	if _, err := askTXT(c, conn, "gone.test."); err == nil {
		t.Fatal("an answer from a stopped server")
	}
	ev := waitEnd(t, app.ended, 5*time.Second)
	if !errors.Is(ev.err, ErrUDPUpstream) || !errors.Is(ev.err, syscall.ECONNREFUSED) || ev.upstream != a.addr {
		t.Fatalf("end = %+v", ev)
	}
	if st := svc.Stats(); st.Sessions != 0 || st.UpstreamErrors != 1 {
		t.Errorf("Stats() = %+v", st)
	}
	// The next query makes a new session, to a resolver that answers again.
	b := startDNS(t, "from-b")
	peer.Store(&b.addr)
	c.Timeout = 5 * time.Second
	if got, err := askTXT(c, conn, "back.test."); err != nil || got != "from-b" {
		t.Fatalf("query after the upstream went away: %q, %v", got, err)
	}
}

func TestUDPFilterAndPeerError(t *testing.T) {
	a := startDNS(t, "from-a")
	var denied atomic.Pointer[netip.AddrPort]
	errNoPeer := errors.New("no peer")
	var failPeer atomic.Bool
	app := &udpTestApp{ended: make(chan endEvent, 4)}
	app.deny = func(client netip.AddrPort) error {
		if d := denied.Load(); d != nil && *d == client {
			return errors.New("denied")
		}
		return nil
	}
	app.peerFn = func() (string, error) {
		if failPeer.Load() {
			return "", errNoPeer
		}
		return a.addr, nil
	}
	svc, addr := startUDP(t, app, UDPOptions{})

	c, conn := dnsConn(t, addr)
	ap := netip.MustParseAddrPort(conn.LocalAddr().String())
	denied.Store(&ap)
	c.Timeout = 300 * time.Millisecond
	if _, err := askTXT(c, conn, "denied.test."); err == nil {
		t.Fatal("a denied client was answered")
	}
	if st := svc.Stats(); st.DroppedFiltered != 1 || st.SessionsTotal != 0 || st.Sessions != 0 {
		t.Fatalf("after a denied datagram: %+v", st)
	}

	failPeer.Store(true)
	c2, conn2 := dnsConn(t, addr)
	c2.Timeout = 300 * time.Millisecond
	if _, err := askTXT(c2, conn2, "nopeer.test."); err == nil {
		t.Fatal("answered with no peer")
	}
	ev := waitEnd(t, app.ended, 5*time.Second)
	if !errors.Is(ev.err, ErrUDPPeer) || !errors.Is(ev.err, errNoPeer) || ev.counts != (UDPCounts{}) {
		t.Fatalf("end = %+v", ev)
	}
	if st := svc.Stats(); st.PeerErrors != 1 || st.Sessions != 0 {
		t.Errorf("Stats() = %+v", st)
	}
	select {
	case ev := <-app.ended:
		t.Errorf("Logging ran for a filtered datagram: %+v", ev)
	default:
	}
}

func TestNewUDPServiceOptions(t *testing.T) {
	app := &udpTestApp{}
	for _, tc := range []struct {
		name string
		opts UDPOptions
		want string
	}{
		{"no listen", UDPOptions{}, "Listen"},
		{"bad listen", UDPOptions{Listen: []string{"127.0.0.1"}}, "Listen[0]"},
		{"max sessions", UDPOptions{Listen: []string{":0"}, MaxSessions: -1}, "MaxSessions"},
		{"idle", UDPOptions{Listen: []string{":0"}, IdleTimeout: -time.Second}, "IdleTimeout"},
		{"datagram", UDPOptions{Listen: []string{":0"}, MaxDatagram: 70000}, "MaxDatagram"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewUDPService("x", app, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming %s", err, tc.want)
			}
		})
	}
	if _, err := NewUDPService("x", app, UDPOptions{Listen: []string{"127.0.0.1:0"}}); err != nil {
		t.Fatal(err)
	}
}

func TestUDPRunTwiceAndBindError(t *testing.T) {
	app := &udpTestApp{}
	svc, addr := startUDP(t, app, UDPOptions{})
	if err := svc.Run(context.Background()); err == nil {
		t.Error("a second Run did not fail")
	}
	// A socket bound without SO_REUSEPORT keeps another service off its port.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	other, err := NewUDPService("other", app, UDPOptions{Listen: []string{addr, pc.LocalAddr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Run(context.Background()); err == nil {
		t.Error("Run bound a port another socket holds")
	}
}

// waitFor waits until cond holds, checking it each millisecond, or fails the test at
// the deadline.
func waitFor(t testing.TB, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("condition not met within %v", within)
		case <-tick.C:
		}
	}
}

// TestUDPSessionMemory measures what an open session holds (heap and goroutine stack)
// with the default MaxDatagram of 4,096 bytes.
func TestUDPSessionMemory(t *testing.T) {
	echo := echoUDP(t)
	const n = 1000
	svc, addr := startUDP(t, &udpTestApp{peers: []string{echo}}, UDPOptions{})
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapInuse + ms.StackInuse
	buf := make([]byte, 64)
	for range n {
		c, err := net.Dial("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write(buf); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	per := (int64(ms.HeapInuse+ms.StackInuse) - int64(before)) / n
	t.Logf("%d sessions: %d bytes each (heap and stacks)", svc.Sessions(), per)
	if svc.Sessions() != n {
		t.Fatalf("Sessions() = %d, want %d", svc.Sessions(), n)
	}
	if per > 24<<10 {
		t.Errorf("a session holds %d bytes", per)
	}
}

// TestUDPDualStack serves on a dual-stack socket: an IPv4 client is known by its IPv4
// address and answered.
func TestUDPDualStack(t *testing.T) {
	if pc, err := net.ListenPacket("udp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 here: %v", err)
	} else {
		pc.Close()
	}
	a := startDNS(t, "from-a")
	app := &udpTestApp{peers: []string{a.addr}, ended: make(chan endEvent, 4)}
	svc, err := NewUDPService("dual", app, UDPOptions{Listen: []string{"[::]:0"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- svc.Run(ctx) }()
	<-svc.Ready()
	port := svc.Addrs()[0].Port()
	for _, host := range []string{"127.0.0.1", "::1"} {
		c, conn := dnsConn(t, net.JoinHostPort(host, fmt.Sprint(port)))
		if got, err := askTXT(c, conn, "dual.test."); err != nil || got != "from-a" {
			t.Fatalf("query from %s: %q, %v", host, got, err)
		}
	}
	cancel()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	close(app.ended)
	var clients []string
	for ev := range app.ended {
		clients = append(clients, ev.client.Addr().String())
	}
	if len(clients) != 2 || !slices.Contains(clients, "127.0.0.1") || !slices.Contains(clients, "::1") {
		t.Errorf("session clients = %v, want 127.0.0.1 and ::1", clients)
	}
}

// countHandler counts the Warn records logged through it.
type countHandler struct{ n atomic.Int64 }

func (h *countHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h *countHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn {
		h.n.Add(1)
	}
	return nil
}
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countHandler) WithGroup(string) slog.Handler      { return h }

// TestUDPPanics: a panic in SessionFilter drops the datagram, one in UpstreamPeer ends
// its session only; the service goes on.
func TestUDPPanics(t *testing.T) {
	a := startDNS(t, "from-a")
	var mode atomic.Int32 // 1: SessionFilter panics, 2: UpstreamPeer panics
	app := &udpTestApp{ended: make(chan endEvent, 4)}
	app.deny = func(netip.AddrPort) error {
		if mode.Load() == 1 {
			panic("filter")
		}
		return nil
	}
	app.peerFn = func() (string, error) {
		if mode.Load() == 2 {
			panic("peer")
		}
		return a.addr, nil
	}
	svc, addr := startUDP(t, app, UDPOptions{})
	for _, m := range []int32{1, 2} {
		mode.Store(m)
		c, conn := dnsConn(t, addr)
		c.Timeout = 300 * time.Millisecond
		if _, err := askTXT(c, conn, "panic.test."); err == nil {
			t.Fatalf("mode %d: answered", m)
		}
	}
	ev := waitEnd(t, app.ended, 5*time.Second)
	if !errors.Is(ev.err, ErrUDPPanic) {
		t.Errorf("end after a panic in UpstreamPeer: %v", ev.err)
	}
	if st := svc.Stats(); st.DroppedFiltered != 1 || st.SessionsTotal != 1 || st.Sessions != 0 {
		t.Errorf("Stats() = %+v", st)
	}
	mode.Store(0)
	c, conn := dnsConn(t, addr)
	if got, err := askTXT(c, conn, "fine.test."); err != nil || got != "from-a" {
		t.Fatalf("query after the panics: %q, %v", got, err)
	}
}
