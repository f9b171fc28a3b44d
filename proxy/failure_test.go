package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/grpcinterop"
	"github.com/gotthard-proxy/gotthard/message"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
)

// recProxy is a test proxy whose phases are set per test and whose Logging phase
// records what it saw.
type recProxy struct {
	Phases[*testCtx]
	peer          func(s *Session) (*Peer, error)
	requestFilter func(s *Session) (Result, error)
	failToConnect func(e *Error) *Error
	errorWhile    func(e *Error) *Error
	failToProxy   func(s *Session, e *Error) int
	log           *logRecorder
}

// logRecord is what the Logging phase saw of one request.
type logRecord struct {
	err        error
	status     int
	bytesSent  int64
	grpcCode   int
	grpcOK     bool
	retries    int
	respWriten bool
}

// logRecorder collects the Logging phase's records.
type logRecorder struct {
	mu   sync.Mutex
	recs []logRecord
	ch   chan struct{}
}

func newLogRecorder() *logRecorder { return &logRecorder{ch: make(chan struct{}, 100)} }

// wait returns the record of the next request to end, waiting for it.
func (l *logRecorder) wait(t *testing.T, n int) logRecord {
	t.Helper()
	for {
		l.mu.Lock()
		if len(l.recs) > n {
			r := l.recs[n]
			l.mu.Unlock()
			return r
		}
		l.mu.Unlock()
		select {
		case <-l.ch:
		case <-t.Context().Done():
			t.Fatal("no Logging record")
		}
	}
}

func (recProxy) NewCtx() *testCtx { return &testCtx{} }

func (p *recProxy) UpstreamPeer(_ context.Context, s *Session, _ *testCtx) (*Peer, error) {
	return p.peer(s)
}

func (p *recProxy) RequestFilter(_ context.Context, s *Session, _ *testCtx) (Result, error) {
	if p.requestFilter != nil {
		return p.requestFilter(s)
	}
	return Continue, nil
}

func (p *recProxy) FailToConnect(_ context.Context, _ *Session, _ *testCtx, _ *Peer, e *Error) *Error {
	if p.failToConnect != nil {
		return p.failToConnect(e)
	}
	return e
}

func (p *recProxy) ErrorWhileProxy(_ context.Context, _ *Session, _ *testCtx, _ *Peer, e *Error, _ bool) *Error {
	if p.errorWhile != nil {
		return p.errorWhile(e)
	}
	return e
}

func (p *recProxy) FailToProxy(_ context.Context, s *Session, _ *testCtx, e *Error) int {
	if p.failToProxy != nil {
		return p.failToProxy(s, e)
	}
	return 0
}

func (p *recProxy) Logging(_ context.Context, s *Session, _ *testCtx, err error) {
	if p.log == nil {
		return
	}
	code, ok := s.GRPCStatus()
	p.log.mu.Lock()
	p.log.recs = append(p.log.recs, logRecord{err: err, status: s.Status(), bytesSent: s.BytesSent(),
		grpcCode: code, grpcOK: ok, retries: s.Retries(), respWriten: s.ResponseWritten()})
	p.log.mu.Unlock()
	p.log.ch <- struct{}{}
}

// ErrBodyTooLarge is a sentinel no phase can change: a phase that changes the error it
// gets changes that request's error only.
func TestBodyTooLargeNotShared(t *testing.T) {
	rec := newLogRecorder()
	var mutated atomic.Bool
	app := &recProxy{
		peer: func(*Session) (*Peer, error) { return testPeer("127.0.0.1:1"), nil },
		requestFilter: func(s *Session) (Result, error) {
			_, err := s.BufferRequestBody(4)
			return Continue, err
		},
		failToProxy: func(_ *Session, e *Error) int {
			if !mutated.Swap(true) {
				e.Status = 418 // this request's error only
				e.Retry = true
			}
			return 0
		},
		log: rec,
	}
	svc, _ := newTestService[*testCtx](t, app, ServiceOptions{})
	addr := startProxy(t, svc)
	for i, want := range []string{"418", "413"} {
		got := rawExchange(t, addr, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789")
		if !strings.HasPrefix(got, "HTTP/1.1 "+want+" ") {
			t.Fatalf("request %d: got %q", i, got)
		}
		r := rec.wait(t, i)
		if !errors.Is(r.err, ErrBodyTooLarge) {
			t.Fatalf("request %d: Logging got %v, want ErrBodyTooLarge", i, r.err)
		}
	}
	var e *Error
	if errors.As(ErrBodyTooLarge, &e) {
		t.Fatalf("ErrBodyTooLarge is a mutable *Error: %v", e)
	}
}

// stallOrigin runs an HTTP/1.1 origin that reads a request and then sends head (if any)
// and nothing more until the test ends.
func stallOrigin(t *testing.T, head string) string {
	return scriptedOrigin(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, head)
		io.Copy(io.Discard, c) // until the proxy or the test closes it
	})
}

// stallH2Origin runs an h2c origin whose handler sends head fields (if any) and then
// waits for the request to end.
func stallH2Origin(t *testing.T, sendHead bool) string {
	addr, _ := startH2OriginWith(t, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sendHead {
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
		}
		<-r.Context().Done()
	}))
	return addr
}

// A request that runs out of its peer's TotalTimeout fails with TotalTimeout (504 if
// nothing was sent yet), not ReadTimeout, over HTTP/1.1 and HTTP/2 peers.
func TestTotalTimeoutType(t *testing.T) {
	tests := []struct {
		name   string
		peer   func(t *testing.T) *Peer
		status int // 0: the response started
	}{
		{"h1 head", func(t *testing.T) *Peer { return testPeer(stallOrigin(t, "")) }, 504},
		{"h1 body", func(t *testing.T) *Peer {
			return testPeer(stallOrigin(t, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"))
		}, 0},
		{"h2 head", func(t *testing.T) *Peer {
			return &Peer{Address: stallH2Origin(t, false), Protocol: ProtoHTTP2}
		}, 504},
		{"h2 body", func(t *testing.T) *Peer {
			return &Peer{Address: stallH2Origin(t, true), Protocol: ProtoHTTP2}
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peer := tt.peer(t)
			peer.Options = PeerOptions{TotalTimeout: 150 * time.Millisecond, ReadTimeout: 30 * time.Second}
			rec := newLogRecorder()
			app := &recProxy{peer: func(*Session) (*Peer, error) { return peer, nil }, log: rec}
			svc, _ := newTestService[*testCtx](t, app, ServiceOptions{})
			addr := startProxy(t, svc)
			got := rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
			if tt.status != 0 && !strings.HasPrefix(got, "HTTP/1.1 504 ") {
				t.Fatalf("got %q", got)
			}
			r := rec.wait(t, 0)
			var e *Error
			if !errors.As(r.err, &e) || e.Type != TotalTimeout || e.Source != Upstream {
				t.Fatalf("Logging got %v, want an upstream total timeout", r.err)
			}
			if tt.status != 0 && ErrorStatus(e) != tt.status {
				t.Fatalf("ErrorStatus = %d, want %d", ErrorStatus(e), tt.status)
			}
		})
	}
}

// A peer that stops answering for its ReadTimeout fails the request with ReadTimeout
// (504 if nothing was sent yet), whether it stalls before the head or in the body, over
// HTTP/1.1 and HTTP/2 peers, and with a request body still streaming to an HTTP/2 peer
// (where the request used to hang: net/http misses a cancel while it waits for the
// peer's flow-control window).
func TestReadTimeoutType(t *testing.T) {
	tests := []struct {
		name   string
		peer   func(t *testing.T) *Peer
		post   bool // a streamed request body
		status int  // 0: the response started
	}{
		{"h1 head", func(t *testing.T) *Peer { return testPeer(stallOrigin(t, "")) }, false, 504},
		{"h1 body", func(t *testing.T) *Peer {
			return testPeer(stallOrigin(t, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"))
		}, false, 0},
		{"h2 head", func(t *testing.T) *Peer {
			return &Peer{Address: stallH2Origin(t, false), Protocol: ProtoHTTP2}
		}, false, 504},
		{"h2 body", func(t *testing.T) *Peer {
			return &Peer{Address: stallH2Origin(t, true), Protocol: ProtoHTTP2}
		}, false, 0},
		{"h2 body, request body streaming", func(t *testing.T) *Peer {
			return &Peer{Address: stallH2Origin(t, true), Protocol: ProtoHTTP2}
		}, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peer := tt.peer(t)
			peer.Options = PeerOptions{ReadTimeout: 150 * time.Millisecond}
			rec := newLogRecorder()
			app := &recProxy{peer: func(*Session) (*Peer, error) { return peer, nil }, log: rec}
			svc, _ := newTestService[*testCtx](t, app, ServiceOptions{MaxRetries: -1})
			addr := startProxy(t, svc)
			if tt.post {
				// A chunked body that does not end, more than the peer's flow-control
				// window: it still streams when the peer stalls, and its pieces stop
				// going up once the window is full.
				nc, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer nc.Close()
				go func() {
					io.WriteString(nc, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
					fmt.Fprintf(nc, "%x\r\n%s\r\n", 8<<20, bytes.Repeat([]byte("a"), 8<<20))
				}()
			} else {
				got := rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
				if tt.status != 0 && !strings.HasPrefix(got, "HTTP/1.1 504 ") {
					t.Fatalf("got %q", got)
				}
			}
			r := rec.wait(t, 0)
			var e *Error
			if !errors.As(r.err, &e) || e.Type != ReadTimeout || e.Source != Upstream {
				t.Fatalf("Logging got %v, want an upstream read timeout", r.err)
			}
			if tt.status != 0 && ErrorStatus(e) != tt.status {
				t.Fatalf("ErrorStatus = %d, want %d", ErrorStatus(e), tt.status)
			}
		})
	}
}

// A POST that carries an Idempotency-Key is resent after it reached a peer (when its body
// can be sent again); one without is not.
func TestIdempotencyKeyRetried(t *testing.T) {
	tests := []struct {
		name   string
		req    string
		buffer bool
		want   int32
	}{
		{"key", "POST / HTTP/1.1\r\nHost: a\r\nIdempotency-Key: \"k1\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", false, 3},
		{"key buffered body", "POST / HTTP/1.1\r\nHost: a\r\nIdempotency-Key: \"k1\"\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc", true, 3},
		{"key streamed body", "POST / HTTP/1.1\r\nHost: a\r\nIdempotency-Key: \"k1\"\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc", false, 1},
		{"no key", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc", true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen atomic.Int32
			origin := scriptedOrigin(t, func(c net.Conn) {
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				seen.Add(1) // and close without an answer
			})
			app := &recProxy{
				peer: func(*Session) (*Peer, error) { return testPeer(origin), nil },
				requestFilter: func(s *Session) (Result, error) {
					if tt.buffer {
						_, err := s.BufferRequestBody(1 << 10)
						return Continue, err
					}
					return Continue, nil
				},
				errorWhile: func(e *Error) *Error { e.Retry = true; return e },
			}
			svc, _ := newTestService[*testCtx](t, app, ServiceOptions{MaxRetries: 2})
			addr := startProxy(t, svc)
			if got := rawExchange(t, addr, tt.req); !strings.HasPrefix(got, "HTTP/1.1 502 ") {
				t.Fatalf("got %q", got)
			}
			if n := seen.Load(); n != tt.want {
				t.Fatalf("origin saw %d requests, want %d", n, tt.want)
			}
		})
	}
}

// Requests that a Shutdown cuts at its timeout are not retried, nor blamed on the peer:
// they end with ErrShutdown, and Logging sees what the client got (nothing).
func TestShutdownCutsWithoutRetry(t *testing.T) {
	for _, proto := range []string{"h1", "h2c"} {
		t.Run(proto, func(t *testing.T) {
			arrived := make(chan struct{}, 10)
			origin := scriptedOrigin(t, func(c net.Conn) {
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				arrived <- struct{}{}
				io.Copy(io.Discard, c) // no answer
			})
			rec := newLogRecorder()
			var peers, phases atomic.Int32
			app := &recProxy{
				peer: func(*Session) (*Peer, error) { peers.Add(1); return testPeer(origin), nil },
				// The failover pattern: a failure marks the peer and asks for a retry.
				failToConnect: func(e *Error) *Error { phases.Add(1); return e },
				errorWhile:    func(e *Error) *Error { phases.Add(1); e.Retry = true; return e },
				log:           rec,
			}
			svc, logs := newTestService[*testCtx](t, app, ServiceOptions{})
			addr := startProxy(t, svc)
			got := make(chan string, 1)
			go func() {
				if proto == "h1" {
					got <- rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
					return
				}
				var p http.Protocols
				p.SetUnencryptedHTTP2(true)
				tr := &http.Transport{Protocols: &p}
				defer tr.CloseIdleConnections()
				resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("http://" + addr + "/")
				if err != nil {
					got <- ""
					return
				}
				resp.Body.Close()
				got <- resp.Status
			}()
			<-arrived
			ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
			defer cancel()
			if err := svc.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Shutdown: %v", err)
			}
			if g := <-got; g != "" {
				t.Fatalf("client got %q, want nothing", g)
			}
			r := rec.wait(t, 0)
			var e *Error
			if !errors.Is(r.err, ErrShutdown) || !errors.As(r.err, &e) || e.Source != Internal {
				t.Fatalf("Logging got %v, want an internal ErrShutdown", r.err)
			}
			if r.status != 0 || r.bytesSent != 0 || r.retries != 0 {
				t.Fatalf("Logging saw status %d, %d bytes sent, %d retries; want none", r.status, r.bytesSent, r.retries)
			}
			if n, m := peers.Load(), phases.Load(); n != 1 || m != 0 {
				t.Fatalf("UpstreamPeer ran %d times, failure phases %d; want 1 and 0\n%s", n, m, logs)
			}
		})
	}
}

func TestPeerValidate(t *testing.T) {
	tests := []struct {
		name string
		peer Peer
		want string // in the error; "" for a valid peer
	}{
		{"tcp", Peer{Address: "127.0.0.1:80"}, ""},
		{"tcp ipv6", Peer{Network: "tcp", Address: "[::1]:8080"}, ""},
		{"tcp name", Peer{Address: "origin.example:443", TLS: &PeerTLS{}}, ""},
		{"unix", Peer{Network: "unix", Address: "/run/app.sock"}, ""},
		{"negative timeouts", Peer{Address: "a:1", Options: PeerOptions{ReadTimeout: -1, TotalTimeout: -1}}, ""},
		{"no port", Peer{Address: "127.0.0.1"}, `Address "127.0.0.1" has no port`},
		{"url", Peer{Address: "http://host:80"}, `Address "http://host:80" is not host:port`},
		{"no host", Peer{Address: ":80"}, `Address ":80" has no host`},
		{"bad port", Peer{Address: "a:http"}, `Address "a:http" has no valid port`},
		{"port 0", Peer{Address: "a:0"}, `has no valid port`},
		{"port too big", Peer{Address: "a:65536"}, `has no valid port`},
		{"network", Peer{Network: "udp", Address: "a:1"}, `Network "udp" is not tcp or unix`},
		{"unix relative", Peer{Network: "unix", Address: "app.sock"}, `Address "app.sock" is not an absolute socket path`},
		{"protocol", Peer{Address: "a:1", Protocol: 9}, "Protocol 9 is unknown"},
		{"h2 if offered without TLS", Peer{Address: "a:1", Protocol: ProtoHTTP2IfOffered}, "ProtoHTTP2IfOffered needs TLS"},
		{"alpn", Peer{Address: "a:1", TLS: &PeerTLS{ALPN: 7}}, "TLS.ALPN 7 is unknown"},
		{"min version", Peer{Address: "a:1", TLS: &PeerTLS{MinVersion: 0x0301}}, "TLS.MinVersion 0x0301 is not TLS 1.2 or 1.3"},
		{"server name with port", Peer{Address: "a:1", TLS: &PeerTLS{ServerName: "a:443"}}, `TLS.ServerName "a:443" is not a host name`},
		{"verify name", Peer{Address: "a:1", TLS: &PeerTLS{VerifyName: "a b"}}, `TLS.VerifyName "a b" is not a host name`},
		{"skip verify with roots", Peer{Address: "a:1", TLS: &PeerTLS{InsecureSkipVerifyDangerous: true, RootCAs: x509.NewCertPool()}}, "TLS.RootCAs is set but InsecureSkipVerifyDangerous"},
		{"unix TLS without name", Peer{Network: "unix", Address: "/s", TLS: &PeerTLS{}}, "TLS.ServerName (or VerifyName) is needed"},
		{"unix TLS with name", Peer{Network: "unix", Address: "/s", TLS: &PeerTLS{ServerName: "app"}}, ""},
		{"IPv6 verify name", Peer{Address: "a:1", TLS: &PeerTLS{VerifyName: "fe80::1%eth0"}}, ""},
		{"bad IPv6 verify name", Peer{Address: "a:1", TLS: &PeerTLS{VerifyName: "fe80::g"}}, "is not a host name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.peer.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate: %v, want %q", err, tt.want)
			}
			if n := strings.Count(err.Error(), "proxy:"); n != 1 {
				t.Fatalf("Validate: %q has %d prefixes", err, n)
			}
		})
	}
}

// A peer that fails Validate ends the request at once with 500: no connection is tried,
// nothing is retried, and the failure is logged once.
func TestInvalidPeerFailsAtOnce(t *testing.T) {
	for _, addr := range []string{"127.0.0.1", "http://127.0.0.1:80"} {
		t.Run(addr, func(t *testing.T) {
			rec := newLogRecorder()
			var peers, phases atomic.Int32
			app := &recProxy{
				peer:          func(*Session) (*Peer, error) { peers.Add(1); return &Peer{Address: addr}, nil },
				failToConnect: func(e *Error) *Error { phases.Add(1); return e },
				errorWhile:    func(e *Error) *Error { phases.Add(1); return e },
				log:           rec,
			}
			svc, logs := newTestService[*testCtx](t, app, ServiceOptions{})
			proxyAddr := startProxy(t, svc)
			got := rawExchange(t, proxyAddr, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
			if !strings.HasPrefix(got, "HTTP/1.1 500 ") {
				t.Fatalf("got %q", got)
			}
			r := rec.wait(t, 0)
			var e *Error
			if !errors.As(r.err, &e) || e.Type != InternalError || e.Source != Internal || !strings.Contains(e.Error(), "invalid peer: Address") {
				t.Fatalf("Logging got %v", r.err)
			}
			if n, m := peers.Load(), phases.Load(); n != 1 || m != 0 {
				t.Fatalf("UpstreamPeer ran %d times, failure phases %d; want 1 and 0", n, m)
			}
			if n := strings.Count(logs.String(), "request failed"); n != 1 {
				t.Fatalf("%d failure logs:\n%s", n, logs)
			}
		})
	}
}

// A connection's requests skip Validate for the peer its last request used, but not
// once that peer has changed: a peer made invalid between two requests on one
// connection fails the second.
func TestInvalidPeerAfterValidOne(t *testing.T) {
	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	peer := testPeer(origin)
	var n atomic.Int32
	app := &recProxy{peer: func(*Session) (*Peer, error) {
		switch n.Add(1) {
		case 3:
			peer.Address = strings.Split(origin, ":")[0] // no port
		case 4:
			peer.Address = origin
		}
		return peer, nil
	}}
	svc, _ := newTestService[*testCtx](t, app, ServiceOptions{})
	proxyAddr := startProxy(t, svc)
	nc, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	br := bufio.NewReader(nc)
	for i, want := range []int{200, 200, 500, 200} {
		if _, err := io.WriteString(nc, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("request %d: status %d, want %d", i+1, resp.StatusCode, want)
		}
	}
}

// Retrying a peer that refused the connection waits 10ms, then 20ms, then 40ms; a retry
// on another peer does not wait.
func TestConnectRetryBackoff(t *testing.T) {
	dead1, dead2 := deadAddr(t), deadAddr(t)
	tests := []struct {
		name  string
		peers []*Peer
	}{
		{"same peer", []*Peer{testPeer(dead1)}},
		{"same address", []*Peer{testPeer(dead1), testPeer(dead1)}},
		{"other peer", []*Peer{testPeer(dead1), testPeer(dead2)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				mu    sync.Mutex
				times []time.Time
			)
			app := &recProxy{peer: func(*Session) (*Peer, error) {
				mu.Lock()
				defer mu.Unlock()
				times = append(times, time.Now())
				return tt.peers[(len(times)-1)%len(tt.peers)], nil
			}}
			svc, _ := newTestService[*testCtx](t, app, ServiceOptions{MaxRetries: 3})
			addr := startProxy(t, svc)
			if got := rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 502 ") {
				t.Fatalf("got %q", got)
			}
			end := time.Now()
			mu.Lock()
			defer mu.Unlock()
			if len(times) != 4 {
				t.Fatalf("%d attempts, want 4", len(times))
			}
			// Each wait comes after UpstreamPeer chose the peer, before the attempt: it
			// shows in the time from that UpstreamPeer to the next (or to the end).
			times = append(times, end)
			waited := 0
			for i, want := range []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond} {
				if gap := times[i+2].Sub(times[i+1]); gap >= want {
					waited++
				} else if tt.name != "other peer" {
					t.Fatalf("retry %d took %v, want at least %v of backoff", i+1, gap, want)
				}
			}
			if tt.name == "other peer" && waited == 3 {
				t.Fatal("retries on another peer waited")
			}
		})
	}
}

// Negative timeouts in PeerOptions mean the default, as in ServiceOptions.
func TestNegativePeerTimeoutsMeanDefault(t *testing.T) {
	origin, _ := echoOrigin(t)
	peer := testPeer(origin)
	peer.Options = PeerOptions{ConnectTimeout: -1, ReadTimeout: -time.Second, WriteTimeout: -1, TotalTimeout: -1}
	svc, logs := newTestService[*testCtx](t, fixedProxy{peer: peer}, ServiceOptions{})
	addr := startProxy(t, svc)
	got := rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	if !strings.HasPrefix(got, "HTTP/1.1 200 ") {
		t.Fatalf("got %q\n%s", got, logs)
	}
}

// GRPCStatus reports the grpc-status the client got: the proxy's own answer to a call
// that failed, or the peer's, from its trailers or its trailers-only head.
func TestGRPCStatusLogged(t *testing.T) {
	origin := grpcinterop.StartServer(t)
	dead := deadAddr(t)
	tests := []struct {
		name   string
		peer   string
		call   func(ctx context.Context, c testgrpc.TestServiceClient) error
		code   codes.Code
		status int
	}{
		{"proxy's answer", dead, func(ctx context.Context, c testgrpc.TestServiceClient) error {
			_, err := c.EmptyCall(ctx, &testgrpc.Empty{})
			return err
		}, codes.Unavailable, 200},
		{"peer's trailers", origin, func(ctx context.Context, c testgrpc.TestServiceClient) error {
			_, err := c.EmptyCall(ctx, &testgrpc.Empty{})
			return err
		}, codes.OK, 200},
		{"peer's trailers-only", origin, func(ctx context.Context, c testgrpc.TestServiceClient) error {
			_, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseStatus: &testgrpc.EchoStatus{Code: int32(codes.NotFound), Message: "nope"}})
			return err
		}, codes.NotFound, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newLogRecorder()
			app := &recProxy{peer: func(*Session) (*Peer, error) { return &Peer{Address: tt.peer, Protocol: ProtoHTTP2}, nil }, log: rec}
			svc, _ := newTestService[*testCtx](t, app, ServiceOptions{MaxRetries: -1})
			conn := grpcClient(t, startProxy(t, svc))
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if err := tt.call(ctx, testgrpc.NewTestServiceClient(conn)); status.Code(err) != tt.code {
				t.Fatalf("call: %v, want %v", err, tt.code)
			}
			r := rec.wait(t, 0)
			if !r.grpcOK || r.grpcCode != int(tt.code) || r.status != tt.status {
				t.Fatalf("Logging saw grpc-status %d (%v), status %d; want %d, %d", r.grpcCode, r.grpcOK, r.status, tt.code, tt.status)
			}
		})
	}
	t.Run("not gRPC", func(t *testing.T) {
		rec := newLogRecorder()
		app := &recProxy{peer: func(*Session) (*Peer, error) { return testPeer(dead), nil }, log: rec}
		svc, _ := newTestService[*testCtx](t, app, ServiceOptions{MaxRetries: -1})
		rawExchange(t, startProxy(t, svc), "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		if r := rec.wait(t, 0); r.grpcOK {
			t.Fatalf("GRPCStatus = %d, true for a request that is not gRPC", r.grpcCode)
		}
	})
}

// A response relayed from a peer that sent no Date gets one, over HTTP/1.1 and HTTP/2
// peers; a peer's own Date is kept.
func TestRelayedResponsesDated(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/dated" {
			w.Header().Set("Date", "Sun, 06 Nov 1994 08:49:37 GMT")
		} else {
			w.Header()["Date"] = nil // net/http adds none
		}
		io.WriteString(w, "hi")
	})
	_, h1origin := startOrigin(t, h)
	h2origin, _ := startH2OriginWith(t, false, h)
	for _, tt := range []struct {
		name string
		peer *Peer
	}{
		{"h1 peer", testPeer(h1origin)},
		{"h2c peer", &Peer{Address: h2origin, Protocol: ProtoHTTP2}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			svc, _ := newTestService[*testCtx](t, fixedProxy{peer: tt.peer}, ServiceOptions{})
			addr := startProxy(t, svc)
			for _, target := range []string{"/", "/dated"} {
				before := time.Now().Add(-2 * time.Second)
				resp, err := testClient(t).Get("http://" + addr + target)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				dates := resp.Header.Values("Date")
				if len(dates) != 1 {
					t.Fatalf("%s: Date fields %q, want one", target, dates)
				}
				d, err := http.ParseTime(dates[0])
				switch {
				case err != nil:
					t.Fatalf("%s: Date %q: %v", target, dates[0], err)
				case target == "/dated" && dates[0] != "Sun, 06 Nov 1994 08:49:37 GMT":
					t.Fatalf("the peer's Date became %q", dates[0])
				case target == "/" && (d.Before(before) || d.After(time.Now().Add(2*time.Second))):
					t.Fatalf("Date %v is not now", d)
				}
			}
		})
	}
}

// The responses the proxy writes itself (error pages, Respond, WriteResponse) carry a
// Date; a WriteResponse header that has one keeps it, and the caller's header is not
// changed.
func TestOwnResponsesDated(t *testing.T) {
	shared := &message.ResponseHeader{Status: 200}
	shared.Header.Add("X-A", "1")
	dated := &message.ResponseHeader{Status: 200}
	dated.Header.Add("Date", "Sun, 06 Nov 1994 08:49:37 GMT")
	app := &recProxy{
		peer: func(*Session) (*Peer, error) { return testPeer("127.0.0.1:1"), nil },
		requestFilter: func(s *Session) (Result, error) {
			switch s.Request().Target {
			case "/respond":
				return Handled, s.Respond(200, "hi")
			case "/write":
				return Handled, s.WriteResponse(shared, []byte("hi"))
			case "/dated":
				return Handled, s.WriteResponse(dated, nil)
			}
			return Continue, nil
		},
	}
	svc, _ := newTestService[*testCtx](t, app, ServiceOptions{MaxRetries: -1})
	addr := startProxy(t, svc)
	h2 := &http.Transport{Protocols: new(http.Protocols)}
	h2.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(h2.CloseIdleConnections)
	for _, proto := range []string{"h1", "h2c"} {
		cl := testClient(t)
		if proto == "h2c" {
			cl = &http.Client{Transport: h2, Timeout: 10 * time.Second}
		}
		for _, target := range []string{"/error", "/respond", "/write", "/dated"} {
			before := time.Now().Add(-2 * time.Second)
			resp, err := cl.Get("http://" + addr + target)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			dates := resp.Header.Values("Date")
			if len(dates) != 1 {
				t.Fatalf("%s %s: Date fields %q, want one", proto, target, dates)
			}
			d, err := http.ParseTime(dates[0])
			if err != nil {
				t.Fatalf("%s %s: Date %q: %v", proto, target, dates[0], err)
			}
			if target == "/dated" {
				if dates[0] != "Sun, 06 Nov 1994 08:49:37 GMT" {
					t.Fatalf("%s: the phase's Date was replaced by %q", proto, dates[0])
				}
			} else if d.Before(before) || d.After(time.Now().Add(2*time.Second)) {
				t.Fatalf("%s %s: Date %v is not now", proto, target, d)
			}
		}
	}
	if shared.Header.Has("Date") || shared.Header.Len() != 1 {
		t.Fatalf("the caller's header was changed: %v", shared.Header.String())
	}
}

// An HTTP/2 client that leaves while its request waits to retry a refused peer ends the
// wait: the request ends then (499), not after the backoff.
func TestConnectBackoffEndsWhenClientLeaves(t *testing.T) {
	dead := deadAddr(t)
	rec := newLogRecorder()
	reqCtx, cancelReq := context.WithCancel(t.Context())
	defer cancelReq()
	var (
		calls     atomic.Int32
		cancelled atomic.Int64
	)
	app := &recProxy{
		peer: func(*Session) (*Peer, error) {
			// The ninth attempt waits a whole second first (after 10ms, 20ms, ...
			// 640ms): the client leaves as it starts.
			if calls.Add(1) == 9 {
				cancelled.Store(time.Now().UnixNano())
				cancelReq()
			}
			return testPeer(dead), nil
		},
		log: rec,
	}
	svc, _ := newTestService[*testCtx](t, app, ServiceOptions{MaxRetries: 10})
	addr := startProxy(t, svc)
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(reqCtx, "GET", "http://"+addr+"/", nil)
	if resp, err := tr.RoundTrip(req); err == nil {
		resp.Body.Close()
		t.Fatalf("got %s, want the request cancelled", resp.Status)
	}
	r := rec.wait(t, 0)
	if took := time.Since(time.Unix(0, cancelled.Load())); took > 800*time.Millisecond {
		t.Fatalf("the request ended %v after the client left", took)
	}
	var e *Error
	if !errors.As(r.err, &e) || ErrorStatus(e) != StatusClientClosedRequest || r.status != StatusClientClosedRequest {
		t.Fatalf("Logging got %v, status %d; want the client's leaving", r.err, r.status)
	}
	if n := calls.Load(); n != 9 {
		t.Fatalf("UpstreamPeer ran %d times, want 9", n)
	}
}

// Validate costs no allocation for a valid peer: it runs on every attempt.
func TestPeerValidateAllocs(t *testing.T) {
	peers := []*Peer{
		testPeer("127.0.0.1:8080"),
		{Address: "[::1]:443", TLS: &PeerTLS{ServerName: "api.example", VerifyName: "::1"}},
		{Network: "unix", Address: "/run/app.sock", TLS: &PeerTLS{ServerName: "app"}},
	}
	for _, p := range peers {
		if n := testing.AllocsPerRun(100, func() {
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Fatalf("Validate of %s: %v allocations", p.Address, n)
		}
	}
}

// A graceful Shutdown lets an HTTP/2 stream in flight finish, then returns.
func TestShutdownDrainsHTTP2(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
		io.WriteString(w, "done")
	}))
	svc, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{})
	addr := startProxy(t, svc)
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	got := make(chan string, 1)
	go func() {
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("http://" + addr + "/")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-started
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- svc.Shutdown(ctx)
	}()
	for !svc.closing.Load() {
		runtimeGosched()
	}
	close(release)
	if g := <-got; g != "done" {
		t.Fatalf("in-flight stream got %q", g)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}
