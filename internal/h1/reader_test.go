package h1

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// pipelined is a stream of requests in one write: no body, a length body, a chunked
// body with extensions and trailers, an HTTP/1.0 request, with empty lines between.
var pipelined = "GET /a HTTP/1.1\r\nHost: a\r\nX-Long: " + strings.Repeat("v", 100) + "\r\n\r\n" +
	"POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" +
	"\r\nPOST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
	"5;ext=\"q \\\" x\"\r\nhello\r\n1A ; a=b\r\n" + strings.Repeat("z", 26) + "\r\n0\r\nX-T: 1\r\nY-T:  2 \r\n\r\n" +
	"GET /d HTTP/1.0\r\n\r\n"

const pipelinedWant = `GET /a 1.1 host=a body=none cl=0 ka=true exp=false up=<nil> n=2
body ""
POST /b 1.1 host=a body=length cl=5 ka=true exp=false up=<nil> n=2
body "hello"
POST /c 1.1 host=a body=chunked cl=0 ka=true exp=false up=<nil> n=2
body "hellozzzzzzzzzzzzzzzzzzzzzzzzzz"
trailer X-T: 1
trailer Y-T: 2
GET /d 1.0 host=<nil> body=none cl=0 ka=false exp=false up=<nil> n=0
body ""
end EOF
`

// errString renders err without offsets, which depend on buffer positions.
func errString(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return fmt.Sprintf("%d %s", e.Status, e.Reason)
	}
	return err.Error()
}

// transcript reads requests and their bodies from rd until an error and renders them.
func transcript(t testing.TB, rd io.Reader, pool *BufPool, lim Limits) string {
	r := NewReader(rd, pool, lim)
	var sb strings.Builder
	var h RequestHead
	var body []byte
	for {
		if err := r.ReadRequestHead(&h); err != nil {
			fmt.Fprintf(&sb, "end %s\n", errString(err))
			break
		}
		sb.WriteString(h.summary() + "\n")
		body = body[:0]
		var err error
		for {
			var p []byte
			p, err = r.ReadBody()
			body = append(body, p...)
			if err != nil {
				break
			}
		}
		fmt.Fprintf(&sb, "body %q\n", body)
		if err != io.EOF {
			fmt.Fprintf(&sb, "end %s\n", errString(err))
			break
		}
		if !r.BodyDone() {
			t.Errorf("BodyDone false after io.EOF")
		}
		for _, f := range r.Trailers() {
			fmt.Fprintf(&sb, "trailer %s: %s\n", f.Name, f.Value)
		}
		r.Release()
	}
	r.Release()
	if r.Buffered() == 0 && pool.InUse() != 0 {
		t.Errorf("pool.InUse() = %d after Release", pool.InUse())
	}
	return sb.String()
}

// splitReader returns its parts one Read at a time.
type splitReader struct{ parts [][]byte }

func (s *splitReader) Read(p []byte) (int, error) {
	for len(s.parts) > 0 && len(s.parts[0]) == 0 {
		s.parts = s.parts[1:]
	}
	if len(s.parts) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.parts[0])
	s.parts[0] = s.parts[0][n:]
	return n, nil
}

func TestReaderPipelined(t *testing.T) {
	for _, size := range []int{0, 64, 100, 4096} {
		t.Run(fmt.Sprint("pool", size), func(t *testing.T) {
			pool := NewBufPool(size)
			if got := transcript(t, strings.NewReader(pipelined), pool, Limits{}); got != pipelinedWant {
				t.Fatalf("got\n%s\nwant\n%s", got, pipelinedWant)
			}
			if got := transcript(t, iotest.OneByteReader(strings.NewReader(pipelined)), pool, Limits{}); got != pipelinedWant {
				t.Fatalf("one byte: got\n%s\nwant\n%s", got, pipelinedWant)
			}
			if got := transcript(t, iotest.HalfReader(strings.NewReader(pipelined)), pool, Limits{}); got != pipelinedWant {
				t.Fatalf("half: got\n%s\nwant\n%s", got, pipelinedWant)
			}
		})
	}
}

// TestReaderSplitEverywhere splits the stream in two reads at every byte boundary
// (and in three around every position): the transcript must not change.
func TestReaderSplitEverywhere(t *testing.T) {
	in := []byte(pipelined)
	for _, size := range []int{0, 64} {
		pool := NewBufPool(size)
		for i := 0; i <= len(in); i++ {
			parts := [][]byte{bytes.Clone(in[:i]), bytes.Clone(in[i:])}
			if got := transcript(t, &splitReader{parts: parts}, pool, Limits{}); got != pipelinedWant {
				t.Fatalf("pool %d split at %d: got\n%s", size, i, got)
			}
			if i+1 < len(in) {
				parts := [][]byte{bytes.Clone(in[:i]), bytes.Clone(in[i : i+1]), bytes.Clone(in[i+1:])}
				if got := transcript(t, &splitReader{parts: parts}, pool, Limits{}); got != pipelinedWant {
					t.Fatalf("pool %d split around %d: got\n%s", size, i, got)
				}
			}
		}
	}
}

func TestReaderPipe(t *testing.T) {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < len(pipelined); i += 7 {
			if _, err := pw.Write([]byte(pipelined[i:min(i+7, len(pipelined))])); err != nil {
				return
			}
		}
		pw.Close()
	}()
	if got := transcript(t, pr, NewBufPool(0), Limits{}); got != pipelinedWant {
		t.Fatalf("got\n%s", got)
	}
	<-done
}

func TestReaderTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	errc := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		_, err = c.Write([]byte(pipelined))
		errc <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := transcript(t, c, NewBufPool(0), Limits{}); got != pipelinedWant {
		t.Fatalf("got\n%s", got)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestReaderTimeoutIsNetError(t *testing.T) {
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	c1.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	r := NewReader(c1, NewBufPool(0), Limits{})
	var h RequestHead
	err := r.ReadRequestHead(&h)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err = %v, want a net.Error timeout", err)
	}
}

func TestReaderEOF(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", io.EOF},
		{"only empty lines", "\r\n\r\n\n", io.EOF},
		{"partial request line", "GET / HT", io.ErrUnexpectedEOF},
		{"partial fields", "GET / HTTP/1.1\r\nHost: a\r\n", io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tt.in), NewBufPool(0), Limits{})
			var h RequestHead
			if err := r.ReadRequestHead(&h); err != tt.want {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestReaderBodyPending(t *testing.T) {
	in := "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"
	r := NewReader(strings.NewReader(in), NewBufPool(0), Limits{})
	var h RequestHead
	if err := r.ReadRequestHead(&h); err != nil {
		t.Fatal(err)
	}
	if err := r.ReadRequestHead(&h); err != ErrBodyPending {
		t.Fatalf("err = %v, want ErrBodyPending", err)
	}
	// The body is 5 bytes of the next request, and a premature close is reported.
	p, err := r.ReadBody()
	if string(p) != "GET /" || err != io.EOF {
		t.Fatalf("ReadBody = %q, %v", p, err)
	}
	r2 := NewReader(strings.NewReader("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhel"), NewBufPool(0), Limits{})
	if err := r2.ReadRequestHead(&h); err != nil {
		t.Fatal(err)
	}
	if p, err := r2.ReadBody(); string(p) != "hel" || err != nil {
		t.Fatalf("ReadBody = %q, %v", p, err)
	}
	if _, err := r2.ReadBody(); err != io.ErrUnexpectedEOF {
		t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestReaderLargeHead(t *testing.T) {
	pool := NewBufPool(128)
	big := "GET /big HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("v", 5000) + "\r\n\r\n"
	in := big + "GET /small HTTP/1.1\r\nHost: a\r\n\r\n"
	r := NewReader(iotest.HalfReader(strings.NewReader(in)), pool, Limits{})
	var h RequestHead
	if err := r.ReadRequestHead(&h); err != nil {
		t.Fatal(err)
	}
	if string(h.Target) != "/big" || len(h.Fields[1].Value) != 5000 {
		t.Fatalf("got %s", h.summary())
	}
	if r.pooled {
		t.Errorf("large head not in a temporary buffer")
	}
	if err := r.ReadRequestHead(&h); err != nil {
		t.Fatal(err)
	}
	if string(h.Target) != "/small" {
		t.Fatalf("got %s", h.summary())
	}
	if !r.pooled || len(r.buf) != 128 {
		t.Errorf("did not go back to a pooled buffer (pooled %v, len %d)", r.pooled, len(r.buf))
	}
	r.Release()
	if pool.InUse() != 0 {
		t.Errorf("InUse = %d", pool.InUse())
	}
}

func TestReaderLimits(t *testing.T) {
	tests := []struct {
		name   string
		lim    Limits
		in     string
		status int
	}{
		{"head too large", Limits{MaxHeadBytes: 100}, "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X: y\r\n", 30), 431},
		{"line too long, no end", Limits{}, "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("y", 9000), 431},
		{"request line too long, no end", Limits{}, "GET /" + strings.Repeat("y", 9000), 414},
		{"too many fields", Limits{MaxFields: 3}, "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X: y\r\n", 3) + "\r\n", 431},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// No EOF at the end: the limit must be detected without more input.
			pr, pw := io.Pipe()
			go func() {
				pw.Write([]byte(tt.in))
			}()
			defer pw.Close()
			r := NewReader(pr, NewBufPool(256), tt.lim)
			var h RequestHead
			err := r.ReadRequestHead(&h)
			if got := statusOf(err); got != tt.status {
				t.Fatalf("status %d (err %v), want %d", got, err, tt.status)
			}
			pr.Close()
		})
	}
}

func TestReaderRelease(t *testing.T) {
	pool := NewBufPool(0)
	in := "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n"
	r := NewReader(strings.NewReader(in), pool, Limits{})
	var h RequestHead
	if err := r.ReadRequestHead(&h); err != nil {
		t.Fatal(err)
	}
	r.Release() // second request buffered: no-op
	if r.Buffered() == 0 || pool.InUse() != 1 {
		t.Fatalf("Release with buffered bytes: Buffered %d, InUse %d", r.Buffered(), pool.InUse())
	}
	if err := r.ReadRequestHead(&h); err != nil || string(h.Target) != "/2" {
		t.Fatalf("err %v target %q", err, h.Target)
	}
	r.Release()
	if r.Buffered() != 0 || pool.InUse() != 0 || r.buf != nil {
		t.Fatalf("after Release: Buffered %d, InUse %d", r.Buffered(), pool.InUse())
	}
	if err := r.ReadRequestHead(&h); err != io.EOF {
		t.Fatalf("err = %v, want io.EOF", err)
	}
	r.Release()
	if pool.InUse() != 0 {
		t.Fatalf("InUse = %d", pool.InUse())
	}
}

func TestBufPoolReuse(t *testing.T) {
	pool := NewBufPool(1000)
	if pool.Size() != 1000 || NewBufPool(0).Size() != DefaultBufSize {
		t.Fatal("Size")
	}
	b := pool.Get()
	if len(b) != 1000 || cap(b) != 1000 {
		t.Fatalf("len %d cap %d", len(b), cap(b))
	}
	pool.Put(make([]byte, 10)) // foreign buffer: dropped, not counted
	if pool.InUse() != 1 {
		t.Fatalf("InUse = %d", pool.InUse())
	}
	pool.Put(b)
	if pool.InUse() != 0 {
		t.Fatalf("InUse = %d", pool.InUse())
	}
	if !raceEnabled && testing.AllocsPerRun(100, func() { pool.Put(pool.Get()) }) != 0 {
		t.Errorf("Get/Put allocates")
	}
}

func TestReaderRaw(t *testing.T) {
	in := "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\ntunnel bytes"
	r := NewReader(iotest.HalfReader(strings.NewReader(in)), NewBufPool(0), Limits{})
	var h RequestHead
	if err := r.ReadRequestHead(&h); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r.Raw())
	if err != nil || string(got) != "tunnel bytes" {
		t.Fatalf("Raw: %q, %v", got, err)
	}
}

func TestReaderResponses(t *testing.T) {
	in := "HTTP/1.1 100 Continue\r\n\r\n" +
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc" +
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n" + // answers HEAD
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ndef\r\n0\r\n\r\n" +
		"HTTP/1.1 200 OK\r\n\r\nuntil close"
	methods := []string{"POST", "POST", "HEAD", "GET", "GET"}
	want := []string{"", "abc", "", "def", "until close"}
	r := NewReader(iotest.OneByteReader(strings.NewReader(in)), NewBufPool(64), Limits{})
	var h ResponseHead
	for i, m := range methods {
		if err := r.ReadResponseHead([]byte(m), &h); err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		var body []byte
		for {
			p, err := r.ReadBody()
			body = append(body, p...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%d: %v", i, err)
			}
		}
		if string(body) != want[i] {
			t.Errorf("%d: body %q, want %q", i, body, want[i])
		}
	}
	if err := r.ReadResponseHead(nil, &h); err != io.EOF {
		t.Fatalf("err = %v", err)
	}
}

// bufferedSource is a reader of the bufferReader kind: it takes its buffer from the
// Reader's pool only when it reads, as netio.Conn does when bytes are there.
type bufferedSource struct {
	data  []byte
	takes int
}

func (s *bufferedSource) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.data)
	s.data = s.data[n:]
	return n, nil
}

func (s *bufferedSource) ReadBuffer(bufs interface {
	Get() []byte
	Put([]byte)
}) ([]byte, int, error) {
	s.takes++
	buf := bufs.Get()
	n, err := s.Read(buf)
	return buf, n, err
}

// TestReaderTakesBufferFromSource: a Reader without a buffer lets a bufferReader take
// one from its pool, and reads on from it.
func TestReaderTakesBufferFromSource(t *testing.T) {
	src := &bufferedSource{data: []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")}
	pool := NewBufPool(0)
	r := NewReader(src, pool, Limits{})
	var h ResponseHead
	if err := r.ReadResponseHead([]byte("GET"), &h); err != nil {
		t.Fatal(err)
	}
	if src.takes != 1 || h.Status != 200 || pool.InUse() != 1 {
		t.Fatalf("takes %d, status %d, buffers in use %d", src.takes, h.Status, pool.InUse())
	}
	b, err := r.ReadBody()
	if string(b) != "ok" || (err != nil && err != io.EOF) {
		t.Fatalf("body %q, %v", b, err)
	}
}
