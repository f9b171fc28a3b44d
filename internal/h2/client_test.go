package h2

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// clientOrigin is a standard library HTTP/2 server on loopback, h2c or TLS.
type clientOrigin struct {
	srv  *http.Server
	addr string
	tls  bool
	done chan struct{}
}

func startClientOrigin(t testing.TB, useTLS bool, h http.Handler, cfg *http.HTTP2Config) *clientOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, Protocols: new(http.Protocols), HTTP2: cfg,
		ErrorLog: log.New(io.Discard, "", 0)}
	o := &clientOrigin{srv: srv, addr: ln.Addr().String(), tls: useTLS, done: make(chan struct{})}
	if useTLS {
		srv.Protocols.SetHTTP2(true)
		srv.TLSConfig = testTLSConfig(t)
		go func() { defer close(o.done); _ = srv.ServeTLS(ln, "", "") }()
	} else {
		srv.Protocols.SetUnencryptedHTTP2(true)
		go func() { defer close(o.done); _ = srv.Serve(ln) }()
	}
	t.Cleanup(func() {
		_ = srv.Close()
		<-o.done
	})
	return o
}

func (o *clientOrigin) dial(t testing.TB, opts ClientOptions) *ClientConn {
	t.Helper()
	nc, err := net.Dial("tcp", o.addr)
	if err != nil {
		t.Fatal(err)
	}
	if o.tls {
		tc := tls.Client(nc, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
			t.Fatalf("ALPN %q", p)
		}
		nc = tc
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cc, err := NewClientConn(ctx, nc, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// clientResult is a whole response.
type clientResult struct {
	status   int
	head     []Field
	body     []byte
	trailers []Field
}

func get(fields []Field, name string) string {
	for _, f := range fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// roundTrip sends a request (body nil: none) with trailers and reads the whole response.
func roundTrip(cc *ClientConn, method, path string, body []byte, trailers []Field) (clientResult, error) {
	fields := []Field{{Name: "x-test", Value: "1"}}
	if trailers != nil {
		fields = append(fields, Field{Name: "trailer", Value: "x-sum"}) // (net/http keeps only declared ones)
	}
	st, err := cc.NewStream(&ClientRequest{Method: method, Scheme: "http", Authority: "example.test",
		Path: path, EndStream: body == nil, Fields: fields})
	if err != nil {
		return clientResult{}, err
	}
	defer st.Close()
	errc := make(chan error, 1)
	if body != nil {
		go func() {
			for p := body; ; {
				n := min(len(p), 7000)
				if err := st.WriteData(p[:n], false); err != nil {
					errc <- err
					return
				}
				p = p[n:]
				if len(p) == 0 {
					break
				}
			}
			if trailers != nil {
				errc <- st.WriteTrailers(trailers)
				return
			}
			errc <- st.WriteData(nil, true)
		}()
	} else {
		errc <- nil
	}
	var r clientResult
	status, head, err := st.ReadHead(nil)
	if err != nil {
		return r, err
	}
	r.status, r.head = status, append([]Field(nil), head...)
	r.body, err = io.ReadAll(st)
	if err != nil {
		return r, err
	}
	r.trailers = append([]Field(nil), st.Trailers()...)
	return r, <-errc
}

// echo answers with the request body, its length and the request's trailers.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Trailer", "X-Length, X-Echo")
	w.Header().Set("X-Method", r.Method)
	w.WriteHeader(200)
	n, _ := io.Copy(w, r.Body)
	w.Header().Set("X-Length", strconv.FormatInt(n, 10))
	w.Header().Set("X-Echo", r.Trailer.Get("X-Sum"))
})

func TestClientRequests(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			pool := NewBufPool(0)
			o := startClientOrigin(t, useTLS, echo, nil)
			cc := o.dial(t, ClientOptions{Pool: pool})
			r, err := roundTrip(cc, "GET", "/", nil, nil)
			if err != nil || r.status != 200 || get(r.head, "x-method") != "GET" || len(r.body) != 0 {
				t.Fatalf("GET: %v %+v", err, r)
			}
			body := bytes.Repeat([]byte("abcdefgh"), 10000)
			r, err = roundTrip(cc, "POST", "/", body, []Field{{Name: "x-sum", Value: "42"}})
			if err != nil || !bytes.Equal(r.body, body) {
				t.Fatalf("POST: %v, %d bytes", err, len(r.body))
			}
			if get(r.trailers, "x-length") != "80000" || get(r.trailers, "x-echo") != "42" {
				t.Fatalf("trailers %v", r.trailers)
			}
			waitFor(t, 10*time.Second, "buffers back", func() bool {
				cc.wmu.Lock()
				defer cc.wmu.Unlock()
				return pool.InUse() == 0 && cc.Streams() == 0 && cc.wctrl == nil && cc.wdata == nil && cc.wspareData == nil
			})
			since, alive, idle := cc.Quiet()
			if !idle {
				t.Fatal("not idle")
			}
			if since.IsZero() || !alive.Equal(since) {
				t.Fatalf("Quiet before a PING: since %v, alive %v; want both the end of the last stream", since, alive)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := cc.Ping(ctx); err != nil {
				t.Fatal(err)
			}
			// The acknowledgement is a sign of life; the last stream's end stays.
			if s, alive, idle := cc.Quiet(); !idle || !s.Equal(since) || !alive.After(since) {
				t.Fatalf("Quiet after a PING: %v %v %v, want it alive after %v", s, alive, idle, since)
			}
		})
	}
}

func TestClientConcurrentAndLargeBodies(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			o := startClientOrigin(t, useTLS, echo, &http.HTTP2Config{
				MaxReceiveBufferPerStream: 16 << 10, MaxReceiveBufferPerConnection: 64 << 10})
			cc := o.dial(t, ClientOptions{StreamWindowSize: 16 << 10, ConnWindowSize: 64 << 10})
			var wg sync.WaitGroup
			errs := make(chan error, 64)
			for i := range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					size := 1000 + i*7919
					if i%8 == 0 {
						size = 2 << 20
					}
					body := bytes.Repeat([]byte{byte(i)}, size)
					r, err := roundTrip(cc, "POST", "/", body, []Field{{Name: "x-sum", Value: strconv.Itoa(i)}})
					switch {
					case err != nil:
						errs <- err
					case sha256.Sum256(r.body) != sha256.Sum256(body):
						errs <- fmt.Errorf("stream %d: body differs (%d bytes)", i, len(r.body))
					case get(r.trailers, "x-echo") != strconv.Itoa(i):
						errs <- fmt.Errorf("stream %d: trailers %v", i, r.trailers)
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

func TestClientMaxConcurrentStreams(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 10)
	o := startClientOrigin(t, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
	}), &http.HTTP2Config{MaxConcurrentStreams: 3})
	cc := o.dial(t, ClientOptions{})
	var sts []*ClientStream
	for range 3 {
		st, err := cc.NewStream(&ClientRequest{Method: "GET", Scheme: "http", Authority: "a", Path: "/", EndStream: true})
		if err != nil {
			t.Fatal(err)
		}
		sts = append(sts, st)
	}
	for range 3 {
		<-arrived
	}
	if cc.CanTakeRequest() {
		t.Fatal("CanTakeRequest at the peer's limit")
	}
	if _, err := cc.NewStream(&ClientRequest{Method: "GET", Scheme: "http", Authority: "a", Path: "/", EndStream: true}); !errors.Is(err, ErrNoStream) {
		t.Fatalf("4th stream: %v", err)
	}
	close(release)
	for _, st := range sts {
		if s, _, err := st.ReadHead(nil); err != nil || s != 200 {
			t.Fatal(s, err)
		}
		st.Close()
	}
	if !cc.CanTakeRequest() {
		t.Fatal("no stream after the others ended")
	}
}

func TestClientResetByServer(t *testing.T) {
	o := startClientOrigin(t, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/abort" {
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
	}), nil)
	cc := o.dial(t, ClientOptions{})
	_, err := roundTrip(cc, "GET", "/abort", nil, nil)
	var re *ResetError
	if !errors.As(err, &re) || !re.Remote {
		t.Fatalf("err %v", err)
	}
	if r, err := roundTrip(cc, "GET", "/", nil, nil); err != nil || r.status != 200 {
		t.Fatalf("after the reset: %v", err)
	}
}

func TestClientStalledPeerAndCancel(t *testing.T) {
	release := make(chan struct{})
	o := startClientOrigin(t, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stall" {
			<-release // reads nothing of the body
		}
	}), &http.HTTP2Config{MaxReceiveBufferPerStream: 16 << 10, MaxReceiveBufferPerConnection: 1 << 20})
	defer close(release)
	cc := o.dial(t, ClientOptions{})
	st, err := cc.NewStream(&ClientRequest{Method: "POST", Scheme: "http", Authority: "a", Path: "/stall"})
	if err != nil {
		t.Fatal(err)
	}
	werr := make(chan error, 1)
	go func() { werr <- st.WriteData(make([]byte, 1<<20), true) }()
	waitFor(t, 10*time.Second, "a window wait", func() bool {
		cc.mu.Lock()
		defer cc.mu.Unlock()
		return st.waitWin
	})
	// Other streams go on meanwhile.
	if r, err := roundTrip(cc, "GET", "/", nil, nil); err != nil || r.status != 200 {
		t.Fatalf("beside a stalled stream: %v", err)
	}
	st.Cancel()
	if err := <-werr; !errors.Is(err, ErrCanceled) {
		t.Fatalf("write after cancel: %v", err)
	}
	if _, _, err := st.ReadHead(nil); !errors.Is(err, ErrCanceled) {
		t.Fatalf("read after cancel: %v", err)
	}
	st.Close()
}

func TestClientGracefulShutdown(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 4)
	o := startClientOrigin(t, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		io.WriteString(w, "done")
	}), nil)
	cc := o.dial(t, ClientOptions{})
	var sts []*ClientStream
	for range 4 {
		st, err := cc.NewStream(&ClientRequest{Method: "GET", Scheme: "http", Authority: "a", Path: "/", EndStream: true})
		if err != nil {
			t.Fatal(err)
		}
		sts = append(sts, st)
		<-arrived
	}
	shut := make(chan error, 1)
	go func() { shut <- o.srv.Shutdown(context.Background()) }()
	waitFor(t, 10*time.Second, "GOAWAY", func() bool { return !cc.CanTakeRequest() })
	if _, err := cc.NewStream(&ClientRequest{Method: "GET", Scheme: "http", Authority: "a", Path: "/", EndStream: true}); !errors.Is(err, ErrUnprocessed) {
		t.Fatalf("a stream after GOAWAY: %v", err)
	}
	close(release)
	for _, st := range sts {
		if _, _, err := st.ReadHead(nil); err != nil {
			t.Fatal(err)
		}
		if b, err := io.ReadAll(st); err != nil || string(b) != "done" {
			t.Fatalf("%q %v", b, err)
		}
		st.Close()
	}
	<-cc.Done()
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
}

// rawPeer is a server speaking HTTP/2 frame by frame, for what the standard library's
// server never sends.
func rawPeer(t *testing.T, serve func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		br := bufio.NewReader(nc)
		p := make([]byte, len(ClientPreface))
		if _, err := io.ReadFull(br, p); err != nil {
			return
		}
		fr := http2.NewFramer(nc, br)
		fr.AllowIllegalWrites = true
		fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100})
		var hb bytes.Buffer
		serve(fr, hpack.NewEncoder(&hb), &hb)
		io.Copy(io.Discard, nc)
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

// readHeaders reads frames until n HEADERS frames came, and returns their stream ids.
func readHeaders(fr *http2.Framer, n int) []uint32 {
	var ids []uint32
	for len(ids) < n {
		f, err := fr.ReadFrame()
		if err != nil {
			return ids
		}
		if h, ok := f.(*http2.HeadersFrame); ok {
			ids = append(ids, h.StreamID)
		}
	}
	return ids
}

func dialRawClient(t *testing.T, addr string) *ClientConn {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := NewClientConn(context.Background(), nc, ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func TestClientGoAwayUnprocessed(t *testing.T) {
	addr := rawPeer(t, func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
		ids := readHeaders(fr, 3)
		if len(ids) != 3 {
			return
		}
		fr.WriteGoAway(ids[0], http2.ErrCodeNo, nil)
		enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: ids[0], BlockFragment: hb.Bytes(), EndHeaders: true, EndStream: true})
	})
	cc := dialRawClient(t, addr)
	var sts []*ClientStream
	for range 3 {
		st, err := cc.NewStream(&ClientRequest{Method: "POST", Scheme: "http", Authority: "a", Path: "/", EndStream: true})
		if err != nil {
			t.Fatal(err)
		}
		sts = append(sts, st)
	}
	if s, _, err := sts[0].ReadHead(nil); err != nil || s != 200 {
		t.Fatalf("stream 1: %d %v", s, err)
	}
	for _, st := range sts[1:] {
		if _, _, err := st.ReadHead(nil); !errors.Is(err, ErrUnprocessed) {
			t.Fatalf("stream %d: %v", st.ID(), err)
		}
	}
	for _, st := range sts {
		st.Close()
	}
	<-cc.Done() // going away with nothing left open: the connection ends
}

func TestClientMalformedFrames(t *testing.T) {
	for _, tc := range []struct {
		name string
		send func(fr *http2.Framer, id uint32)
	}{
		{"window update of 0", func(fr *http2.Framer, id uint32) { fr.WriteWindowUpdate(0, 0) }},
		{"DATA on stream 0", func(fr *http2.Framer, id uint32) { fr.WriteData(0, false, []byte("x")) }},
		{"DATA on an idle stream", func(fr *http2.Framer, id uint32) { fr.WriteData(id+2, false, []byte("x")) }},
		{"push promise", func(fr *http2.Framer, id uint32) {
			fr.WritePushPromise(http2.PushPromiseParam{StreamID: id, PromiseID: 2, EndHeaders: true, BlockFragment: []byte{0x88}})
		}},
		{"HEADERS padding too long", func(fr *http2.Framer, id uint32) {
			fr.WriteRawFrame(http2.FrameHeaders, http2.FlagHeadersPadded|http2.FlagHeadersEndHeaders, id, []byte{5, 0x88})
		}},
		{"bad hpack", func(fr *http2.Framer, id uint32) {
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: []byte{0xff, 0xff, 0xff}, EndHeaders: true})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan http2.ErrCode, 1)
			addr := rawPeer(t, func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
				ids := readHeaders(fr, 1)
				if len(ids) != 1 {
					return
				}
				tc.send(fr, ids[0])
				for {
					f, err := fr.ReadFrame()
					if err != nil {
						got <- 0xff
						return
					}
					if g, ok := f.(*http2.GoAwayFrame); ok {
						got <- g.ErrCode
						return
					}
				}
			})
			cc := dialRawClient(t, addr)
			st, err := cc.NewStream(&ClientRequest{Method: "GET", Scheme: "http", Authority: "a", Path: "/", EndStream: true})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if _, _, err := st.ReadHead(nil); !errors.Is(err, ErrConnClosed) {
				t.Fatalf("stream: %v", err)
			}
			<-cc.Done()
			if cc.Err() == nil {
				t.Fatal("no connection error")
			}
			if code := <-got; code == http2.ErrCodeNo || code == 0xff {
				t.Fatalf("GOAWAY code %v", code)
			}
		})
	}
}

func TestClientHeaderListLimit(t *testing.T) {
	o := startClientOrigin(t, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			for i := range 8 { // over the list size, though each field is under it
				w.Header().Set("X-Big-"+strconv.Itoa(i), strings.Repeat("b", 1<<10))
			}
		}
	}), nil)
	cc := o.dial(t, ClientOptions{MaxHeaderListSize: 4 << 10})
	if _, err := roundTrip(cc, "GET", "/big", nil, nil); !errors.Is(err, ErrInvalidPeerResponse) {
		t.Fatalf("big head: %v", err)
	}
	if r, err := roundTrip(cc, "GET", "/", nil, nil); err != nil || r.status != 200 {
		t.Fatalf("after: %v", err)
	}
}

func TestClientInterimHeads(t *testing.T) {
	o := startClientOrigin(t, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(103)
		w.Header().Del("Link")
		io.WriteString(w, "final")
	}), nil)
	cc := o.dial(t, ClientOptions{})
	st, err := cc.NewStream(&ClientRequest{Method: "GET", Scheme: "http", Authority: "a", Path: "/", EndStream: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var interim []string
	s, _, err := st.ReadHead(func(status int, fields []Field) {
		interim = append(interim, strconv.Itoa(status)+" "+get(fields, "link"))
	})
	if err != nil || s != 200 || len(interim) != 1 || interim[0] != "103 </a.css>; rel=preload" {
		t.Fatalf("%d %v %q", s, err, interim)
	}
	if b, err := io.ReadAll(st); err != nil || string(b) != "final" {
		t.Fatalf("%q %v", b, err)
	}
}

func TestClientOptionsValidated(t *testing.T) {
	for _, tc := range []struct {
		opts  ClientOptions
		field string
	}{
		{ClientOptions{StreamWindowSize: 1 << 31}, "StreamWindowSize"},
		{ClientOptions{StreamWindowSize: 1 << 20, ConnWindowSize: 1 << 16}, "ConnWindowSize"},
		{ClientOptions{WriteTimeout: -1}, "WriteTimeout"},
	} {
		c1, c2 := net.Pipe()
		defer c2.Close()
		_, err := NewClientConn(context.Background(), c1, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%+v: %v", tc.opts, err)
		}
	}
}
