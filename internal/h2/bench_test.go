package h2

import (
	"errors"
	"io"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// benchClient sends requests one at a time on one connection with a raw Framer and
// waits for each response, so that nearly all allocations measured are the server's.
type benchClient struct {
	*rawClient
	id       uint32
	consumed int64
}

func newBenchClient(b *testing.B, addr string) *benchClient {
	c := &benchClient{rawClient: dialRaw(b, addr), id: 1}
	_ = c.nc.SetDeadline(time.Time{})
	c.fr.SetReuseFrames()
	if err := c.fr.WriteWindowUpdate(0, maxWindow-initialWindow); err != nil {
		b.Fatal(err)
	}
	return c
}

// do sends one request (with body, if not nil) and reads its response.
func (c *benchClient) do(fields []hpack.HeaderField, body []byte) error {
	c.hbuf.Reset()
	for _, f := range fields {
		_ = c.enc.WriteField(f)
	}
	id := c.id
	c.id += 2
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{
		StreamID: id, BlockFragment: c.hbuf.Bytes(), EndStream: body == nil, EndHeaders: true,
	}); err != nil {
		return err
	}
	if body != nil {
		if err := c.fr.WriteData(id, true, body); err != nil {
			return err
		}
	}
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return err
		}
		switch f := f.(type) {
		case *http2.DataFrame:
			c.consumed += int64(f.Length)
			if f.StreamID == id && f.StreamEnded() {
				if c.consumed > 1<<30 {
					if err := c.fr.WriteWindowUpdate(0, uint32(c.consumed)); err != nil {
						return err
					}
					c.consumed = 0
				}
				return nil
			}
		case *http2.HeadersFrame:
			if f.StreamID == id && f.StreamEnded() {
				return nil
			}
		case *http2.GoAwayFrame, *http2.RSTStreamFrame:
			return errors.New("unexpected " + f.Header().Type.String())
		}
	}
}

var benchRequest = []hpack.HeaderField{
	{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"},
	{Name: ":authority", Value: "bench.example"}, {Name: ":path", Value: "/index.html"},
	{Name: "user-agent", Value: "bench"}, {Name: "accept", Value: "*/*"},
}

var benchPost = []hpack.HeaderField{
	{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "http"},
	{Name: ":authority", Value: "bench.example"}, {Name: ":path", Value: "/upload"},
	{Name: "content-type", Value: "application/octet-stream"},
}

var benchResponseFields = []Field{{Name: "content-type", Value: "text/html"}, {Name: "server", Value: "gotthard"}}

// BenchmarkRequest measures one GET and its 1 KiB response over a loopback connection.
func BenchmarkRequest(b *testing.B) {
	body := make([]byte, 1024)
	h := func(st *Stream) {
		if st.WriteHeaders(200, benchResponseFields, false) == nil {
			_ = st.WriteData(body, true)
		}
	}
	srv := startServer(b, Options{}, h, nil)
	c := newBenchClient(b, srv.addr())
	b.ReportAllocs()
	for b.Loop() {
		if err := c.do(benchRequest, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRequestBody measures one POST of 1 KiB echoed back.
func BenchmarkRequestBody(b *testing.B) {
	h := func(st *Stream) {
		if st.WriteHeaders(200, benchResponseFields, false) != nil {
			return
		}
		for {
			p, err := st.ReadBody()
			if errors.Is(err, io.EOF) {
				_ = st.WriteData(nil, true)
				return
			}
			if err != nil || st.WriteData(p, false) != nil {
				return
			}
		}
	}
	srv := startServer(b, Options{}, h, nil)
	c := newBenchClient(b, srv.addr())
	body := make([]byte, 1024)
	b.ReportAllocs()
	for b.Loop() {
		if err := c.do(benchPost, body); err != nil {
			b.Fatal(err)
		}
	}
}
