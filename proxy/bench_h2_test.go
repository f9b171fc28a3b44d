package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// rawH2Client sends requests one at a time on one h2c connection with a raw Framer and
// reads each response, without allocating per request (it reads HEADERS payloads
// itself: the Framer's parse allocates a frame each time): what the benchmarks count is
// the proxy's.
type rawH2Client struct {
	b        *testing.B
	nc       net.Conn
	fr       *http2.Framer
	payload  []byte
	hbuf     bytes.Buffer
	enc      *hpack.Encoder
	fields   []hpack.HeaderField
	body     []byte // sent in one DATA frame after the head, if not nil
	id       uint32
	consumed uint32
}

func newRawH2Client(b *testing.B, addr string, fields []hpack.HeaderField, body []byte) *rawH2Client {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { nc.Close() })
	if _, err := nc.Write([]byte(http2.ClientPreface)); err != nil {
		b.Fatal(err)
	}
	c := &rawH2Client{b: b, nc: nc, fr: http2.NewFramer(nc, nc), payload: make([]byte, 16<<10),
		fields: fields, body: body, id: 1}
	c.fr.SetReuseFrames()
	if err := c.fr.WriteSettings(); err != nil {
		b.Fatal(err)
	}
	if err := c.fr.WriteWindowUpdate(0, 1<<30); err != nil {
		b.Fatal(err)
	}
	c.enc = hpack.NewEncoder(&c.hbuf)
	return c
}

// roundTrip sends the request and reads its response to the end.
func (c *rawH2Client) roundTrip() {
	b, fr, id := c.b, c.fr, c.id
	c.hbuf.Reset()
	for _, f := range c.fields {
		c.enc.WriteField(f)
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hbuf.Bytes(),
		EndStream: c.body == nil, EndHeaders: true}); err != nil {
		b.Fatal(err)
	}
	if c.body != nil {
		if err := fr.WriteData(id, true, c.body); err != nil {
			b.Fatal(err)
		}
	}
	for {
		fh, err := fr.ReadFrameHeader()
		if err != nil {
			b.Fatal(err)
		}
		if fh.Type == http2.FrameHeaders {
			if _, err := io.ReadFull(c.nc, c.payload[:fh.Length]); err != nil {
				b.Fatal(err)
			}
			if fh.StreamID == id && fh.Flags.Has(http2.FlagHeadersEndStream) {
				c.id += 2
				return
			}
			continue
		}
		f, err := fr.ReadFrameForHeader(fh)
		if err != nil {
			b.Fatal(err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
			continue
		case *http2.DataFrame:
			c.consumed += f.Length
			if c.consumed > 1<<29 {
				fr.WriteWindowUpdate(0, c.consumed)
				c.consumed = 0
			}
			if f.StreamID == id && f.StreamEnded() {
				c.id += 2
				return
			}
		case *http2.GoAwayFrame, *http2.RSTStreamFrame:
			b.Fatal(errors.New("unexpected " + f.Header().Type.String() + " on stream " + strconv.Itoa(int(id))))
		}
	}
}

// BenchmarkProxyH2Get measures one proxied HTTP/2 GET (h2c client, HTTP/1.1 origin,
// reused upstream connection, 1 KiB response). The client is a raw Framer on one
// connection (rawH2Client) and the origin allocation-free (rawOrigin), so the
// allocations counted are the proxy's.
func BenchmarkProxyH2Get(b *testing.B) {
	origin := rawOrigin(b, 1024)
	svc, _ := newTestService[struct{}](b, benchProxy{peer: testPeer(origin)}, ServiceOptions{MaxRequestsPerConn: -1})
	c := newRawH2Client(b, startProxy(b, svc), []hpack.HeaderField{
		{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"},
		{Name: ":authority", Value: "bench"}, {Name: ":path", Value: "/1k"},
		{Name: "user-agent", Value: "bench/1.0"}, {Name: "accept", Value: "*/*"},
	}, nil)
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
