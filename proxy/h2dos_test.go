package proxy

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestHTTP2RapidResetOnProxy attacks a running proxy with the rapid reset pattern
// (CVE-2023-44487: HEADERS then RST_STREAM, in a loop) on one connection while a normal
// HTTP/2 client on another connection keeps being served; the attacker's connection is
// closed with GOAWAY.
func TestHTTP2RapidResetOnProxy(t *testing.T) {
	origin, _ := echoOrigin(t)
	svc, _ := newTestService[*testCtx](t, fixedProxy{peer: NewPeer(origin)}, ServiceOptions{})
	addr := startProxy(t, svc)

	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(nc, http2.ClientPreface)
	fr := http2.NewFramer(nc, nc)
	fr.WriteSettings()
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	for _, f := range []hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"},
		{Name: ":authority", Value: "x"}, {Name: ":path", Value: "/"}} {
		enc.WriteField(f)
	}
	block := hbuf.Bytes()
	goaway := make(chan http2.ErrCode, 1)
	go func() {
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				close(goaway)
				return
			}
			if g, ok := f.(*http2.GoAwayFrame); ok {
				goaway <- g.ErrCode
				return
			}
		}
	}()
	served := 0
	var got http2.ErrCode
	closed := false
	cl := h2cClient(t)
	deadline := time.Now().Add(10 * time.Second)
	id := uint32(1)
attack:
	for i := 0; i < 20000 && time.Now().Before(deadline); i++ {
		if fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true}) != nil ||
			fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
			break
		}
		id += 2
		if i%500 == 0 {
			// A normal client on its own connection is served throughout.
			resp, err := cl.Get("http://" + addr + "/ok")
			if err != nil {
				t.Fatalf("normal client during the attack: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("normal client: %d", resp.StatusCode)
			}
			served++
		}
		select {
		case code, ok := <-goaway:
			got, closed = code, !ok
			break attack
		default:
		}
	}
	t.Logf("sent %d HEADERS+RST_STREAM pairs; normal requests served: %d", (id-1)/2, served)
	if got == 0 && !closed {
		select {
		case code, ok := <-goaway:
			got, closed = code, !ok
		case <-time.After(10 * time.Second):
			t.Fatal("the attacker's connection was neither sent GOAWAY nor closed")
		}
	}
	if !closed && got != http2.ErrCodeEnhanceYourCalm {
		t.Fatalf("GOAWAY %v, want ENHANCE_YOUR_CALM", got)
	}
	resp, err := cl.Get("http://" + addr + "/after")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("normal client after the attack: %v", err)
	}
	resp.Body.Close()
	if served == 0 {
		t.Fatal("the normal client was never served during the attack")
	}
}
