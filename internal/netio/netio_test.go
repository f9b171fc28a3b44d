package netio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gotthard-proxy/gotthard/internal/testnet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// readAllWritten reads r to its end and then takes the writer's result from done,
// failing the test on an error from either.
func readAllWritten(t *testing.T, r io.Reader, done <-chan error) []byte {
	t.Helper()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return got
}

func TestReadWrite(t *testing.T) {
	a, b := testnet.Pair(t)
	wa, wb := Wrap(a), Wrap(b)
	// Larger than the socket buffers, so writes must wait for the reader.
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<18)
	done := make(chan error, 1)
	go func() {
		_, err := wa.Write(data)
		a.(*net.TCPConn).CloseWrite()
		done <- err
	}()
	got := readAllWritten(t, wb, done)
	if !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes, want %d", len(got), len(data))
	}
}

// TestWriteTwo writes two pieces at once: small ones (one system call) and ones larger
// than the socket buffers, so that the write stops part way through the first piece,
// and again through the second, and goes on when the reader makes room.
func TestWriteTwo(t *testing.T) {
	a, b := testnet.Pair(t)
	wa, wb := Wrap(a), Wrap(b)
	big := func(c byte) []byte { return bytes.Repeat([]byte{c, c + 1, c + 2, c + 3}, 1<<18) }
	cases := [][2][]byte{
		{[]byte("HTTP/1.1 200 OK\r\n\r\n"), []byte("body")},
		{nil, []byte("only the second")},
		{[]byte("only the first"), nil},
		{big('a'), []byte("tail")},
		{[]byte("head"), big('A')},
		{big('a'), big('A')},
	}
	var want []byte
	for _, c := range cases {
		want = append(append(want, c[0]...), c[1]...)
	}
	done := make(chan error, 1)
	go func() {
		defer a.(*net.TCPConn).CloseWrite()
		for _, c := range cases {
			n, err := wa.(*Conn).WriteTwo(c[0], c[1])
			if err != nil {
				done <- err
				return
			}
			if n != len(c[0])+len(c[1]) {
				done <- fmt.Errorf("WriteTwo of %d and %d bytes wrote %d", len(c[0]), len(c[1]), n)
				return
			}
		}
		done <- nil
	}()
	got := readAllWritten(t, wb, done)
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want %d (first difference at %d)", len(got), len(want), firstDiff(got, want))
	}
	// A peer that went away: an error, not a signal.
	b.Close()
	var werr error
	for i := 0; i < 100 && werr == nil; i++ {
		_, werr = wa.(*Conn).WriteTwo([]byte("head"), []byte("body"))
		time.Sleep(time.Millisecond)
	}
	if !errors.Is(werr, syscall.EPIPE) && !errors.Is(werr, syscall.ECONNRESET) {
		t.Fatalf("WriteTwo to a closed peer: %v, want EPIPE or ECONNRESET", werr)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestDeadlineAndErrors(t *testing.T) {
	a, b := testnet.Pair(t)
	wb := Wrap(b)
	b.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := wb.Read(make([]byte, 10))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after deadline: %v", err)
	}
	// A reset peer: the write fails with ECONNRESET or EPIPE, as errors.Is sees it.
	a.(*net.TCPConn).SetLinger(0)
	a.Close()
	b.SetDeadline(time.Time{})
	var werr error
	for range 100 {
		if _, werr = Wrap(b).Write([]byte("x")); werr != nil {
			break
		}
	}
	if !errors.Is(werr, syscall.ECONNRESET) && !errors.Is(werr, syscall.EPIPE) {
		t.Fatalf("write to reset peer: %v", werr)
	}
}

func TestWriteBeforeRead(t *testing.T) {
	a, b := testnet.Pair(t)
	ca := Wrap(a).(*Conn)
	// The peer answers each message it reads.
	go func() {
		buf := make([]byte, 1<<20)
		for {
			n, err := b.Read(buf)
			if err != nil {
				return
			}
			if _, err := b.Write(buf[:n]); err != nil {
				return
			}
		}
	}()
	for _, size := range []int{1, 100, 4 << 20} { // the last fills the socket buffers
		msg := bytes.Repeat([]byte("q"), size)
		ca.WriteBeforeRead(msg)
		if !ca.AwaitingAnswer() {
			t.Fatal("not awaiting")
		}
		got := make([]byte, 0, size)
		buf := make([]byte, 64<<10)
		for len(got) < size {
			n, err := ca.Read(buf)
			if err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
			got = append(got, buf[:n]...)
		}
		if !bytes.Equal(got, msg) || ca.AwaitingAnswer() {
			t.Fatalf("size %d: echo mismatch (%d bytes)", size, len(got))
		}
	}
	// Cancelled: nothing is written.
	ca.WriteBeforeRead([]byte("x"))
	ca.WriteBeforeRead(nil)
	if ca.AwaitingAnswer() {
		t.Fatal("cancel left it awaiting")
	}
	a.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := ca.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after cancel: %v", err)
	}
}

// BenchmarkWriteTwo compares, for bodies of several sizes behind a 100-byte head, a
// copy of the body behind the head and one write with WriteTwo, which sends the body
// from where it is. Each write is read back by the peer, as in a proxy's response.
func BenchmarkWriteTwo(b *testing.B) {
	client, server := testnet.Pair(b)
	c := Wrap(client).(*Conn)
	head := bytes.Repeat([]byte("h"), 100)
	in := make([]byte, 1<<16)
	for _, size := range []int{256, 512, 768, 1024, 4096} {
		body := bytes.Repeat([]byte("b"), size)
		buf := make([]byte, 0, 16<<10)
		run := func(b *testing.B, write func() error) {
			b.SetBytes(int64(len(head) + size))
			for b.Loop() {
				if err := write(); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(server, in[:len(head)+size]); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.Run(fmt.Sprintf("copy/%d", size), func(b *testing.B) {
			run(b, func() error {
				buf = append(append(buf[:0], head...), body...)
				_, err := c.Write(buf)
				return err
			})
		})
		b.Run(fmt.Sprintf("two/%d", size), func(b *testing.B) {
			run(b, func() error {
				_, err := c.WriteTwo(head, body)
				return err
			})
		})
	}
}

// A Conn is what h1.Reader looks for to let the connection take the read buffer: the
// same method, with the same unnamed interface type.
var _ interface {
	ReadBuffer(interface {
		Get() []byte
		Put([]byte)
	}) ([]byte, int, error)
} = (*Conn)(nil)
