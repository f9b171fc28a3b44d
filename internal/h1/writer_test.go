package h1

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/netio"
	"github.com/gotthard-proxy/gotthard/internal/testnet"
)

func TestWriterHead(t *testing.T) {
	// A small buffer forces flushes in the middle of lines; the default one takes each
	// line in one go.
	for _, size := range []int{32, 0} {
		var out bytes.Buffer
		pool := NewBufPool(size)
		w := NewWriter(&out, pool)
		w.WriteRequestLine("GET", "/some/long/path?q=1", 1)
		w.WriteField("Host", "example.com")
		w.WriteField("X-Empty", "")
		w.EndHead()
		w.WriteStatusLine(1, 404, "")
		w.WriteStatusLine(0, 299, "")
		w.WriteStatusLine(1, 200, "Fine")
		w.EndHead()
		w.WriteRequestLine("OPTIONS", "*", 0)
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		want := "GET /some/long/path?q=1 HTTP/1.1\r\nHost: example.com\r\nX-Empty: \r\n\r\n" +
			"HTTP/1.1 404 Not Found\r\nHTTP/1.0 299 \r\nHTTP/1.1 200 Fine\r\n\r\nOPTIONS * HTTP/1.0\r\n"
		if out.String() != want {
			t.Fatalf("buffer size %d: got %q\nwant %q", size, out.String(), want)
		}
		w.Release()
		if w.Buffered() != 0 || pool.InUse() != 0 {
			t.Fatalf("buffer size %d: Release: Buffered %d InUse %d", size, w.Buffered(), pool.InUse())
		}
	}
}

func TestWriterChunkedRoundTrip(t *testing.T) {
	var conn bytes.Buffer
	pool := NewBufPool(64)
	w := NewWriter(&conn, pool)
	w.WriteRequestLine("POST", "/up", 1)
	w.WriteField("Host", "a")
	w.WriteField("Transfer-Encoding", "chunked")
	w.WriteField("Trailer", "X-Sum")
	w.EndHead()
	w.StartBody(BodyChunked, 0)
	pieces := []string{"a", "", strings.Repeat("b", 17), strings.Repeat("c", 1000)}
	for _, p := range pieces {
		if err := w.WriteBody([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.FinishBody([]Field{{Name: []byte("X-Sum"), Value: []byte("42")}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(conn.String(), "\r\n11\r\nbbbbbbbbbbbbbbbbb\r\n3e8\r\n") {
		t.Errorf("unexpected chunk framing: %q", conn.String())
	}
	r := NewReader(&conn, pool, Limits{})
	var h RequestHead
	if err := r.ReadRequestHead(&h); err != nil {
		t.Fatal(err)
	}
	body, err := readAllBody(r)
	if err != io.EOF || string(body) != strings.Join(pieces, "") {
		t.Fatalf("body %q, err %v", body, err)
	}
	tr := r.Trailers()
	if len(tr) != 1 || string(tr[0].Name) != "X-Sum" || string(tr[0].Value) != "42" {
		t.Fatalf("trailers %q", tr)
	}
}

func TestWriterLengthBody(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out, NewBufPool(0))
	w.StartBody(BodyLength, 5)
	if err := w.WriteBody([]byte("hel")); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteBody([]byte("lo!")); err != ErrBodyTooLong {
		t.Fatalf("err = %v, want ErrBodyTooLong", err)
	}
	if err := w.FinishBody(nil); err != ErrBodyTooShort {
		t.Fatalf("err = %v, want ErrBodyTooShort", err)
	}
	w.StartBody(BodyLength, 2)
	w.WriteBody([]byte("lo"))
	if err := w.FinishBody(nil); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteBody([]byte("x")); err != ErrBodyTooLong {
		t.Fatalf("body after FinishBody: err = %v", err)
	}
	w.Flush()
	if out.String() != "hello" {
		t.Fatalf("got %q", out.String())
	}
}

type countingWriter struct {
	writes int
	bytes.Buffer
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.writes++
	return c.Buffer.Write(p)
}

func TestWriterLargeWriteDirect(t *testing.T) {
	var out countingWriter
	pool := NewBufPool(16)
	w := NewWriter(&out, pool)
	big := bytes.Repeat([]byte("x"), 100)
	if n, err := w.Write(big); n != 100 || err != nil {
		t.Fatal(n, err)
	}
	if out.writes != 1 || w.Buffered() != 0 || pool.InUse() != 0 {
		t.Fatalf("writes %d buffered %d InUse %d", out.writes, w.Buffered(), pool.InUse())
	}
	w.WriteString("abc")
	w.Write(big)
	w.Flush()
	if out.Len() != 203 || out.writes != 3 {
		t.Fatalf("len %d writes %d", out.Len(), out.writes)
	}
}

type failWriter struct{ err error }

func (f failWriter) Write(p []byte) (int, error) { return 0, f.err }

func TestWriterStickyError(t *testing.T) {
	boom := errors.New("boom")
	w := NewWriter(failWriter{boom}, NewBufPool(16))
	w.WriteRequestLine("GET", "/a-target-longer-than-the-buffer", 1)
	if err := w.Flush(); err != boom {
		t.Fatalf("Flush = %v", err)
	}
	if _, err := w.WriteString("x"); err != boom {
		t.Fatalf("WriteString = %v", err)
	}
	if err := w.WriteBody(nil); err != boom {
		t.Fatalf("WriteBody = %v", err)
	}
	w.Reset(io.Discard)
	if err := w.Flush(); err != nil {
		t.Fatalf("after Reset: %v", err)
	}
	w2 := NewWriter(io.Discard, NewBufPool(0))
	w2.WriteStatusLine(1, 42, "")
	if err := w2.Flush(); err == nil {
		t.Fatal("status 42 accepted")
	}
}

// TestWriteBodyFlush writes a head and a last body piece in one flush, over a socket
// (netio.Conn, which writes two pieces at once) and over a plain io.Writer, with each
// framing; the bytes must be the same either way.
func TestWriteBodyFlush(t *testing.T) {
	client, server := testnet.Pair(t)
	sock := netio.Wrap(server)
	if _, ok := sock.(twoWriter); !ok {
		t.Fatal("netio.Conn does not write two pieces")
	}
	body := bytes.Repeat([]byte("0123456789"), 100)
	for _, kind := range []BodyKind{BodyLength, BodyUntilClose, BodyChunked} {
		var plain bytes.Buffer
		var want []byte
		for _, wr := range []io.Writer{&plain, sock} {
			w := NewWriter(wr, NewBufPool(0))
			w.WriteStatusLine(1, 200, "")
			w.EndHead()
			w.StartBody(kind, int64(len(body)))
			if err := w.WriteBodyFlush(body); err != nil {
				t.Fatalf("%v: %v", kind, err)
			}
			if w.Buffered() != 0 {
				t.Fatalf("%v: %d bytes left in the buffer", kind, w.Buffered())
			}
			if err := w.FinishBody(nil); err != nil {
				t.Fatalf("%v: FinishBody: %v", kind, err)
			}
			w.Flush()
			if wr == &plain {
				want = plain.Bytes()
				continue
			}
			got := make([]byte, len(want))
			client.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(client, got); err != nil {
				t.Fatalf("%v: reading what the socket got: %v", kind, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%v: the socket got %q, the buffer %q", kind, got, want)
			}
		}
	}
	// Too long for the declared length: an error, and nothing written.
	w := NewWriter(sock, NewBufPool(0))
	w.StartBody(BodyLength, 3)
	if err := w.WriteBodyFlush([]byte("four")); err != ErrBodyTooLong {
		t.Fatalf("err = %v, want ErrBodyTooLong", err)
	}
}
