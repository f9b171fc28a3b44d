package proxy

import (
	"bytes"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// earlyH2Origin is an h2c peer that gives each stream a window of 1 KiB, answers 401
// as soon as a request's head arrives, and never reads a body nor resets a stream: a
// request body larger than the window waits on it for ever. It counts the bytes of
// DATA it got on done.
func earlyH2Origin(t *testing.T) (addr string, got <-chan int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	counts := make(chan int, 8)
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				preface := make([]byte, len(http2.ClientPreface))
				if _, err := io.ReadFull(nc, preface); err != nil {
					return
				}
				fr := http2.NewFramer(nc, nc)
				fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1024})
				var hb bytes.Buffer
				enc := hpack.NewEncoder(&hb)
				data := 0
				defer func() { counts <- data }()
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
					case *http2.DataFrame:
						data += len(f.Data())
					case *http2.HeadersFrame:
						hb.Reset()
						enc.WriteField(hpack.HeaderField{Name: ":status", Value: "401"})
						enc.WriteField(hpack.HeaderField{Name: "content-length", Value: "6"})
						fr.WriteHeaders(http2.HeadersFrameParam{StreamID: f.StreamID, BlockFragment: hb.Bytes(), EndHeaders: true})
						fr.WriteData(f.StreamID, true, []byte("denied"))
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), counts
}

// TestH2EarlyAnswerBufferedBody: a buffered request body larger than the window an
// HTTP/2 peer gives does not hold back the answer the peer sends before reading it:
// the client gets the peer's 401 at once, not a 504 at the read timeout.
func TestH2EarlyAnswerBufferedBody(t *testing.T) {
	for _, size := range []int{100, 200 << 10} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			origin, _ := earlyH2Origin(t)
			peer := &Peer{Address: origin, Protocol: ProtoHTTP2, Options: PeerOptions{ReadTimeout: 20 * time.Second}}
			app := &recProxy{peer: func(*Session) (*Peer, error) { return peer, nil }, log: newLogRecorder()}
			svc, _ := newTestService[*testCtx](t, app, ServiceOptions{BufferRequestBody: true})
			addr := startProxy(t, svc)
			start := time.Now()
			got := rawExchange(t, addr, "POST /upload HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: "+
				strconv.Itoa(size)+"\r\n\r\n"+strings.Repeat("x", size))
			if !strings.HasPrefix(got, "HTTP/1.1 401 ") || !strings.HasSuffix(got, "denied") {
				t.Fatalf("got %q", got)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Fatalf("the answer took %v", d)
			}
		})
	}
}
