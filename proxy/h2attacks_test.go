package proxy

import (
	"bytes"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// attacker is a raw HTTP/2 client connection to a proxy, for the attack tests.
type attacker struct {
	nc   net.Conn
	fr   *http2.Framer
	wmu  sync.Mutex
	hbuf bytes.Buffer
	enc  *hpack.Encoder

	mu      sync.Mutex
	goAway  *http2.ErrCode
	closed  bool
	resets  map[http2.ErrCode]int
	status  []string
	dec     *hpack.Decoder
	readErr chan struct{}
}

func dialAttacker(t *testing.T, addr string) *attacker {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	a := &attacker{nc: nc, fr: http2.NewFramer(nc, nc), resets: map[http2.ErrCode]int{}, readErr: make(chan struct{})}
	a.enc = hpack.NewEncoder(&a.hbuf)
	a.dec = hpack.NewDecoder(4096, func(f hpack.HeaderField) {
		if f.Name == ":status" {
			a.status = append(a.status, f.Value)
		}
	})
	io.WriteString(nc, http2.ClientPreface)
	a.fr.WriteSettings()
	go a.readLoop()
	return a
}

func (a *attacker) readLoop() {
	defer close(a.readErr)
	rfr := http2.NewFramer(io.Discard, a.nc)
	for {
		f, err := rfr.ReadFrame()
		a.mu.Lock()
		if err != nil {
			a.closed = true
			a.mu.Unlock()
			return
		}
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			code := f.ErrCode
			a.goAway = &code
		case *http2.RSTStreamFrame:
			a.resets[f.ErrCode]++
		case *http2.HeadersFrame:
			a.dec.Write(f.HeaderBlockFragment())
		case *http2.SettingsFrame:
			if !f.IsAck() {
				a.wmu.Lock()
				a.fr.WriteSettingsAck()
				a.wmu.Unlock()
			}
		}
		a.mu.Unlock()
	}
}

// block encodes a request head for path with extra fields.
func (a *attacker) block(path string, extra ...hpack.HeaderField) []byte {
	a.hbuf.Reset()
	for _, f := range append([]hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"},
		{Name: ":authority", Value: "x"}, {Name: ":path", Value: path}}, extra...) {
		a.enc.WriteField(f)
	}
	return bytes.Clone(a.hbuf.Bytes())
}

func (a *attacker) write(f func(fr *http2.Framer) error) error {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	return f(a.fr)
}

// ended reports whether the proxy sent GOAWAY or closed the connection.
func (a *attacker) ended() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.goAway != nil || a.closed
}

// flood calls step until the proxy ends the connection, a write fails, or a bound is
// reached, and returns how many steps were taken.
func (a *attacker) flood(t *testing.T, step func(fr *http2.Framer, i int) error) int {
	deadline := time.Now().Add(10 * time.Second)
	i := 0
	for ; i < 1000000 && time.Now().Before(deadline) && !a.ended(); i++ {
		if a.write(func(fr *http2.Framer) error { return step(fr, i) }) != nil {
			break
		}
	}
	select {
	case <-a.readErr:
	case <-time.After(10 * time.Second):
	}
	return i
}

// normalClient keeps an HTTP/2 client busy on its own connection until stop, and
// reports how many of its requests succeeded and failed.
func normalClient(t *testing.T, addr string) (stop func() (ok, failed int)) {
	cl := h2cClient(t)
	var okN, failN atomic.Int32
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-done:
				return
			default:
			}
			resp, err := cl.Get("http://" + addr + "/normal")
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if err != nil || resp.StatusCode != 200 {
				failN.Add(1)
				continue
			}
			okN.Add(1)
		}
	}()
	return func() (int, int) {
		close(done)
		<-finished
		return int(okN.Load()), int(failN.Load())
	}
}

// TestHTTP2AttacksOnProxy attacks a running proxy over HTTP/2, each attack on its own
// connection while a normal client on another connection keeps being served: the
// attacker's connection is ended (or its streams reset), and the normal client sees
// no failure. Every attack is bounded in count and time.
func TestHTTP2AttacksOnProxy(t *testing.T) {
	origin, _ := echoOrigin(t)
	tests := []struct {
		name   string
		opts   ServiceOptions
		attack func(t *testing.T, a *attacker)
	}{
		{"rapid reset", ServiceOptions{}, func(t *testing.T, a *attacker) {
			// CVE-2023-44487: open a stream and reset it at once, over and over.
			block := a.block("/")
			n := a.flood(t, func(fr *http2.Framer, i int) error {
				id := uint32(2*i + 1)
				if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true}); err != nil {
					return err
				}
				return fr.WriteRSTStream(id, http2.ErrCodeCancel)
			})
			wantEnded(t, a, n, http2.ErrCodeEnhanceYourCalm)
		}},
		{"CONTINUATION flood", ServiceOptions{}, func(t *testing.T, a *attacker) {
			a.write(func(fr *http2.Framer) error {
				return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: a.block("/")})
			})
			n := a.flood(t, func(fr *http2.Framer, _ int) error { return fr.WriteContinuation(1, false, nil) })
			wantEnded(t, a, n, http2.ErrCodeEnhanceYourCalm)
		}},
		{"SETTINGS flood", ServiceOptions{}, func(t *testing.T, a *attacker) {
			n := a.flood(t, func(fr *http2.Framer, _ int) error { return fr.WriteSettings() })
			wantEnded(t, a, n, http2.ErrCodeEnhanceYourCalm)
		}},
		{"PING flood", ServiceOptions{}, func(t *testing.T, a *attacker) {
			n := a.flood(t, func(fr *http2.Framer, i int) error { return fr.WritePing(false, [8]byte{byte(i)}) })
			wantEnded(t, a, n, http2.ErrCodeEnhanceYourCalm)
		}},
		{"WINDOW_UPDATE flood", ServiceOptions{}, func(t *testing.T, a *attacker) {
			n := a.flood(t, func(fr *http2.Framer, _ int) error { return fr.WriteWindowUpdate(0, 1) })
			wantEnded(t, a, n, http2.ErrCodeEnhanceYourCalm)
		}},
		{"empty DATA flood", ServiceOptions{}, func(t *testing.T, a *attacker) {
			a.write(func(fr *http2.Framer) error {
				return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: a.block("/"), EndHeaders: true})
			})
			n := a.flood(t, func(fr *http2.Framer, _ int) error { return fr.WriteData(1, false, nil) })
			wantEnded(t, a, n, http2.ErrCodeEnhanceYourCalm)
		}},
		{"HPACK bomb", ServiceOptions{}, func(t *testing.T, a *attacker) {
			block := a.block("/bomb", hpack.HeaderField{Name: "x-bomb", Value: strings.Repeat("b", 4000)})
			for range 100 {
				block = append(block, 0x80|62) // the newest dynamic table entry, again
			}
			a.write(func(fr *http2.Framer) error {
				return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndStream: true, EndHeaders: true})
			})
			a.write(func(fr *http2.Framer) error {
				return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: a.block("/after"), EndStream: true, EndHeaders: true})
			})
			waitUntil(t, "two answers on the attacker's connection", func() bool {
				a.mu.Lock()
				defer a.mu.Unlock()
				return len(a.status) == 2
			})
			a.mu.Lock()
			got := strings.Join(a.status, ",")
			a.mu.Unlock()
			if got != "431,200" {
				t.Fatalf("statuses %s, want 431,200", got)
			}
		}},
		{"zero-window stall", ServiceOptions{SendTimeout: 300 * time.Millisecond}, func(t *testing.T, a *attacker) {
			// A client that never opens its window for large responses holds nothing
			// for long: each stalled stream is reset when SendTimeout passes.
			a.write(func(fr *http2.Framer) error {
				return fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
			})
			const streams = 10
			for i := range streams {
				a.write(func(fr *http2.Framer) error {
					return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1),
						BlockFragment: a.block("/big?size=1048576"), EndStream: true, EndHeaders: true})
				})
			}
			waitUntil(t, "every stalled stream reset", func() bool {
				a.mu.Lock()
				defer a.mu.Unlock()
				return a.resets[http2.ErrCodeCancel] == streams
			})
		}},
		{"more streams than allowed", ServiceOptions{H2MaxConcurrentStreams: 4, SendTimeout: 2 * time.Second}, func(t *testing.T, a *attacker) {
			a.write(func(fr *http2.Framer) error {
				return fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
			})
			for i := range 24 {
				a.write(func(fr *http2.Framer) error {
					return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1),
						BlockFragment: a.block("/big?size=1048576"), EndStream: true, EndHeaders: true})
				})
			}
			waitUntil(t, "20 streams refused", func() bool {
				a.mu.Lock()
				defer a.mu.Unlock()
				return a.resets[http2.ErrCodeRefusedStream] == 20
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, _ := newTestService[*testCtx](t, fixedProxy{peer: NewPeer(origin)}, tt.opts)
			addr := startProxy(t, svc)
			stop := normalClient(t, addr)
			a := dialAttacker(t, addr)
			tt.attack(t, a)
			ok, failed := stop()
			if failed > 0 || ok == 0 {
				t.Fatalf("normal client: %d served, %d failed", ok, failed)
			}
		})
	}
}

func wantEnded(t *testing.T, a *attacker, n int, code http2.ErrCode) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.goAway != nil && *a.goAway != code:
		t.Fatalf("GOAWAY %v after %d frames, want %v", *a.goAway, n, code)
	case a.goAway == nil && !a.closed:
		t.Fatalf("connection neither sent GOAWAY nor closed after %d frames", n)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
