package h2

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// testServer serves h2 (h2c by prior knowledge, or TLS with ALPN h2) on loopback.
type testServer struct {
	t    testing.TB
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	conn map[*Conn]struct{}
	errs []error
}

func startServer(t testing.TB, opts Options, h Handler, tlsConf *tls.Config) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
	}
	s := &testServer{t: t, ln: ln, conn: make(map[*Conn]struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				if tc, ok := nc.(*tls.Conn); ok {
					if err := tc.Handshake(); err != nil {
						_ = nc.Close()
						return
					}
				}
				c := NewConn(nc, nil, opts, h)
				s.mu.Lock()
				s.conn[c] = struct{}{}
				s.mu.Unlock()
				err := c.Serve()
				s.mu.Lock()
				delete(s.conn, c)
				if err != nil {
					s.errs = append(s.errs, err)
				}
				s.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *testServer) addr() string { return s.ln.Addr().String() }

func (s *testServer) close() {
	_ = s.ln.Close()
	s.mu.Lock()
	for c := range s.conn {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// connErrors returns the errors Serve returned so far.
func (s *testServer) connErrors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.errs...)
}

// echoHandler answers with the request body (or a fixed body when there is none) and
// echoes the request trailers.
func echoHandler(st *Stream) {
	var body []byte
	for {
		b, err := st.ReadBody()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return
		}
		body = append(body, b...)
	}
	if len(body) == 0 {
		body = defaultBody
	}
	if st.WriteHeaders(200, []Field{{Name: "content-type", Value: "text/plain"}}, false) != nil {
		return
	}
	tr := st.Trailers()
	if st.WriteData(body, len(tr) == 0) != nil {
		return
	}
	if len(tr) > 0 {
		_ = st.WriteTrailers(tr)
	}
}

var defaultBody = []byte("Gotthard answers.\n")

// waitFor polls cond until it holds or d passes; it fails the test after d. It waits
// on an observable state, with a short back-off, never on a fixed sleep.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
