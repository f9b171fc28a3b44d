package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	gtls "github.com/gotthard-proxy/gotthard/tls"
)

// trailerOrigin echoes the request body's digest and length, the request trailers it
// got, and sends a body of ?size= bytes with a trailer.
func trailerOrigin(t testing.TB) string {
	_, addr := startOrigin(t, http.HandlerFunc(trailerHandler))
	return addr
}

func h2cClient(t testing.TB) *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

func TestHTTP2Downstream(t *testing.T) {
	origin := trailerOrigin(t)
	svc, logs := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{})
	certPEM, keyPEM, err := gtls.SelfSigned([]string{"localhost", "127.0.0.1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := gtls.New(gtls.Options{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil },
		ALPN: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc.AddTCP(plain.Addr().String())
	svc.AddTLS(tlsLn.Addr().String(), cfg)
	done := make(chan error, 1)
	go func() { done <- svc.Serve([]net.Listener{plain, tlsLn}) }()
	t.Cleanup(func() { svc.Close(); <-done })

	var h2only http.Protocols
	h2only.SetHTTP2(true)
	tlsTr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, Protocols: &h2only}
	t.Cleanup(tlsTr.CloseIdleConnections)
	clients := map[string]struct {
		c    *http.Client
		base string
	}{
		"h2c": {h2cClient(t), "http://" + plain.Addr().String()},
		"h2":  {&http.Client{Transport: tlsTr, Timeout: 60 * time.Second}, "https://" + tlsLn.Addr().String()},
	}
	for name, cl := range clients {
		for _, size := range []int{0, 1, 64 << 10, 16 << 20} {
			t.Run(fmt.Sprintf("%s/%d", name, size), func(t *testing.T) {
				body := bytes.Repeat([]byte("abc"), size/3+1)[:size]
				req, _ := http.NewRequest("POST", cl.base+fmt.Sprintf("/x?size=%d", size), io.NopCloser(bytes.NewReader(body)))
				req.Trailer = http.Header{"X-Client-Trailer": nil}
				req.ContentLength = -1 // streamed, so the trailer can follow
				resp, err := cl.c.Do(req)
				if err != nil {
					t.Fatalf("%v\n%s", err, logs.String())
				}
				defer resp.Body.Close()
				got, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
					t.Fatalf("proto %s status %d", resp.Proto, resp.StatusCode)
				}
				if resp.Header.Get("X-Got-Len") != fmt.Sprint(size) || resp.Header.Get("X-Got-Sha") != fmt.Sprintf("%x", sha256.Sum256(body)) {
					t.Fatalf("origin got len %s", resp.Header.Get("X-Got-Len"))
				}
				if len(got) != size || resp.Trailer.Get("X-Digest") != fmt.Sprintf("%x", sha256.Sum256(got)) {
					t.Fatalf("response: %d bytes, trailer %q", len(got), resp.Trailer.Get("X-Digest"))
				}
				if resp.Header.Get("X-Got-Proto") != "HTTP/1.1" {
					t.Fatalf("upstream proto %s", resp.Header.Get("X-Got-Proto"))
				}
			})
		}
	}
}

// loggingProxy proxies to one peer and reports what each request's Logging phase saw.
type loggingProxy struct {
	Phases[*testCtx]
	peer   *Peer
	logged chan loggedRequest
}

type loggedRequest struct {
	status int
	err    error
}

// wantClientGone checks what Logging saw of a request whose client went away while the
// peer was asked: a downstream ConnectionClosed with status 499, logged once at debug
// level and never as a warning.
func wantClientGone(t *testing.T, got loggedRequest, logs fmt.Stringer) {
	t.Helper()
	var e *Error
	if !errors.As(got.err, &e) || e.Source != Downstream || e.Type != ConnectionClosed {
		t.Fatalf("Logging got %v; want a downstream connection closed", got.err)
	}
	if got.status != StatusClientClosedRequest || ErrorStatus(e) != StatusClientClosedRequest {
		t.Fatalf("status %d, ErrorStatus %d; want %d", got.status, ErrorStatus(e), StatusClientClosedRequest)
	}
	if out := logs.String(); strings.Contains(out, "level=WARN") || !strings.Contains(out, "level=DEBUG msg=\"request failed\"") {
		t.Fatalf("want one debug line for the request and no warning; log:\n%s", out)
	}
}

func (loggingProxy) NewCtx() *testCtx { return &testCtx{} }

func (p loggingProxy) UpstreamPeer(context.Context, *Session, *testCtx) (*Peer, error) {
	return p.peer, nil
}

func (p loggingProxy) Logging(_ context.Context, s *Session, _ *testCtx, err error) {
	p.logged <- loggedRequest{s.Status(), err}
}

// TestClientGoneIsTheClients checks how a request ends whose HTTP/2 client gives up while
// the peer is still being asked, by resetting its stream or by closing its connection:
// the peer's side is cut at once, and the request ends as the client's doing (a
// downstream ConnectionClosed, logged with 499 at debug level), not as a peer that
// timed out (504 and a warning, as the cut read used to be taken for).
func TestClientGoneIsTheClients(t *testing.T) {
	for _, how := range []string{"reset", "close"} {
		t.Run(how, func(t *testing.T) {
			asked := make(chan struct{}, 1)
			cut := make(chan struct{})
			origin := scriptedOrigin(t, func(c net.Conn) {
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				asked <- struct{}{}
				io.Copy(io.Discard, c) // no answer; returns when the proxy cuts the connection
				close(cut)
			})
			peer := testPeer(origin)
			peer.Options.ReadTimeout = time.Minute
			app := loggingProxy{peer: peer, logged: make(chan loggedRequest, 1)}
			svc, logs := newTestService[*testCtx](t, app, ServiceOptions{})
			addr := startProxy(t, svc)

			a := dialAttacker(t, addr)
			if err := a.write(func(fr *http2.Framer) error {
				return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: a.block("/wait"),
					EndStream: true, EndHeaders: true})
			}); err != nil {
				t.Fatal(err)
			}
			select {
			case <-asked:
			case <-time.After(10 * time.Second):
				t.Fatal("the origin got no request")
			}
			if how == "reset" {
				a.write(func(fr *http2.Framer) error { return fr.WriteRSTStream(1, http2.ErrCodeCancel) })
			} else {
				a.nc.Close()
			}
			select {
			case <-cut:
			case <-time.After(10 * time.Second):
				t.Fatal("the peer's side was not cut")
			}
			var got loggedRequest
			select {
			case got = <-app.logged:
			case <-time.After(10 * time.Second):
				t.Fatal("Logging did not run")
			}
			wantClientGone(t, got, logs)
		})
	}
}
