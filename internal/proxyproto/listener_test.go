package proxyproto

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// logBuf collects log lines, safe for concurrent use.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// listen returns a Listener on loopback with o (its Logger set to a buffer) and the
// buffer; both end with the test.
func listen(t *testing.T, o Options) (*Listener, *logBuf) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuf{}
	o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	nl, err := NewListener(ln, o)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { nl.Close() })
	return nl.(*Listener), logs
}

// connect dials l, writes send and returns the client side and the accepted *Conn.
func connect(t *testing.T, l *Listener, send string) (net.Conn, *Conn) {
	t.Helper()
	cl, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	if send != "" {
		if _, err := cl.Write([]byte(send)); err != nil {
			t.Fatal(err)
		}
	}
	nc, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return cl, nc.(*Conn)
}

func readAll(t *testing.T, c net.Conn, n int) (string, error) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, n)
	k, err := io.ReadFull(c, b)
	return string(b[:k]), err
}

func TestListenerHeader(t *testing.T) {
	src, dst := netip.MustParseAddrPort("203.0.113.9:40000"), netip.MustParseAddrPort("198.51.100.4:443")
	for _, v := range []int{1, 2} {
		t.Run("v"+string(rune('0'+v)), func(t *testing.T) {
			l, logs := listen(t, Options{Trusted: loopback, Required: true})
			hdr, _ := Append(nil, v, src, dst)
			_, c := connect(t, l, string(hdr)+"hello")
			if got := c.RemoteAddr().String(); got != src.String() {
				t.Errorf("RemoteAddr = %s, want %s", got, src)
			}
			if got := c.LocalAddr().String(); got != dst.String() {
				t.Errorf("LocalAddr = %s, want %s", got, dst)
			}
			if got, err := readAll(t, c, 5); got != "hello" {
				t.Errorf("read %q, %v", got, err)
			}
			h, err := c.Header()
			if err != nil || h.Version != v {
				t.Errorf("Header = %+v, %v", h, err)
			}
			// The raw socket starts after the header.
			rc, err := c.SyscallConn()
			if err != nil || rc == nil {
				t.Errorf("SyscallConn: %v", err)
			}
			if logs.String() != "" {
				t.Errorf("logged %q", logs)
			}
		})
	}
}

// A LOCAL header keeps the connection's own addresses.
func TestListenerLocal(t *testing.T) {
	l, _ := listen(t, Options{Trusted: loopback, Required: true})
	cl, c := connect(t, l, string(AppendLocal(nil))+"x")
	if c.RemoteAddr().String() != cl.LocalAddr().String() {
		t.Errorf("RemoteAddr = %s, want %s", c.RemoteAddr(), cl.LocalAddr())
	}
	if got, _ := readAll(t, c, 1); got != "x" {
		t.Errorf("read %q", got)
	}
}

func TestListenerRefused(t *testing.T) {
	hdr, _ := Append(nil, 1, netip.MustParseAddrPort("203.0.113.9:1"), netip.MustParseAddrPort("198.51.100.4:2"))
	v2hdr, _ := Append(nil, 2, netip.MustParseAddrPort("203.0.113.9:1"), netip.MustParseAddrPort("198.51.100.4:2"))
	tests := []struct {
		name     string
		o        Options
		send     string
		closeCl  bool // the client closes its sending side after send
		wantLog  string
		wantAddr bool // RemoteAddr is the connection's own
	}{
		{"untrusted v1", Options{Trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, string(hdr) + "GET", false, "untrusted", true},
		{"untrusted v2", Options{}, string(v2hdr) + "GET", false, "untrusted", true},
		{"missing when required", Options{Trusted: loopback, Required: true}, "GET / HTTP/1.1\r\n\r\n", false, "no PROXY protocol header", true},
		{"truncated v1", Options{Trusted: loopback}, "PROXY TCP4 1.2.3.4", true, "truncated", true},
		{"truncated v2", Options{Trusted: loopback}, string(v2hdr[:20]), true, "truncated", true},
		{"lying v2 length", Options{Trusted: loopback}, v2(0x21, 0x11, 100, make([]byte, 12)), true, "truncated", true},
		{"overlong v1", Options{Trusted: loopback}, "PROXY TCP4 " + strings.Repeat("9", 120), false, "too long", true},
		{"bad v1 family", Options{Trusted: loopback}, "PROXY TCP9 1.1.1.1 1.1.1.1 1 1\r\nGET", false, "TCP9", true},
		{"bad v2 family", Options{Trusted: loopback}, v2(0x21, 0x51, 12, make([]byte, 12)), false, "family", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, logs := listen(t, tt.o)
			cl, c := connect(t, l, tt.send)
			if tt.closeCl {
				cl.(*net.TCPConn).CloseWrite()
			}
			if tt.wantAddr && c.RemoteAddr().String() != cl.LocalAddr().String() {
				t.Errorf("RemoteAddr = %s, want the connection's own %s", c.RemoteAddr(), cl.LocalAddr())
			}
			_, err := readAll(t, c, 3)
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("Read: %v, want ErrRefused", err)
			}
			// The client sees its connection closed.
			cl.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := cl.Read(make([]byte, 1)); err == nil {
				t.Error("client connection still open")
			} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Error("client connection not closed")
			}
			got := logs.String()
			if strings.Count(got, "\n") != 1 || !strings.Contains(got, tt.wantLog) {
				t.Errorf("log = %q, want one line with %q", got, tt.wantLog)
			}
		})
	}
}

// A trusted connection without a header, where none is required, reads as it came.
func TestListenerOptional(t *testing.T) {
	l, logs := listen(t, Options{Trusted: loopback})
	cl, c := connect(t, l, "GET / HTTP/1.1\r\n")
	if c.RemoteAddr().String() != cl.LocalAddr().String() {
		t.Errorf("RemoteAddr = %s", c.RemoteAddr())
	}
	if got, err := readAll(t, c, 16); got != "GET / HTTP/1.1\r\n" {
		t.Errorf("read %q, %v", got, err)
	}
	if h, err := c.Header(); h != nil || err != nil {
		t.Errorf("Header = %v, %v", h, err)
	}
	if logs.String() != "" {
		t.Errorf("logged %q", logs)
	}
}

// An untrusted connection without a header is served as it is, and RemoteAddr does
// not wait for it to send.
func TestListenerUntrustedPlain(t *testing.T) {
	l, _ := listen(t, Options{Trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, HeaderTimeout: time.Hour})
	cl, c := connect(t, l, "")
	if c.RemoteAddr().String() != cl.LocalAddr().String() || c.Trusted() {
		t.Errorf("RemoteAddr = %s, trusted %v", c.RemoteAddr(), c.Trusted())
	}
	cl.Write([]byte("PING"))
	if got, err := readAll(t, c, 4); got != "PING" {
		t.Errorf("read %q, %v", got, err)
	}
	if _, err := c.SyscallConn(); err == nil {
		t.Error("SyscallConn of an untrusted connection: no error")
	}
}

// A client that sends nothing holds up neither Accept nor other connections, and is
// closed after HeaderTimeout.
func TestListenerSlowClient(t *testing.T) {
	l, logs := listen(t, Options{Trusted: loopback, Required: true, HeaderTimeout: 200 * time.Millisecond})
	slowCl, slow := connect(t, l, "") // sends nothing
	hdr, _ := Append(nil, 2, netip.MustParseAddrPort("192.0.2.1:5"), netip.MustParseAddrPort("192.0.2.2:6"))
	_, fast := connect(t, l, string(hdr)+"ok")
	if got, err := readAll(t, fast, 2); got != "ok" || fast.RemoteAddr().String() != "192.0.2.1:5" {
		t.Fatalf("fast: %q %v %s", got, err, fast.RemoteAddr())
	}
	start := time.Now()
	if _, err := readAll(t, slow, 1); !errors.Is(err, ErrRefused) {
		t.Fatalf("slow: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("refused after %v", d)
	}
	slowCl.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := slowCl.Read(make([]byte, 1)); err == nil {
		t.Error("slow client still open")
	}
	if !strings.Contains(logs.String(), "timeout") {
		t.Errorf("log %q", logs)
	}
}

// A connection without a file descriptor (a pipe) is read one byte at a time; bytes
// read looking for a header that is not there are read again.
func TestConnPipe(t *testing.T) {
	logs := &logBuf{}
	nl, err := NewListener(nil, Options{Trusted: loopback, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	l := nl.(*Listener)
	for _, tt := range []struct{ send, wantRead, wantAddr string }{
		{"PROXY TCP4 192.0.2.1 192.0.2.2 7 8\r\nrest", "rest", "192.0.2.1:7"},
		{"PROXY\r\n", "PROXY\r\n", "127.0.0.1:9"}, // not a header: "PROXY\r" is not "PROXY "
		{"\r\n\r\nhi", "\r\n\r\nhi", "127.0.0.1:9"},
	} {
		a, b := net.Pipe()
		c := l.Wrap(addrConn{b})
		go func() { a.Write([]byte(tt.send)); a.Close() }()
		got, err := io.ReadAll(c)
		if string(got) != tt.wantRead || err != nil || c.RemoteAddr().String() != tt.wantAddr {
			t.Errorf("%q: read %q, %v, addr %s", tt.send, got, err, c.RemoteAddr())
		}
		c.Close()
	}
	if logs.String() != "" {
		t.Errorf("logged %q", logs)
	}
}

// addrConn gives a pipe a loopback remote address.
type addrConn struct{ net.Conn }

func (addrConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9} }

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		o    Options
		want string
	}{
		{Options{Trusted: []netip.Prefix{{}}}, "Trusted[0]"},
		{Options{HeaderTimeout: -1}, "HeaderTimeout"},
		{Options{Required: true}, "Required"},
	}
	for _, tt := range tests {
		if _, err := NewListener(nil, tt.o); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want an error naming %s", tt.o, err, tt.want)
		}
	}
	if _, err := NewListener(nil, Options{Trusted: loopback, Required: true}); err != nil {
		t.Error(err)
	}
}
