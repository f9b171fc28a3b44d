package compress_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	kflate "github.com/klauspost/compress/flate"

	"github.com/gotthard-proxy/gotthard/modules/compress"
	"github.com/gotthard-proxy/gotthard/proxy"
	"github.com/gotthard-proxy/gotthard/proxy/proxytest"
)

// logLines is a slog handler that keeps the messages of the records it gets, for a
// test to count the proxy's log lines.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (*logLines) Enabled(context.Context, slog.Level) bool { return true }
func (l *logLines) WithAttrs([]slog.Attr) slog.Handler     { return l }
func (l *logLines) WithGroup(string) slog.Handler          { return l }

func (l *logLines) Handle(_ context.Context, r slog.Record) error {
	line := r.Message
	r.Attrs(func(a slog.Attr) bool {
		line += " " + a.Key + "=" + a.Value.String()
		return true
	})
	l.mu.Lock()
	l.lines = append(l.lines, line)
	l.mu.Unlock()
	return nil
}

// take returns the lines logged so far and forgets them.
func (l *logLines) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := l.lines
	l.lines = nil
	return lines
}

// badInputProxy runs a proxy over HTTP/1.1 to origin with modules, logging to the
// returned handler and reporting each request's error on app.errs.
func badInputProxy(t *testing.T, origin *proxytest.Origin, modules ...proxy.Module) (string, *http.Client, *logged, *logLines) {
	t.Helper()
	logs := &logLines{}
	app := &logged{errs: make(chan error, 1)}
	app.Peer = origin.Peer()
	opts := proxyOpts(modules...)
	opts.Logger = slog.New(logs)
	svc := proxytest.NewService(t, "compress", app, opts)
	return "http://" + proxytest.Serve(t, svc), proxytest.H1Client(t, nil), app, logs
}

// loggedErr waits for the request's Logging and returns its error.
func loggedErr(t *testing.T, app *logged, what string) error {
	t.Helper()
	select {
	case err := <-app.errs:
		return err
	case <-time.After(wait):
		t.Fatalf("%s: no Logging", what)
		return nil
	}
}

// TestMalformedAcceptEncoding sends Accept-Encoding values that do not parse, or parse
// to nonsense, through a real proxy: each gets a 200 whose body decodes to the
// origin's with the Content-Encoding it names, and nothing is logged.
func TestMalformedAcceptEncoding(t *testing.T) {
	body := sample(20 << 10)
	origin := proxytest.NewOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write(body)
	}))
	base, cl, app, logs := badInputProxy(t, origin, newModule(t, compress.Options{}))
	for _, tt := range []struct {
		value string
		want  string // the coding the client gets
	}{
		// An element that does not parse is left out, as if the client had not named
		// the coding: no coding rather than a guess.
		{"gzip;q=", ""},
		{"gzip;q=abc", ""},
		{"gzip;q=1.0001", ""},
		{"gzip;q=-1", ""},
		{"gzip;q=abc, br", "br"},
		{";;;,,,", ""},
		{"gzip;;q=0.5,,br;", "br"}, // empty elements and parameters
		{"gz ip, b r", ""},         // not tokens
		{"GZIP ; Q = 0.9 , zstd;q=0", "gzip"},
		{"*;q=0", ""},               // refuses every coding
		{"identity;q=0, *;q=0", ""}, // refuses everything: the body as it is
		{"br;q=0.3,\tgzip;q=0.30", "br"},
		{strings.Repeat("x-unknown-coding;q=0.5, ", 100) + "gzip;q=0.1", "gzip"},
	} {
		resp, raw := get(t, cl, "GET", base+"/", "Accept-Encoding", tt.value)
		name := tt.value
		if len(name) > 40 {
			name = name[:40] + "..."
		}
		if resp.StatusCode != 200 {
			t.Fatalf("%q: status %d", name, resp.StatusCode)
		}
		ce := resp.Header.Get("Content-Encoding")
		if ce != tt.want {
			t.Errorf("%q: Content-Encoding %q, want %q", name, ce, tt.want)
		}
		got, err := io.ReadAll(reader(t, ce, bytes.NewReader(raw)))
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("%q: %d bytes decoded (%v), want %d", name, len(got), err, len(body))
		}
		if err := loggedErr(t, app, name); err != nil {
			t.Errorf("%q: Logging saw %v", name, err)
		}
	}
	if lines := logs.take(); len(lines) != 0 {
		t.Errorf("the proxy logged %q", lines)
	}
	// A field line longer than the proxy's limit (MaxLineBytes, 8 KiB) is refused
	// before the module sees it. (Not much longer: the proxy answers without reading
	// the rest of a head, and a client still writing it could get a reset instead.)
	resp, _ := get(t, cl, "GET", base+"/", "Accept-Encoding", strings.Repeat("x-unknown-coding;q=0.5, ", 400))
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("an oversized Accept-Encoding: status %d, want 431", resp.StatusCode)
	}
	// Control characters, which a client library would not send: HTTP/1.1 refuses
	// them in a field value (RFC 9110 §5.5).
	addr := strings.TrimPrefix(base, "http://")
	if status, _, _ := rawGet(t, addr, "/", "Accept-Encoding: \x01gzip\x7f"); status != http.StatusBadRequest {
		t.Errorf("Accept-Encoding with control characters: status %d, want 400", status)
	}
}

// rawGet sends a GET for path, with the given header lines, on a connection of its own, as a client that does not
// retry, and returns the response's status (0 if none came), the body bytes read and
// whether the body ended cleanly.
func rawGet(t *testing.T, addr, path string, fields ...string) (status int, body []byte, clean bool) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(wait))
	head := "GET " + path + " HTTP/1.1\r\nHost: origin\r\nConnection: close\r\n"
	for _, f := range fields {
		head += f + "\r\n"
	}
	io.WriteString(c, head+"\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, nil, false
	}
	body, err = io.ReadAll(resp.Body)
	return resp.StatusCode, body, err == nil
}

// TestCorruptGzipUpstream sends gzip bodies that are not valid gzip through the
// decoder: each request fails with ErrCorrupt, the client sees the body cut short, and
// the proxy logs one line for it.
func TestCorruptGzipUpstream(t *testing.T) {
	body := sample(40 << 10)
	var good bytes.Buffer
	zw := gzip.NewWriter(&good)
	zw.Write(body)
	zw.Close()
	flipped := bytes.Clone(good.Bytes())
	flipped[len(flipped)/2] ^= 0xff // a bit error in the deflate data
	badCRC := bytes.Clone(good.Bytes())
	badCRC[len(badCRC)-6] ^= 0x01 // the trailer's CRC-32
	cases := map[string][]byte{
		"garbage":   []byte(strings.Repeat("this is not gzip at all. ", 400)),
		"flipped":   flipped,
		"truncated": good.Bytes()[:good.Len()*2/3],
		"bad-crc":   badCRC,
		"trailing":  append(bytes.Clone(good.Bytes()), "junk after the end"...),
	}
	origin := proxytest.NewOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		src := good.Bytes()
		if c, ok := cases[strings.TrimPrefix(r.URL.Path, "/")]; ok {
			src = c
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Encoding", "gzip")
		for i := 0; i < len(src); i += 8 << 10 {
			if _, err := w.Write(src[i:min(i+8<<10, len(src))]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}))
	dec, err := compress.NewDecoder(compress.DecoderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	base, _, app, logs := badInputProxy(t, origin, dec)
	addr := strings.TrimPrefix(base, "http://")

	// The valid body first: it decodes, and nothing is logged.
	status, raw, clean := rawGet(t, addr, "/good")
	if status != 200 || !clean || !bytes.Equal(raw, body) {
		t.Fatalf("good: status %d, %d bytes, clean end %v", status, len(raw), clean)
	}
	if err := loggedErr(t, app, "good"); err != nil {
		t.Fatalf("good: Logging saw %v", err)
	}
	if lines := logs.take(); len(lines) != 0 {
		t.Fatalf("good: the proxy logged %q", lines)
	}

	for name := range cases {
		// The head goes out before the body is decoded: the failure cuts the
		// response short (or leaves it unsent, when it comes with the first piece).
		status, raw, clean := rawGet(t, addr, "/"+name)
		if clean {
			t.Errorf("%s: status %d and %d bytes with a clean end", name, status, len(raw))
		}
		if err := loggedErr(t, app, name); !errors.Is(err, compress.ErrCorrupt) {
			t.Errorf("%s: Logging saw %v, want ErrCorrupt", name, err)
		}
		lines := logs.take()
		if len(lines) != 1 || !strings.Contains(lines[0], "request failed") || !strings.Contains(lines[0], "corrupt") {
			t.Errorf("%s: the proxy logged %q, want one line for the corrupt body", name, lines)
		}
	}
}

// bombUnit is the deflate data, byte-aligned and not final, of unitSize zeros that
// follow at least 32 KiB of zeros: repeated n times after a first unit, it inflates to
// (n+1)·unitSize zeros. It is about a thousandth of what it codes.
const unitSize = 1 << 20

// bombUnit returns the repeated unit of bombUnits.
func bombUnit() []byte {
	_, unit := bombUnits()
	return unit
}

func bombUnits() (first, unit []byte) {
	var buf bytes.Buffer
	fw, err := kflate.NewWriter(&buf, kflate.BestCompression)
	if err != nil {
		panic(err)
	}
	zeros := make([]byte, unitSize)
	fw.Write(zeros)
	fw.Flush()
	first = bytes.Clone(buf.Bytes())
	buf.Reset()
	fw.Write(zeros)
	fw.Flush()
	return first, bytes.Clone(buf.Bytes())
}

// writeBomb writes a gzip stream that decodes to size zeros (a multiple of unitSize),
// made as it goes: it never holds more than one unit. It stops at the first write error
// and returns the bytes written.
func writeBomb(w io.Writer, size int64, flush func()) (int64, error) {
	first, unit := bombUnits()
	var sent int64
	write := func(b []byte) error {
		n, err := w.Write(b)
		sent += int64(n)
		return err
	}
	// RFC 1952 header: deflate, no flags, no time, OS unknown.
	if err := write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}); err != nil {
		return sent, err
	}
	zeros := make([]byte, unitSize)
	crc := uint32(0)
	for done := int64(0); done < size; done += unitSize {
		u := unit
		if done == 0 {
			u = first
		}
		if err := write(u); err != nil {
			return sent, err
		}
		crc = crc32.Update(crc, crc32.IEEETable, zeros)
		if flush != nil {
			flush()
		}
	}
	// A final empty fixed-Huffman block (bits 1, 01, then end of block 0000000), the
	// CRC-32 and the size modulo 2^32.
	tail := []byte{0x03, 0x00, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(tail[2:], crc)
	binary.LittleEndian.PutUint32(tail[6:], uint32(size))
	err := write(tail)
	return sent, err
}

// TestBombStream checks the generator TestGzipBomb uses: its stream is valid gzip and
// decodes to the size asked for.
func TestBombStream(t *testing.T) {
	const size = 48 << 20
	var buf bytes.Buffer
	if _, err := writeBomb(&buf, size, nil); err != nil {
		t.Fatal(err)
	}
	if buf.Len() > size/500 {
		t.Fatalf("%d bytes of gzip for %d zeros", buf.Len(), size)
	}
	zr, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, zr) // checks the CRC and the size
	if err != nil || n != size {
		t.Fatalf("decoded %d bytes (%v), want %d", n, err, size)
	}
}

// TestGzipBomb sends a gzip body that decodes to 10 GiB, made as it is sent, through
// the decoder: the request fails at MaxDecodedSize with ErrTooLarge and one log line,
// the origin stops well before its end, and the heap stays bounded while it happens.
func TestGzipBomb(t *testing.T) {
	const (
		bomb  = 10 << 30
		limit = compress.DefaultMaxDecodedSize
	)
	sent := make(chan int64, 1)
	origin := proxytest.NewOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Encoding", "gzip")
		n, _ := writeBomb(w, bomb, w.(http.Flusher).Flush)
		sent <- n
	}))
	dec, err := compress.NewDecoder(compress.DecoderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	base, cl, app, logs := badInputProxy(t, origin, dec)

	// The heap in use, sampled while the request runs: its peak over the heap before.
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.HeapInuse
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()

	req, _ := http.NewRequest("GET", base+"/bomb", nil)
	var got int64
	resp, err := cl.Do(req)
	if err == nil {
		var rerr error
		got, rerr = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if rerr == nil {
			t.Errorf("the client read %d bytes and a clean end", got)
		}
	}
	lerr := loggedErr(t, app, "bomb")
	close(stop)
	<-sampled
	if !errors.Is(lerr, compress.ErrTooLarge) {
		t.Fatalf("Logging saw %v, want ErrTooLarge", lerr)
	}
	if got > limit {
		t.Errorf("the client got %d bytes, over MaxDecodedSize (%d)", got, limit)
	}
	lines := logs.take()
	if len(lines) != 1 || !strings.Contains(lines[0], "request failed") {
		t.Errorf("the proxy logged %q, want one line", lines)
	}
	// The origin stops when the proxy closes its connection; what it sent before is
	// what the socket buffers took, a small part of the bomb's 10 MiB of gzip.
	select {
	case n := <-sent:
		t.Logf("the origin sent %d bytes of gzip (about %d MiB decoded) before its connection closed", n, (n-10)/int64(len(bombUnit()))+1)
		if n > 5<<20 {
			t.Errorf("the origin sent %d bytes of the bomb's gzip", n)
		}
	case <-time.After(wait):
		t.Fatal("the origin is still sending the bomb")
	}
	growth := int64(peak.Load()) - int64(before)
	t.Logf("heap in use: %d KiB before, peak %+d KiB while refusing a %d GiB bomb at %d MiB; client got %d bytes",
		before>>10, growth>>10, bomb>>30, limit>>20, got)
	if growth > limit {
		t.Errorf("the heap grew by %d bytes while decoding, more than MaxDecodedSize (%d)", growth, limit)
	}
}
