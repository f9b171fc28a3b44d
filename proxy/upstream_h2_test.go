package proxy

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// trailerHandler is trailerOrigin's handler: it reports what it received and answers
// ?size= bytes with a digest trailer. It streams both ways, holding no body whole.
func trailerHandler(w http.ResponseWriter, r *http.Request) {
	in := sha256.New()
	n, _ := io.Copy(in, r.Body)
	w.Header().Set("Trailer", "X-Digest")
	w.Header().Set("X-Got-Len", fmt.Sprint(n))
	w.Header().Set("X-Got-Sha", fmt.Sprintf("%x", in.Sum(nil)))
	w.Header().Set("X-Got-Trailer", r.Trailer.Get("X-Client-Trailer"))
	w.Header().Set("X-Got-Proto", r.Proto)
	w.Header().Set("X-Got-Host", r.Host)
	w.Header().Set("X-Got-Te", r.Header.Get("Te"))
	var size int64
	fmt.Sscan(r.URL.Query().Get("size"), &size)
	out := sha256.New()
	io.Copy(io.MultiWriter(w, out), pattern(size))
	w.Header().Set("X-Digest", fmt.Sprintf("%x", out.Sum(nil)))
}

// pattern returns n bytes of a repeating pattern, generated as they are read.
func pattern(n int64) io.Reader {
	return io.LimitReader(&repeatReader{}, n)
}

type repeatReader struct{ off int }

func (r *repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = "h2!"[(r.off+i)%3]
	}
	r.off += len(p)
	return len(p), nil
}

// patternSum is the SHA-256 of pattern(n), in hex.
func patternSum(n int64) string {
	h := sha256.New()
	io.Copy(h, pattern(n))
	return fmt.Sprintf("%x", h.Sum(nil))
}

// startH2Origin runs an HTTP/2 origin: h2c by prior knowledge, or over TLS.
func startH2Origin(t *testing.T, useTLS bool) (string, *x509.CertPool) {
	return startH2OriginWith(t, useTLS, http.HandlerFunc(trailerHandler))
}

func TestHTTP2Upstream(t *testing.T) {
	h2c, _ := startH2Origin(t, false)
	h2tls, roots := startH2Origin(t, true)
	h1 := trailerOrigin(t)
	peers := map[string]*Peer{
		"h2c": {Address: h2c, Protocol: ProtoHTTP2},
		"h2":  {Address: h2tls, Protocol: ProtoHTTP2, TLS: &PeerTLS{ServerName: "example.com", RootCAs: roots}},
		"h2-if-offered": {Address: h2tls, Protocol: ProtoHTTP2IfOffered,
			TLS: &PeerTLS{ServerName: "example.com", RootCAs: roots}},
		"h1": {Address: h1},
	}
	for pname, peer := range peers {
		svc, logs := newTestService[*testCtx](t, fixedProxy{peer: peer}, ServiceOptions{})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- svc.Serve([]net.Listener{ln}) }()
		t.Cleanup(func() { svc.Close(); <-done })
		base := "http://" + ln.Addr().String()
		h1c := testClient(t)
		clients := map[string]*http.Client{"h1": h1c, "h2c": h2cClient(t)}
		for cname, cl := range clients {
			for _, size := range []int{0, 1, 64 << 10, 16 << 20} {
				t.Run(fmt.Sprintf("%s→%s/%d", cname, pname, size), func(t *testing.T) {
					req, _ := http.NewRequest("POST", base+fmt.Sprintf("/x?size=%d", size), io.NopCloser(pattern(int64(size))))
					req.Trailer = http.Header{"X-Client-Trailer": nil}
					req.ContentLength = -1
					req.Header.Set("Te", "trailers")
					hw := watchHeap()
					resp, err := cl.Do(req)
					if err != nil {
						t.Fatalf("%v\n%s", err, logs.String())
					}
					defer resp.Body.Close()
					sum := sha256.New()
					got, err := io.Copy(sum, resp.Body)
					if err != nil {
						t.Fatal(err)
					}
					// Both bodies stream: the process's heap (client, proxy and origin
					// together) does not grow with their size. A body held whole would
					// grow it by 16 MiB or more; the garbage that net/http's client and
					// origin in this process make between two collections comes to
					// several MiB under the race detector, so the bound is 12 MiB.
					if grew := hw.growth(); size == 16<<20 && grew > 12<<20 {
						t.Errorf("heap grew by %d MiB for a 16 MiB body each way", grew>>20)
					}
					if resp.StatusCode != 200 {
						t.Fatalf("status %d\n%s", resp.StatusCode, logs.String())
					}
					if resp.Header.Get("X-Got-Len") != fmt.Sprint(size) || resp.Header.Get("X-Got-Sha") != patternSum(int64(size)) {
						t.Fatalf("origin got len %s", resp.Header.Get("X-Got-Len"))
					}
					if got != int64(size) || resp.Trailer.Get("X-Digest") != fmt.Sprintf("%x", sum.Sum(nil)) {
						t.Fatalf("response: %d bytes, trailer %q", got, resp.Trailer.Get("X-Digest"))
					}
					wantProto := "HTTP/2.0"
					if pname == "h1" {
						wantProto = "HTTP/1.1"
					}
					if p := resp.Header.Get("X-Got-Proto"); p != wantProto {
						t.Fatalf("origin spoke %s, want %s", p, wantProto)
					}
				})
			}
		}
		if pname != "h1" {
			st := svc.PoolStats()
			if st.New > 2 || st.Reused < 4 {
				t.Errorf("%s: pool %+v: HTTP/2 connections should be shared", pname, st)
			}
		}
	}
}

// A request trailer and "te: trailers" cross from an HTTP/2 client to an HTTP/2 peer
// (gRPC needs both), and an unreachable HTTP/2 peer is a 502 like any other.
func TestHTTP2UpstreamErrors(t *testing.T) {
	dead := deadAddr(t)
	svc, _ := newTestService[*testCtx](t, fixedProxy{peer: &Peer{Address: dead, Protocol: ProtoHTTP2}}, ServiceOptions{MaxRetries: 1})
	addr := startProxy(t, svc)
	resp, err := testClient(t).Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 502 {
		t.Fatalf("status %d", resp.StatusCode)
	}

	// A peer that never answers: 504 after the read timeout.
	silent := scriptedOrigin(t, func(c net.Conn) { io.Copy(io.Discard, c) }) // accepts, never answers
	slow := &Peer{Address: silent, Protocol: ProtoHTTP2,
		Options: PeerOptions{ReadTimeout: 200 * time.Millisecond, ConnectTimeout: 300 * time.Millisecond}}
	svc2, _ := newTestService[*testCtx](t, fixedProxy{peer: slow}, ServiceOptions{MaxRetries: -1})
	addr2 := startProxy(t, svc2)
	resp, err = testClient(t).Get("http://" + addr2 + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 502 && resp.StatusCode != 504 {
		t.Fatalf("silent peer: status %d", resp.StatusCode)
	}
}

// A request that an HTTP/2 peer's GOAWAY left unprocessed is sent again on a new
// connection, even a POST: the peer never acted on it. The first connection answers
// the first request with GOAWAY (last stream 0) and closes; the next one answers 200.
func TestHTTP2UpstreamGOAWAYRetried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var served atomic.Int32
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for n := 0; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			serveH2Raw(c, n == 0, func([]byte) []byte { served.Add(1); return []byte("served") })
		}
	}()
	svc, logs := newTestService[*testCtx](t, fixedProxy{peer: &Peer{Address: ln.Addr().String(), Protocol: ProtoHTTP2}}, ServiceOptions{})
	addr := startProxy(t, svc)
	got := rawExchange(t, addr, "POST /once HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	if !strings.HasPrefix(got, "HTTP/1.1 200 ") || !strings.Contains(got, "\r\nserved\r\n") {
		t.Fatalf("got %q\n%s", got, logs.String())
	}
	if n := served.Load(); n != 1 {
		t.Fatalf("the peer acted on the request %d times", n)
	}
}

// serveH2Raw serves one HTTP/2 connection with a bare Framer: with goAway, it refuses
// everything with GOAWAY (last stream 0); otherwise it answers each request, once its
// body is whole, with 200 and what reply returns for that body.
func serveH2Raw(c net.Conn, goAway bool, reply func(body []byte) []byte) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(c, preface); err != nil {
		return
	}
	fr := http2.NewFramer(c, c)
	fr.WriteSettings()
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	bodies := map[uint32][]byte{}
	answer := func(id uint32) {
		hbuf.Reset()
		enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hbuf.Bytes(), EndHeaders: true})
		fr.WriteData(id, true, reply(bodies[id]))
		delete(bodies, id)
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			if goAway {
				fr.WriteGoAway(0, http2.ErrCodeNo, nil)
				return
			}
			bodies[f.StreamID] = []byte{}
			if f.StreamEnded() {
				answer(f.StreamID)
			}
		case *http2.DataFrame:
			bodies[f.StreamID] = append(bodies[f.StreamID], f.Data()...)
			if f.StreamEnded() {
				answer(f.StreamID)
			}
		}
	}
}

// An interim response (103 Early Hints) from an HTTP/2 peer reaches an HTTP/1.1 client
// before the final one.
func TestHTTP2UpstreamInterim(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		io.WriteString(w, "final")
	}))
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	srv.Config.Protocols = &p
	srv.Start()
	defer srv.Close()
	svc, _ := newTestService[*testCtx](t, fixedProxy{peer: &Peer{Address: strings.TrimPrefix(srv.URL, "http://"), Protocol: ProtoHTTP2}}, ServiceOptions{})
	addr := startProxy(t, svc)
	got := rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	i := strings.Index(got, "HTTP/1.1 103 ")
	j := strings.Index(got, "HTTP/1.1 200 ")
	if i != 0 || j < 0 || !strings.Contains(got[:j], "Link: </style.css>; rel=preload") || !strings.HasSuffix(got, "final") {
		t.Fatalf("got %q", got)
	}
}
