package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gtls "github.com/gotthard-proxy/gotthard/tls"
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
	settled chan struct{} // closed once the proxy's SETTINGS are acknowledged
}

func dialAttacker(t *testing.T, addr string) *attacker {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	a := &attacker{nc: nc, fr: http2.NewFramer(nc, nc), resets: map[http2.ErrCode]int{},
		readErr: make(chan struct{}), settled: make(chan struct{})}
	a.enc = hpack.NewEncoder(&a.hbuf)
	a.dec = hpack.NewDecoder(4096, func(f hpack.HeaderField) {
		if f.Name == ":status" {
			a.status = append(a.status, f.Value)
		}
	})
	io.WriteString(nc, http2.ClientPreface)
	a.fr.WriteSettings()
	go a.readLoop()
	// The acknowledgement of the proxy's SETTINGS must not land inside a header block
	// that an attack leaves open (a frame between HEADERS and CONTINUATION is a
	// PROTOCOL_ERROR, RFC 9113 §6.10), so it is sent before any attack starts.
	select {
	case <-a.settled:
	case <-a.readErr:
	case <-time.After(10 * time.Second):
		t.Fatal("no SETTINGS from the proxy")
	}
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
				select {
				case <-a.settled:
				default:
					close(a.settled)
				}
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
			svc, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, tt.opts)
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

// vmRSS returns the process's resident set size from /proc/self/status, or, where
// there is none, the memory the Go runtime holds from the system.
func vmRSS() uint64 {
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				if err == nil {
					return kb << 10
				}
			}
		}
	}
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// rapidResetter opens HTTP/2 connections over TLS to addr and on each opens streams
// and resets them at once (CVE-2023-44487), as fast as it can, until stop; when the
// proxy ends a connection it dials a new one. It returns the streams it opened and
// the connections it used.
func rapidResetter(addr string, cc *tls.Config, stop <-chan struct{}) (streams, conns int) {
	for {
		select {
		case <-stop:
			return streams, conns
		default:
		}
		nc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cc)
		if err != nil { // the proxy is busy, or gone: try again a little later
			select {
			case <-stop:
				return streams, conns
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		conns++
		streams += rapidResetConn(nc, stop)
		nc.Close()
	}
}

// rapidResetConn runs the rapid reset attack on one connection until the proxy ends
// it or stop, and returns the streams it opened.
func rapidResetConn(nc net.Conn, stop <-chan struct{}) int {
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	ended := make(chan struct{})
	go func() { // reads (and drops) what the proxy sends, until GOAWAY or the end
		defer close(ended)
		fr := http2.NewFramer(io.Discard, nc)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			if _, ok := f.(*http2.GoAwayFrame); ok {
				return
			}
		}
	}()
	defer func() {
		nc.Close()
		<-ended
	}()
	bw := bufio.NewWriterSize(nc, 16<<10)
	fr := http2.NewFramer(bw, nil)
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	for _, f := range []hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: "x"}, {Name: ":path", Value: "/slow"}} {
		enc.WriteField(f)
	}
	block := hbuf.Bytes()
	io.WriteString(bw, http2.ClientPreface)
	fr.WriteSettings()
	n := 0
	for id := uint32(1); id < 1<<31; id += 2 {
		select {
		case <-stop:
			return n
		case <-ended:
			return n
		default:
		}
		if fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true}) != nil ||
			fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
			return n
		}
		n++
		if n%64 == 0 {
			if bw.Flush() != nil {
				return n
			}
			// The attackers share this process's scheduler with the proxy and the
			// legitimate client, unlike real attackers on machines of their own.
			runtime.Gosched()
		}
	}
	return n
}

// rapidResetEnv carries "address,CA file,attackers,duration" to the process that
// runs TestHTTP2RapidResetAttackers for TestHTTP2RapidResetBounded.
const rapidResetEnv = "GOTTHARD_TEST_RAPID_RESET"

// TestHTTP2RapidResetAttackers is the attacking side of TestHTTP2RapidResetBounded,
// run in a process of its own; it is skipped otherwise.
func TestHTTP2RapidResetAttackers(t *testing.T) {
	v := os.Getenv(rapidResetEnv)
	if v == "" {
		t.Skip("run by TestHTTP2RapidResetBounded")
	}
	parts := strings.Split(v, ",")
	if len(parts) != 4 {
		t.Fatalf("%s=%q", rapidResetEnv, v)
	}
	ca, err := os.ReadFile(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca)
	n, err := strconv.Atoi(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	d, err := time.ParseDuration(parts[3])
	if err != nil {
		t.Fatal(err)
	}
	cc := &tls.Config{ServerName: "proxy.test", RootCAs: roots, NextProtos: []string{"h2"}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var streams, conns atomic.Int64
	for range n {
		wg.Go(func() {
			s, c := rapidResetter(parts[0], cc, stop)
			streams.Add(int64(s))
			conns.Add(int64(c))
		})
	}
	<-time.After(d) // the attack's duration
	close(stop)
	wg.Wait()
	fmt.Printf("attack: %d streams, %d connections\n", streams.Load(), conns.Load())
}

// TestHTTP2RapidResetBounded runs the rapid reset attack (CVE-2023-44487) against the
// proxy's TLS listener from 16 connections that reconnect when the proxy ends them,
// with a slow origin so that the work of reset streams would pile up, while a
// legitimate HTTP/2 client on a connection of its own keeps sending requests. The
// process's goroutines and memory must stay bounded and the legitimate client fast.
func TestHTTP2RapidResetBounded(t *testing.T) {
	attack := 10 * time.Second
	if testing.Short() {
		attack = 3 * time.Second
	}
	const attackers = 16
	const maxGoroutines = 1000
	const maxGrowth = 64 << 20
	maxP99 := 50 * time.Millisecond
	if raceDetector {
		maxP99 = 2 * time.Second
	}

	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-time.After(100 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
		io.WriteString(w, "ok")
	}))
	p := newPKI(t)
	cert := p.issue(t, "proxy", []string{"proxy.test"}, false)
	svc, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)},
		ServiceOptions{Logger: slog.New(slog.DiscardHandler)})
	_, addr := startTLSProxy(t, svc, gtls.Options{Certificates: []gtls.CertFile{cert}})
	cc := &tls.Config{ServerName: "proxy.test", RootCAs: p.pool(), NextProtos: []string{"h2"}}

	// The legitimate client, warmed up before the baseline is taken.
	var h2only http.Protocols
	h2only.SetHTTP2(true)
	tr := &http.Transport{TLSClientConfig: cc, Protocols: &h2only}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	get := func() error {
		resp, err := cl.Get("https://" + addr + "/fast")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return err
		}
		if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
			return fmt.Errorf("status %d over %s", resp.StatusCode, resp.Proto)
		}
		return nil
	}
	for range 20 {
		if err := get(); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	baseRSS, baseG := vmRSS(), runtime.NumGoroutine()

	// The attackers run in a process of their own, as they would on machines of their
	// own: in this one they would compete with the proxy for its scheduler.
	var attackOut bytes.Buffer
	cmd := exec.Command(os.Args[0], "-test.run=^TestHTTP2RapidResetAttackers$", "-test.v")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%s,%d,%s", rapidResetEnv, addr, p.caFile, attackers, attack))
	cmd.Stdout, cmd.Stderr = &attackOut, &attackOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // if the test ended early
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// Each proxied request is paired with one straight to the origin: what this
	// machine's load alone does to a request's latency. A proxied request waits for a
	// processor at about four times as many points (client, proxy connection, proxy
	// handler, origin, and back), so its p99 may exceed the bound by four times the
	// direct p99: on an idle machine that is a millisecond or two.
	direct := testClient(t)
	var lat, directLat []time.Duration
	var failures int
	var firstErr error
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now()
			if resp, err := direct.Get("http://" + origin + "/fast"); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				directLat = append(directLat, time.Since(start))
			}
			start = time.Now()
			if err := get(); err != nil {
				failures++
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			lat = append(lat, time.Since(start))
		}
	})
	var peakG int
	var peakRSS uint64
	sample := time.NewTicker(20 * time.Millisecond)
	end := time.After(attack)
sampling:
	for {
		select {
		case <-sample.C:
			peakG = max(peakG, runtime.NumGoroutine())
			peakRSS = max(peakRSS, vmRSS())
		case <-end:
			break sampling
		}
	}
	sample.Stop()
	close(stop)
	wg.Wait()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("attackers: %v\n%s", err, attackOut.String())
	}
	var streams, conns int
	if i := strings.Index(attackOut.String(), "attack: "); i < 0 {
		t.Fatalf("attackers reported nothing:\n%s", attackOut.String())
	} else {
		fmt.Sscanf(attackOut.String()[i:], "attack: %d streams, %d connections", &streams, &conns)
	}

	p50, p99 := quantile(lat, 0.5), quantile(lat, 0.99)
	directP99 := quantile(directLat, 0.99)
	growth := int64(peakRSS) - int64(baseRSS)
	t.Logf("%v of attack: %d streams reset on %d connections; goroutines %d before, peak %d; RSS %d MiB before, growth %d MiB; legitimate client: %d requests, %d failed, p50 %v, p99 %v (straight to the origin: p99 %v)",
		attack, streams, conns, baseG, peakG, baseRSS>>20, growth>>20, len(lat), failures, p50, p99, directP99)
	if peakG >= maxGoroutines {
		t.Errorf("goroutines peaked at %d, want under %d", peakG, maxGoroutines)
	}
	if growth >= maxGrowth {
		t.Errorf("RSS grew by %d MiB, want under %d MiB", growth>>20, maxGrowth>>20)
	}
	if len(lat) == 0 || p99 >= maxP99+4*directP99 {
		t.Errorf("legitimate client: %d requests, p99 %v, want under %v + 4 × %v", len(lat), p99, maxP99, directP99)
	}
	if failures > 0 {
		t.Errorf("legitimate client: %d requests failed, the first with %v", failures, firstErr)
	}
}

// quantile returns the q-quantile of d (sorting d), or 0 if d is empty.
func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[int(float64(len(d)-1)*q)]
}

// TestH2MaxStreams checks that ServiceOptions.H2MaxStreams bounds the HTTP/2 requests
// in flight over all the service's connections: with one held at the origin, a stream
// on another connection is refused with REFUSED_STREAM, and served once the first
// request has ended.
func TestH2MaxStreams(t *testing.T) {
	hold := make(chan struct{})
	var held atomic.Int32
	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			held.Add(1)
			<-hold
		}
		io.WriteString(w, "ok")
	}))
	svc, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{H2MaxStreams: 1})
	addr := startProxy(t, svc)
	released := false
	release := func() {
		if !released {
			released = true
			close(hold)
		}
	}
	defer release()

	a := dialAttacker(t, addr)
	a.write(func(fr *http2.Framer) error {
		return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: a.block("/hold"), EndStream: true, EndHeaders: true})
	})
	waitUntil(t, "the first request at the origin", func() bool { return held.Load() == 1 })

	b := dialAttacker(t, addr)
	b.write(func(fr *http2.Framer) error {
		return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b.block("/"), EndStream: true, EndHeaders: true})
	})
	waitUntil(t, "REFUSED_STREAM on the second connection", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.resets[http2.ErrCodeRefusedStream] == 1
	})

	release()
	waitUntil(t, "the first request answered", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return len(a.status) == 1
	})
	// Its place is given back when its handler returns, just after the answer: a
	// stream sent before may still be refused, so each refused one is followed by
	// another.
	sent := 1
	waitUntil(t, "a stream served on the second connection", func() bool {
		b.mu.Lock()
		served, refused := len(b.status), b.resets[http2.ErrCodeRefusedStream]
		b.mu.Unlock()
		if served == 1 {
			return true
		}
		if refused == sent {
			id := uint32(2*sent + 1)
			sent++
			b.write(func(fr *http2.Framer) error {
				return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: b.block("/"), EndStream: true, EndHeaders: true})
			})
		}
		return false
	})
}
