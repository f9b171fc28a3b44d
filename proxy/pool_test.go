package proxy

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
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
	for _, h := range *p.hosts.Load() {
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
