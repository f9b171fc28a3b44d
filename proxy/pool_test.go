package proxy

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/h1"
)

// TestPoolReuseAfterReadTimeout checks that a pooled connection idle for longer than
// its peer's ReadTimeout is still reused: the liveness check before a request that
// cannot be resent does not read with the deadline left from the last exchange.
func TestPoolReuseAfterReadTimeout(t *testing.T) {
	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	peer := &Peer{Address: origin, Options: PeerOptions{ReadTimeout: 100 * time.Millisecond}}
	svc, _ := newTestService[*testCtx](t, fixedProxy{peer: peer}, ServiceOptions{MaxRetries: -1})
	addr := startProxy(t, svc)
	cl := testClient(t)
	for i := range 2 {
		if i == 1 {
			// The idle time is what is tested: three times the peer's ReadTimeout.
			time.Sleep(300 * time.Millisecond)
		}
		resp := postBody(t, cl, "http://"+addr+"/", []byte("x"), false)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, b)
		}
	}
	if st := svc.PoolStats(); st.New != 1 || st.Reused != 1 {
		t.Errorf("pool %+v, want 1 new and 1 reused", st)
	}
}

// closingTLSOrigin is a TLS origin that answers one request per connection, then
// closes it (close_notify and FIN) or, with notifyOnly, only sends close_notify and
// keeps the socket open. Each close is reported on closed.
type closingTLSOrigin struct {
	addr   string
	closed chan struct{}
}

func startClosingTLSOrigin(t *testing.T, p *pki, notifyOnly bool) *closingTLSOrigin {
	t.Helper()
	cert := p.keyPair(t, p.issue(t, "origin.test", []string{"origin.test"}, false))
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	o := &closingTLSOrigin{addr: ln.Addr().String(), closed: make(chan struct{}, 4)}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				if notifyOnly {
					c.(*tls.Conn).CloseWrite()
				} else {
					c.Close()
				}
				o.closed <- struct{}{}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return o
}

// TestPoolTLSPeerClosedIdle checks that a pooled TLS connection its peer closed is not
// reused: the close watcher sees the socket under TLS close, and the check before a
// request that cannot be resent sees a close_notify even without the FIN.
func TestPoolTLSPeerClosedIdle(t *testing.T) {
	p := newPKI(t)
	tests := []struct {
		name       string
		method     string
		notifyOnly bool
		watched    bool // wait for the close watcher to mark the connection dead
	}{
		{"watched close", "GET", false, true},
		{"checked close", "POST", false, false},
		{"checked close_notify", "POST", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			origin := startClosingTLSOrigin(t, p, tt.notifyOnly)
			peer := &Peer{Address: origin.addr, TLS: &PeerTLS{ServerName: "origin.test", RootCAs: p.pool()}}
			svc, logs := newTestService[*testCtx](t, fixedProxy{peer: peer}, ServiceOptions{MaxRetries: -1})
			addr := startProxy(t, svc)
			cl := testClient(t)
			for i := range 2 {
				req, _ := http.NewRequest(tt.method, "http://"+addr+"/", strings.NewReader("x"))
				if tt.method == "GET" {
					req.Body, req.ContentLength = nil, 0
				}
				resp, err := cl.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(b) != "ok" {
					t.Fatalf("request %d: %d %q; log:\n%s", i, resp.StatusCode, b, logs)
				}
				if i == 0 {
					waitFor(t, "the origin to close", origin.closed)
					if tt.watched {
						waitCond(t, "the pooled connection marked dead", func() bool { return idleDead(svc.pool) })
					}
				}
			}
			if st := svc.PoolStats(); st.New != 2 || st.Reused != 0 {
				t.Errorf("pool %+v, want 2 new and none reused", st)
			}
		})
	}
}

// idleDead reports whether the pool holds an idle connection marked dead.
func idleDead(p *connPool) bool {
	p.hosts.mu.Lock()
	defer p.hosts.mu.Unlock()
	for _, h := range p.hosts.all {
		h.mu.Lock()
		for _, c := range h.idle {
			if c.dead.Load() {
				h.mu.Unlock()
				return true
			}
		}
		h.mu.Unlock()
	}
	return false
}

func waitFor(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// waitCond waits until cond holds, for a few seconds at most.
func waitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPoolTLSStrictReuse checks that the liveness check of a TLS connection passes a
// healthy one: requests that cannot be resent reuse it.
func TestPoolTLSStrictReuse(t *testing.T) {
	p := newPKI(t)
	origin := startTLSOrigin(t, p, "origin.test", tls.NoClientCert)
	peer := &Peer{Address: origin.addr, TLS: &PeerTLS{ServerName: "origin.test", RootCAs: p.pool()}}
	svc, _ := newTestService[*testCtx](t, fixedProxy{peer: peer}, ServiceOptions{MaxRetries: -1})
	addr := startProxy(t, svc)
	cl := testClient(t)
	for i := range 3 {
		resp := postBody(t, cl, "http://"+addr+"/", []byte("x"), false)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	if st := svc.PoolStats(); st.New != 1 || st.Reused != 2 {
		t.Errorf("pool %+v, want 1 new and 2 reused", st)
	}
}

// countPeerState returns the number of entries in p's table, and of those with a TLS
// configuration and with HTTP/2 transports.
func countPeerState(p *connPool) (entries, tlsConfigs, transports int) {
	p.hosts.mu.Lock()
	defer p.hosts.mu.Unlock()
	for _, h := range p.hosts.all {
		h.mu.Lock()
		if h.tlsConfig != nil {
			tlsConfigs++
		}
		transports += len(h.h2.transports)
		h.mu.Unlock()
	}
	return len(p.hosts.all), tlsConfigs, transports
}

// TestPoolPrunesPeers checks that what the pool keeps per peer identity goes once the
// peer is no longer used: thousands of distinct peers, then time passes. Some are used
// through the proxy (distinct by group key, over HTTP/1.1, TLS and h2c); the others,
// at distinct addresses, only get an entry.
func TestPoolPrunesPeers(t *testing.T) {
	const nPlain, nTLS, nH2C, nOther = 100, 100, 100, 4700
	_, plain := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	p := newPKI(t)
	tlsOrigin := startTLSOrigin(t, p, "origin.test", tls.NoClientCert)
	h2c, _ := startH2Origin(t, false)
	var peers []*Peer
	for i := range nPlain + nTLS + nH2C {
		// Connections are not kept, so that only the per-peer state stays.
		peer := &Peer{Address: plain, GroupKey: fmt.Sprint(i), Options: PeerOptions{IdleTimeout: -1}}
		switch {
		case i >= nPlain+nTLS:
			peer.Address, peer.Protocol = h2c, ProtoHTTP2
		case i >= nPlain:
			peer.Address = tlsOrigin.addr
			peer.TLS = &PeerTLS{ServerName: "origin.test", RootCAs: p.pool()}
		}
		peers = append(peers, peer)
	}
	var next atomic.Int64
	svc, _ := newTestService[*testCtx](t, switchProxy{peers: peers, next: &next}, ServiceOptions{MaxRetries: -1})
	addr := startProxy(t, svc)
	cl := testClient(t)
	for i := range peers {
		resp, err := cl.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	for i := range nOther {
		peer := &Peer{Address: fmt.Sprintf("127.0.0.%d:%d", 1+i/60000, 1+i%60000)}
		svc.pool.host(peer.key(), time.Now(), &peer.Options)
	}
	total := len(peers) + nOther
	if n, cfgs, trs := countPeerState(svc.pool); n != total || cfgs != nTLS || trs != nH2C {
		t.Fatalf("%d entries, %d TLS configurations, %d transports; want %d, %d, %d", n, cfgs, trs, total, nTLS, nH2C)
	}
	// A sweep now keeps them all: they were used less than three idle timeouts ago.
	svc.pool.sweep(time.Now())
	if st := svc.PoolStats(); st.Peers != total {
		t.Fatalf("after a sweep now: %d peers, want %d", st.Peers, total)
	}
	if n := len(*svc.pool.hosts.snap.Load()); n != total {
		t.Fatalf("%d entries in the snapshot after a sweep, want %d", n, total)
	}
	// An hour later they all go, once the last connection has closed.
	later := time.Now().Add(time.Hour)
	waitCond(t, "the peers pruned", func() bool {
		svc.pool.sweep(later)
		return svc.PoolStats().Peers == 0
	})
	if n, cfgs, trs := countPeerState(svc.pool); n != 0 || cfgs != 0 || trs != 0 {
		t.Errorf("%d entries, %d TLS configurations, %d transports left", n, cfgs, trs)
	}
	if n := len(*svc.pool.hosts.snap.Load()); n != 0 {
		t.Errorf("%d entries left in the snapshot", n)
	}
	// A peer used again gets a new entry, and its connections are pooled again.
	peers[0].Options.IdleTimeout = 0
	for range 2 {
		next.Store(0)
		resp, _ := getBody(t, cl, "http://"+addr+"/")
		if resp.StatusCode != 200 {
			t.Fatalf("after pruning: %d", resp.StatusCode)
		}
	}
	if st := svc.PoolStats(); st.Peers != 1 || st.Reused != 1 {
		t.Errorf("after pruning: %+v, want 1 peer and 1 reused", st)
	}
}

// TestPoolMaxPeers checks that the pool keeps at most MaxUpstreamPeers peer identities
// beyond those with connections open, dropping the least recently used.
func TestPoolMaxPeers(t *testing.T) {
	const max, n = 100, 400
	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	// Peer 0 keeps an idle connection; the others keep none.
	var peers []*Peer
	for i := range n {
		peers = append(peers, &Peer{Address: origin, GroupKey: fmt.Sprint(i), Options: PeerOptions{IdleTimeout: -1}})
	}
	peers[0].Options.IdleTimeout = 0
	var next atomic.Int64
	svc, _ := newTestService[*testCtx](t, switchProxy{peers: peers, next: &next}, ServiceOptions{MaxRetries: -1, MaxUpstreamPeers: max})
	addr := startProxy(t, svc)
	cl := testClient(t)
	for range n {
		if resp, _ := getBody(t, cl, "http://"+addr+"/"); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		// The entry of the peer last used may still count its connection open.
		if st := svc.PoolStats(); st.Peers > max+2 {
			t.Fatalf("%d peers kept, want at most %d", st.Peers, max)
		}
	}
	next.Store(0)
	if resp, _ := getBody(t, cl, "http://"+addr+"/"); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if st := svc.PoolStats(); st.Reused != 1 {
		t.Errorf("pool %+v: peer 0's idle connection was not kept", st)
	}
}

// TestH2PeerOptionsPerRequest checks that peers of the same identity with different
// timeouts each get theirs over h2c: the read timeout, and the idle timeout that
// net/http builds into a transport.
func TestH2PeerOptionsPerRequest(t *testing.T) {
	closed := make(chan struct{}, 8)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			// The origin's delay is what the read timeouts are tested against.
			select {
			case <-time.After(300 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
		io.WriteString(w, "ok")
	}))
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	srv.Config.Protocols = &protos
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			closed <- struct{}{}
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	origin := strings.TrimPrefix(srv.URL, "http://")
	short := &Peer{Address: origin, Protocol: ProtoHTTP2, Options: PeerOptions{ReadTimeout: 100 * time.Millisecond, IdleTimeout: time.Hour}}
	long := &Peer{Address: origin, Protocol: ProtoHTTP2, Options: PeerOptions{ReadTimeout: 5 * time.Second, IdleTimeout: 50 * time.Millisecond}}
	if short.key() != long.key() {
		t.Fatal("the peers differ in identity")
	}
	var next atomic.Int64
	svc, _ := newTestService[*testCtx](t, switchProxy{peers: []*Peer{short, long}, next: &next}, ServiceOptions{MaxRetries: -1})
	addr := startProxy(t, svc)
	cl := testClient(t)
	for i, want := range []int{504, 200} {
		resp, err := cl.Get("http://" + addr + "/slow")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("request %d: %d, want %d", i, resp.StatusCode, want)
		}
	}
	// The second peer's connection closes once idle for its idle timeout; the first
	// one's stays.
	waitFor(t, "the idle connection of the peer with a short idle timeout to close", closed)
}

// BenchmarkPoolNewPeers measures adding peer identities to the pool, 20,000 at a time:
// each costs O(1), not a copy of the table.
func BenchmarkPoolNewPeers(b *testing.B) {
	keys := make([]poolKey, 20000)
	for i := range keys {
		keys[i] = (&Peer{Address: fmt.Sprintf("127.0.0.1:%d", i+1)}).key()
	}
	var o PeerOptions
	b.ReportAllocs()
	for b.Loop() {
		p := newConnPool(1, len(keys), nil, h1.Limits{})
		now := time.Now()
		for _, k := range keys {
			p.host(k, now, &o)
		}
		p.watch.Release()
	}
}
