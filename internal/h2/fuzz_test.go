package h2

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// FuzzConn feeds arbitrary frames, after a valid preface and SETTINGS frame, to a
// server connection: it must neither panic nor hang, whatever the input.
func FuzzConn(f *testing.F) {
	var buf bytes.Buffer
	fr := http2.NewFramer(&buf, nil)
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, hf := range []hpack.HeaderField{
		{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "http"},
		{Name: ":authority", Value: "x"}, {Name: ":path", Value: "/"}, {Name: "content-length", Value: "3"},
	} {
		_ = enc.WriteField(hf)
	}
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true})
	_ = fr.WriteData(1, false, []byte("ab"))
	_ = fr.WriteWindowUpdate(1, 100)
	_ = fr.WriteData(1, true, []byte("c"))
	f.Add(bytes.Clone(buf.Bytes()))
	buf.Reset()
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: hb.Bytes()[:4]})
	_ = fr.WriteContinuation(3, true, hb.Bytes()[4:])
	_ = fr.WriteRSTStream(3, http2.ErrCodeCancel)
	_ = fr.WritePing(false, [8]byte{1})
	f.Add(bytes.Clone(buf.Bytes()))

	f.Fuzz(func(t *testing.T, frames []byte) {
		client, server := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = NewConn(server, nil, Options{WriteTimeout: time.Second}, echoHandler).Serve()
		}()
		go func() { _, _ = io.Copy(io.Discard, client) }()
		_ = client.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = client.Write([]byte(ClientPreface))
		_, _ = client.Write([]byte{0, 0, 0, 4, 0, 0, 0, 0, 0}) // empty SETTINGS
		_, _ = client.Write(frames)
		_ = client.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return")
		}
	})
}
