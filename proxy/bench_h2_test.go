package proxy

import (
	"bytes"
	"errors"
	"net"
	"strconv"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// BenchmarkProxyH2Get measures one proxied HTTP/2 GET (h2c client, HTTP/1.1 origin,
// reused upstream connection, 1 KiB response). The client is a raw Framer on one
// connection, so nearly all allocations counted are the proxy's.
func BenchmarkProxyH2Get(b *testing.B) {
	origin := rawOrigin(b, 1024)
	svc, _ := newTestService[struct{}](b, benchProxy{peer: testPeer(origin)}, ServiceOptions{MaxRequestsPerConn: -1})
	addr := startProxy(b, svc)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write([]byte(http2.ClientPreface)); err != nil {
		b.Fatal(err)
	}
	fr := http2.NewFramer(nc, nc)
	fr.SetReuseFrames()
	if err := fr.WriteSettings(); err != nil {
		b.Fatal(err)
	}
	if err := fr.WriteWindowUpdate(0, 1<<30); err != nil {
		b.Fatal(err)
	}
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	fields := []hpack.HeaderField{
		{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"},
		{Name: ":authority", Value: "bench"}, {Name: ":path", Value: "/1k"},
		{Name: "user-agent", Value: "bench/1.0"}, {Name: "accept", Value: "*/*"},
	}
	id := uint32(1)
	var consumed uint32
	roundTrip := func() {
		hbuf.Reset()
		for _, f := range fields {
			enc.WriteField(f)
		}
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hbuf.Bytes(),
			EndStream: true, EndHeaders: true}); err != nil {
			b.Fatal(err)
		}
		for {
			f, err := fr.ReadFrame()
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
				consumed += f.Length
				if consumed > 1<<29 {
					fr.WriteWindowUpdate(0, consumed)
					consumed = 0
				}
				if f.StreamID == id && f.StreamEnded() {
					id += 2
					return
				}
			case *http2.HeadersFrame:
				if f.StreamID == id && f.StreamEnded() {
					id += 2
					return
				}
			case *http2.GoAwayFrame, *http2.RSTStreamFrame:
				b.Fatal(errors.New("unexpected " + f.Header().Type.String() + " on stream " + strconv.Itoa(int(id))))
			}
		}
	}
	for range 100 {
		roundTrip()
	}
	b.ReportAllocs()
	for b.Loop() {
		roundTrip()
	}
	b.StopTimer()
	if st := svc.PoolStats(); st.New != 1 {
		b.Fatalf("upstream connections opened: %d", st.New)
	}
}
