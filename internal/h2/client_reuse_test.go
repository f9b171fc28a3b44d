package h2

import (
	"bytes"
	"io"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// A stream closed before its response is reused for the next request, and the frames
// the peer still sends for the old one (padded and with a priority, which the client
// parses itself) never reach it.
func TestClientStreamReuseLateFrames(t *testing.T) {
	addr := rawPeer(t, func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
		ids := readHeaders(fr, 2)
		if len(ids) != 2 {
			return
		}
		respond := func(id uint32, status, body string) {
			hb.Reset()
			enc.WriteField(hpack.HeaderField{Name: ":status", Value: status})
			enc.WriteField(hpack.HeaderField{Name: "x-stream", Value: body})
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndHeaders: true,
				PadLength: 3, Priority: http2.PriorityParam{StreamDep: 0, Weight: 15}})
			fr.WriteData(id, true, []byte(body))
		}
		respond(ids[0], "200", "late")
		respond(ids[1], "201", "fresh")
	})
	cc := dialRawClient(t, addr)
	req := &ClientRequest{Method: "GET", Scheme: "http", Authority: "a", Path: "/", EndStream: true}
	first, err := cc.NewStream(req)
	if err != nil {
		t.Fatal(err)
	}
	first.Close() // reset before any answer
	second, err := cc.NewStream(req)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if second != first {
		t.Fatal("the closed stream was not reused")
	}
	if second.ID() != 3 {
		t.Fatalf("stream id %d, want 3", second.ID())
	}
	status, fields, err := second.ReadHead(nil)
	if err != nil || status != 201 || get(fields, "x-stream") != "fresh" {
		t.Fatalf("head: %d %v %v", status, fields, err)
	}
	if b, err := io.ReadAll(second); err != nil || string(b) != "fresh" {
		t.Fatalf("body: %q %v", b, err)
	}
}

// A stream that ended with an error is reused clean: no error, head, body or wake-up
// of its past.
func TestClientStreamReuseAfterReset(t *testing.T) {
	answer := make(chan struct{}) // closed once the test saw no head at hand
	addr := rawPeer(t, func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
		ids := readHeaders(fr, 1)
		if len(ids) != 1 {
			return
		}
		enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: ids[0], BlockFragment: hb.Bytes(), EndHeaders: true})
		fr.WriteData(ids[0], false, []byte("part"))
		fr.WriteRSTStream(ids[0], http2.ErrCodeInternal)
		ids = readHeaders(fr, 1)
		if len(ids) != 1 {
			return
		}
		select { // (not forever: a test that failed before never closes it)
		case <-answer:
		case <-time.After(10 * time.Second):
		}
		hb.Reset()
		enc.WriteField(hpack.HeaderField{Name: ":status", Value: "204"})
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: ids[0], BlockFragment: hb.Bytes(), EndHeaders: true, EndStream: true})
	})
	cc := dialRawClient(t, addr)
	req := &ClientRequest{Method: "GET", Scheme: "http", Authority: "a", Path: "/", EndStream: true}
	st, err := cc.NewStream(req)
	if err != nil {
		t.Fatal(err)
	}
	// (The reset may come before the head is read: either way the stream failed.)
	if _, _, err := st.ReadHead(nil); err == nil {
		if _, err := io.ReadAll(st); err == nil {
			t.Fatal("the reset body read to its end")
		}
	}
	st.Close()
	st2, err := cc.NewStream(req)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	if st2 != st {
		t.Fatal("the closed stream was not reused")
	}
	if _, _, err, ok := st2.ReadHeadNow(nil); ok {
		t.Fatalf("a head at hand before the peer answered: %v", err)
	}
	close(answer)
	<-st2.Wake()
	for {
		s, _, err, ok := st2.ReadHeadNow(nil)
		if ok {
			if err != nil || s != 204 || !st2.HeadEndsStream() {
				t.Fatalf("second head: %d %v", s, err)
			}
			break
		}
		<-st2.Wake()
	}
	if b, err, ok := st2.ReadBodyNow(); !ok || err != io.EOF || len(b) != 0 {
		t.Fatalf("second body: %q %v %v", b, err, ok)
	}
}
