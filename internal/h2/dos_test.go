package h2

import (
	"bytes"
	"errors"
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

// attackDeadline bounds every attack: its loop stops when it passes.
const attackDeadline = 10 * time.Second

// rawClient is a hand-driven HTTP/2 client for attacks.
type rawClient struct {
	nc   net.Conn
	fr   *http2.Framer
	enc  *hpack.Encoder
	hbuf bytes.Buffer
}

func dialRaw(t testing.TB, addr string, settings ...http2.Setting) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(attackDeadline + 5*time.Second))
	c := &rawClient{nc: nc, fr: http2.NewFramer(nc, nc)}
	c.enc = hpack.NewEncoder(&c.hbuf)
	if _, err := io.WriteString(nc, ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := c.fr.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	return c
}

// requestBlock encodes the head of a GET request.
func (c *rawClient) requestBlock(extra ...hpack.HeaderField) []byte {
	c.hbuf.Reset()
	for _, f := range []hpack.HeaderField{
		{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"},
		{Name: ":authority", Value: "test"}, {Name: ":path", Value: "/"},
	} {
		_ = c.enc.WriteField(f)
	}
	for _, f := range extra {
		_ = c.enc.WriteField(f)
	}
	return bytes.Clone(c.hbuf.Bytes())
}

func (c *rawClient) open(id uint32, endStream bool) error {
	return c.fr.WriteHeaders(http2.HeadersFrameParam{
		StreamID: id, BlockFragment: c.requestBlock(), EndStream: endStream, EndHeaders: true,
	})
}

// frameLog collects what the server sends on a raw connection, read on a goroutine of
// its own until the connection ends. (It does not acknowledge SETTINGS: the server
// does not need it, and the attack goroutine owns the writing side.)
type frameLog struct {
	mu        sync.Mutex
	goAway    *http2.ErrCode
	rst       map[http2.ErrCode]int
	statuses  []string
	dataLen   int
	pingAcks  int
	pings     [][8]byte // PINGs the server sent
	goAwayIDs []uint32  // the last stream id of each GOAWAY
	done      chan struct{}
}

func (c *rawClient) readAll() *frameLog {
	l := &frameLog{rst: make(map[http2.ErrCode]int), done: make(chan struct{})}
	dec := hpack.NewDecoder(4096, func(f hpack.HeaderField) {
		if f.Name == ":status" {
			l.statuses = append(l.statuses, f.Value)
		}
	})
	go func() {
		defer close(l.done)
		for {
			f, err := c.fr.ReadFrame()
			if err != nil {
				return
			}
			l.mu.Lock()
			switch f := f.(type) {
			case *http2.GoAwayFrame:
				code := f.ErrCode
				l.goAway = &code
				l.goAwayIDs = append(l.goAwayIDs, f.LastStreamID)
			case *http2.RSTStreamFrame:
				l.rst[f.ErrCode]++
			case *http2.HeadersFrame:
				_, _ = dec.Write(f.HeaderBlockFragment())
			case *http2.DataFrame:
				l.dataLen += len(f.Data())
			case *http2.PingFrame:
				if f.IsAck() {
					l.pingAcks++
				} else {
					l.pings = append(l.pings, f.Data)
				}
			}
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *frameLog) goAwayCode() (http2.ErrCode, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.goAway == nil {
		return 0, false
	}
	return *l.goAway, true
}

func (l *frameLog) resets(code http2.ErrCode) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rst[code]
}

// attackUntil runs step (i = 0, 1, ...) until it fails (the server closed the
// connection), stop reports true, or the count or attackDeadline runs out.
func attackUntil(t testing.TB, maxSteps int, stop func() bool, step func(i int) error) int {
	deadline := time.Now().Add(attackDeadline)
	i := 0
	for ; i < maxSteps && time.Now().Before(deadline) && !stop(); i++ {
		if step(i) != nil {
			break
		}
	}
	return i
}

// keepServing runs requests from a well-behaved client on its own connection until
// the returned function is called, which fails the test if any request failed or none
// succeeded.
func keepServing(t *testing.T, addr string) (stop func()) {
	client, _ := h2Client(t, false)
	var ok atomic.Int64
	var firstErr atomic.Value
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			default:
			}
			resp, err := client.Get("http://" + addr + "/")
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if err == nil && resp.StatusCode != 200 {
					err = errors.New(resp.Status)
				}
			}
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
				return
			}
			ok.Add(1)
		}
	}()
	return func() {
		waitFor(t, 5*time.Second, "a request of the good client", func() bool { return ok.Load() > 0 || firstErr.Load() != nil })
		close(quit)
		<-done
		if err := firstErr.Load(); err != nil {
			t.Errorf("good client failed during the attack: %v", err)
		}
		t.Logf("good client: %d requests served during the attack", ok.Load())
	}
}

// expectGoAway waits for the server's GOAWAY on an attacked connection.
func expectGoAway(t *testing.T, l *frameLog, want http2.ErrCode) {
	t.Helper()
	select {
	case <-l.done:
	case <-time.After(attackDeadline):
		t.Fatal("attacked connection not closed")
	}
	code, ok := l.goAwayCode()
	if !ok || code != want {
		t.Fatalf("GOAWAY %v (received: %v), want %v", code, ok, want)
	}
}

func TestRapidReset(t *testing.T) {
	srv := startServer(t, Options{MaxResets: 100}, echoHandler, nil)
	stop := keepServing(t, srv.addr())
	c := dialRaw(t, srv.addr())
	l := c.readAll()
	n := attackUntil(t, 100000, func() bool { _, ok := l.goAwayCode(); return ok }, func(i int) error {
		id := uint32(2*i + 1)
		if err := c.open(id, false); err != nil {
			return err
		}
		return c.fr.WriteRSTStream(id, http2.ErrCodeCancel)
	})
	expectGoAway(t, l, http2.ErrCodeEnhanceYourCalm)
	stop()
	t.Logf("%d HEADERS+RST_STREAM pairs sent before GOAWAY(ENHANCE_YOUR_CALM)", n)
}

func TestContinuationFlood(t *testing.T) {
	for _, tc := range []struct {
		name string
		frag func(*rawClient) []byte
	}{
		{"empty-frames", func(*rawClient) []byte { return nil }},
		{"large-fields", func(c *rawClient) []byte {
			c.hbuf.Reset()
			_ = c.enc.WriteField(hpack.HeaderField{Name: "x-flood", Value: strings.Repeat("a", 8000), Sensitive: true})
			return bytes.Clone(c.hbuf.Bytes())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, Options{}, echoHandler, nil)
			stop := keepServing(t, srv.addr())
			c := dialRaw(t, srv.addr())
			l := c.readAll()
			if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.requestBlock()}); err != nil {
				t.Fatal(err)
			}
			frag := tc.frag(c)
			n := attackUntil(t, 1000000, func() bool { _, ok := l.goAwayCode(); return ok }, func(int) error {
				return c.fr.WriteContinuation(1, false, frag)
			})
			expectGoAway(t, l, http2.ErrCodeEnhanceYourCalm)
			stop()
			t.Logf("%d CONTINUATION frames sent before GOAWAY(ENHANCE_YOUR_CALM)", n)
		})
	}
}

func TestControlFrameFlood(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*rawClient) error
		step  func(*rawClient, int) error
	}{
		{name: "SETTINGS", step: func(c *rawClient, _ int) error { return c.fr.WriteSettings() }},
		{name: "PING", step: func(c *rawClient, i int) error { return c.fr.WritePing(false, [8]byte{byte(i)}) }},
		{name: "PRIORITY", step: func(c *rawClient, i int) error {
			return c.fr.WritePriority(uint32(2*i+101), http2.PriorityParam{StreamDep: 1, Weight: 10})
		}},
		{name: "WINDOW_UPDATE", step: func(c *rawClient, _ int) error { return c.fr.WriteWindowUpdate(0, 1) }},
		{
			name:  "empty-DATA",
			setup: func(c *rawClient) error { return c.open(1, false) },
			step:  func(c *rawClient, _ int) error { return c.fr.WriteData(1, false, nil) },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, Options{MaxControlFrames: 200}, echoHandler, nil)
			stop := keepServing(t, srv.addr())
			c := dialRaw(t, srv.addr())
			l := c.readAll()
			if tc.setup != nil {
				if err := tc.setup(c); err != nil {
					t.Fatal(err)
				}
			}
			n := attackUntil(t, 1000000, func() bool { _, ok := l.goAwayCode(); return ok }, func(i int) error {
				return tc.step(c, i)
			})
			expectGoAway(t, l, http2.ErrCodeEnhanceYourCalm)
			stop()
			t.Logf("%d %s frames sent before GOAWAY(ENHANCE_YOUR_CALM)", n, tc.name)
		})
	}
}

// TestHPACKBomb sends a header block of 2 KiB that decodes to 400 KiB by referring
// 100 times to one large dynamic table entry. The header list size is counted on the
// decoded fields, so the request is answered 431 without its fields being kept, and
// the connection goes on serving.
func TestHPACKBomb(t *testing.T) {
	srv := startServer(t, Options{}, echoHandler, nil)
	stop := keepServing(t, srv.addr())
	c := dialRaw(t, srv.addr())
	l := c.readAll()
	block := c.requestBlock(hpack.HeaderField{Name: "x-bomb", Value: strings.Repeat("b", 4000)})
	for range 100 {
		block = append(block, 0x80|62) // indexed field: the newest dynamic entry
	}
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.open(3, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "two responses", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.statuses) == 2
	})
	l.mu.Lock()
	got := strings.Join(l.statuses, ",")
	l.mu.Unlock()
	if got != "431,200" {
		t.Fatalf("statuses %s, want 431,200", got)
	}
	stop()
}

// TestZeroWindowStall opens streams with a zero flow-control window and never opens
// it. The handlers' writes wait without the server buffering the response, and fail
// with ErrWriteTimeout after WriteTimeout; the streams are reset.
func TestZeroWindowStall(t *testing.T) {
	const streams = 20
	errs := make(chan error, streams)
	big := make([]byte, 1<<20)
	h := func(st *Stream) {
		if st.Request().Authority != "test" { // the good client
			echoHandler(st)
			return
		}
		if err := st.WriteHeaders(200, nil, false); err != nil {
			errs <- err
			return
		}
		errs <- st.WriteData(big, true)
	}
	pool := NewBufPool(0)
	srv := startServer(t, Options{WriteTimeout: 300 * time.Millisecond, Pool: pool}, h, nil)
	stop := keepServing(t, srv.addr())
	c := dialRaw(t, srv.addr(), http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	l := c.readAll()
	for i := range streams {
		if err := c.open(uint32(2*i+1), true); err != nil {
			t.Fatal(err)
		}
	}
	for range streams {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrWriteTimeout) {
				t.Fatalf("handler write: %v, want ErrWriteTimeout", err)
			}
		case <-time.After(attackDeadline):
			t.Fatal("handler write did not time out")
		}
	}
	waitFor(t, 5*time.Second, "RST_STREAM(CANCEL) for every stream", func() bool { return l.resets(http2.ErrCodeCancel) == streams })
	l.mu.Lock()
	if l.dataLen != 0 {
		t.Errorf("%d bytes of DATA sent into a zero window", l.dataLen)
	}
	l.mu.Unlock()
	stop()
}

// TestStreamLimit opens more streams than MaxConcurrentStreams: the extra ones are
// refused with REFUSED_STREAM, the others are served.
func TestStreamLimit(t *testing.T) {
	const limit, extra = 4, 20
	srv := startServer(t, Options{MaxConcurrentStreams: limit}, echoHandler, nil)
	stop := keepServing(t, srv.addr())
	c := dialRaw(t, srv.addr())
	l := c.readAll()
	for i := range limit + extra {
		if err := c.open(uint32(2*i+1), false); err != nil { // open: handlers wait for the body
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "REFUSED_STREAM for every extra stream", func() bool { return l.resets(http2.ErrCodeRefusedStream) == extra })
	for i := range limit {
		if err := c.fr.WriteData(uint32(2*i+1), true, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "the admitted streams' responses", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.statuses) == limit
	})
	stop()
}
