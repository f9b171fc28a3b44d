package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"

	"golang.org/x/net/http2/hpack"

	"github.com/gotthard-proxy/gotthard/internal/h2"
)

// The upstream-h2 benchmarks measure the proxy's HTTP/2 client path: one request at a
// time from a keep-alive HTTP/1.1 client, through the proxy, to an h2c peer, on one
// reused upstream connection (the proxy's own client, internal/h2, multiplexing its
// streams on it). What is counted in allocs/op is the proxy's share:
//
//   - the client is a raw HTTP/1.1 client on one connection (h2UpstreamClient): a
//     request written from a preallocated slice, the response read into a preallocated
//     buffer, no allocation of its own;
//   - the origin is internal/h2's server connection (h2UpstreamOrigin) whose handler
//     reads the request body into nothing and writes a preallocated response: the
//     server side allocates nothing per stream in steady state (see internal/h2's
//     BenchmarkRequestBody), though its handler goroutine, when the runtime has no idle
//     one to reuse, may count now and then.
//
// So what remains in a memory profile (-memprofile, then go tool pprof
// -sample_index=alloc_objects -top) is the proxy's: the upstream request's head, the
// stream, its body pump and the response's head and body reader.

// h2UpstreamOrigin runs an h2c origin on internal/h2's server: each request's body is
// read and dropped, and the answer is 200 with body, from preallocated values.
func h2UpstreamOrigin(b *testing.B, body []byte) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	fields := []h2.Field{{Name: "content-type", Value: "text/plain"},
		{Name: "content-length", Value: strconv.Itoa(len(body))}}
	handler := func(st *h2.Stream) {
		for {
			_, err := st.ReadBody()
			if err == io.EOF {
				break
			}
			if err != nil {
				return
			}
		}
		if st.WriteHeaders(200, fields, false) == nil {
			_ = st.WriteData(body, true)
		}
	}
	done := make(chan struct{})
	conns := make(chan *h2.Conn, 16)
	b.Cleanup(func() {
		ln.Close()
		<-done
	})
	go func() {
		defer close(done)
		var served []chan error
		defer func() {
			for range served {
				c := <-conns
				c.Close()
			}
			for _, ch := range served {
				<-ch
			}
		}()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			c := h2.NewConn(nc, nil, h2.Options{}, handler)
			conns <- c
			ch := make(chan error, 1)
			served = append(served, ch)
			go func() { ch <- c.Serve() }()
		}
	}()
	return ln.Addr().String()
}

// h2UpstreamClient sends req on one HTTP/1.1 connection to addr and reads each response
// (whose head must carry Content-Length), without allocating.
type h2UpstreamClient struct {
	nc  net.Conn
	req []byte
	buf []byte
}

func newH2UpstreamClient(b *testing.B, addr string, req []byte) *h2UpstreamClient {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { nc.Close() })
	return &h2UpstreamClient{nc: nc, req: req, buf: make([]byte, 16<<10)}
}

var errBenchResponse = errors.New("bench: unexpected response")

// do sends the request and reads the response; it checks the status is 200.
func (c *h2UpstreamClient) do() error {
	if _, err := c.nc.Write(c.req); err != nil {
		return err
	}
	n, want := 0, -1
	for {
		m, err := c.nc.Read(c.buf[n:])
		if err != nil {
			return err
		}
		n += m
		if want < 0 {
			i := bytes.Index(c.buf[:n], []byte("\r\n\r\n"))
			if i < 0 {
				continue
			}
			head := c.buf[:i+2]
			if !bytes.HasPrefix(head, []byte("HTTP/1.1 200 ")) {
				return errBenchResponse
			}
			j := bytes.Index(head, []byte("\r\nContent-Length: "))
			if j < 0 {
				return errBenchResponse
			}
			v := head[j+len("\r\nContent-Length: "):]
			v = v[:bytes.IndexByte(v, '\r')]
			size := 0
			for _, d := range v {
				size = size*10 + int(d-'0')
			}
			want = i + 4 + size
		}
		if n >= want {
			if n > want {
				return errBenchResponse
			}
			return nil
		}
	}
}

// h2UpstreamProxy starts a proxy to an h2c origin answering 1 KiB; it returns the
// proxy's address.
func h2UpstreamProxy(b *testing.B) (*Service[struct{}], string, *logBuffer) {
	origin := h2UpstreamOrigin(b, bytes.Repeat([]byte("x"), 1024))
	peer := testPeer(origin)
	peer.Protocol = ProtoHTTP2
	svc, logs := newTestService[struct{}](b, benchProxy{peer: peer}, ServiceOptions{MaxRequestsPerConn: -1})
	return svc, startProxy(b, svc), logs
}

// benchH2Upstream runs req (an HTTP/1.1 request) through the proxy to the h2c origin.
func benchH2Upstream(b *testing.B, req []byte) {
	svc, addr, logs := h2UpstreamProxy(b)
	c := newH2UpstreamClient(b, addr, req)
	for range 100 {
		if err := c.do(); err != nil {
			b.Fatalf("%v\n%s", err, logs.String())
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := c.do(); err != nil {
			b.Fatalf("%v\n%s", err, logs.String())
		}
	}
	b.StopTimer()
	if st := svc.PoolStats(); st.New != 1 {
		b.Fatalf("upstream connections opened: %d", st.New)
	}
}

// BenchmarkProxyH2UpstreamPost measures one proxied POST with a streamed 1 KiB body
// (HTTP/1.1 client, chunked; h2c origin that reads the body and answers 1 KiB): the
// path where the request goroutine filters the body and the proxy's HTTP/2 client
// sends it. See the top of the file for what is counted.
func BenchmarkProxyH2UpstreamPost(b *testing.B) {
	req := []byte("POST /post HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench/1.0\r\n" +
		"Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n" +
		string(bytes.Repeat([]byte("x"), 1024)) + "\r\n0\r\n\r\n")
	benchH2Upstream(b, req)
}

// BenchmarkProxyH2UpstreamGet measures one proxied GET (HTTP/1.1 client, h2c origin
// answering 1 KiB): the path without a request body, where the request goroutine
// sends the request itself.
func BenchmarkProxyH2UpstreamGet(b *testing.B) {
	benchH2Upstream(b, []byte("GET /get HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench/1.0\r\nAccept: */*\r\n\r\n"))
}

// BenchmarkProxyH2UpstreamH2Post is BenchmarkProxyH2UpstreamPost from an h2c client (a
// raw Framer, as in BenchmarkProxyH2Get): HTTP/2 end to end, as a gRPC call goes.
func BenchmarkProxyH2UpstreamH2Post(b *testing.B) {
	svc, addr, _ := h2UpstreamProxy(b)
	c := newRawH2Client(b, addr, []hpack.HeaderField{
		{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "http"},
		{Name: ":authority", Value: "bench"}, {Name: ":path", Value: "/post"},
		{Name: "content-type", Value: "application/octet-stream"},
	}, bytes.Repeat([]byte("x"), 1024))
	for range 100 {
		c.roundTrip()
	}
	b.ReportAllocs()
	for b.Loop() {
		c.roundTrip()
	}
	b.StopTimer()
	if st := svc.PoolStats(); st.New != 1 {
		b.Fatalf("upstream connections opened: %d", st.New)
	}
}
