package tlspeek

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// listen returns a loopback listener closed at the end of the test.
func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// accept returns the next connection of ln, closed at the end of the test.
func accept(t *testing.T, ln net.Listener) net.Conn {
	t.Helper()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dial connects to ln, closed at the end of the test.
func dial(t *testing.T, ln net.Listener) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// bigALPN is an ALPN list whose hello is larger than one record: 150 names of 200
// bytes, then h2.
func bigALPN() []string {
	var protos []string
	for i := range 150 {
		protos = append(protos, fmt.Sprintf("%03d-%s", i, strings.Repeat("x", 196)))
	}
	return append(protos, "h2")
}

// TestPeekRealClients has crypto/tls clients connect over loopback; the server peeks at
// each hello, checks what it says, then runs a crypto/tls server on the returned
// connection: the handshake completes only if the bytes come back exactly (TLS 1.2 and
// 1.3 both authenticate the transcript, hello included).
func TestPeekRealClients(t *testing.T) {
	pki := newPKI(t)
	cases := []struct {
		name     string
		sni      string // what the client is given
		alpn     []string
		minV     uint16
		maxV     uint16
		curves   []tls.CurveID
		wantSNI  string
		wantVers []uint16
		wantV    uint16 // negotiated version
		wantALPN string // negotiated protocol
		wantKX   tls.CurveID
		maxBytes int
	}{
		{name: "tls13 mlkem h2", sni: "a.example", alpn: []string{"h2", "http/1.1"}, minV: tls.VersionTLS13,
			wantSNI: "a.example", wantVers: []uint16{tls.VersionTLS13}, wantV: tls.VersionTLS13, wantALPN: "h2", wantKX: tls.X25519MLKEM768},
		{name: "tls12 only", sni: "b.example", alpn: []string{"http/1.1"}, maxV: tls.VersionTLS12,
			wantSNI: "b.example", wantVers: []uint16{tls.VersionTLS12}, wantV: tls.VersionTLS12, wantALPN: "http/1.1", wantKX: tls.X25519},
		{name: "default versions", sni: "c.example", alpn: []string{"http/1.1", "h2"},
			wantSNI: "c.example", wantVers: []uint16{tls.VersionTLS13, tls.VersionTLS12}, wantV: tls.VersionTLS13, wantALPN: "h2", wantKX: tls.X25519MLKEM768},
		{name: "upper case name", sni: "D.Example", alpn: []string{"h2"},
			wantSNI: "d.example", wantVers: []uint16{tls.VersionTLS13, tls.VersionTLS12}, wantV: tls.VersionTLS13, wantALPN: "h2", wantKX: tls.X25519MLKEM768},
		{name: "mlkem share only", sni: "a.example", curves: []tls.CurveID{tls.X25519MLKEM768}, minV: tls.VersionTLS13,
			wantSNI: "a.example", wantVers: []uint16{tls.VersionTLS13}, wantV: tls.VersionTLS13, wantKX: tls.X25519MLKEM768},
		{name: "x25519 no alpn", sni: "b.example", curves: []tls.CurveID{tls.X25519},
			wantSNI: "b.example", wantVers: []uint16{tls.VersionTLS13, tls.VersionTLS12}, wantV: tls.VersionTLS13, wantKX: tls.X25519},
		{name: "ip address no sni", sni: "127.0.0.1", alpn: []string{"http/1.1"},
			wantSNI: "", wantVers: []uint16{tls.VersionTLS13, tls.VersionTLS12}, wantV: tls.VersionTLS13, wantALPN: "http/1.1", wantKX: tls.X25519MLKEM768},
		{name: "hello over several records", sni: "c.example", alpn: bigALPN(), maxBytes: 64 << 10,
			wantSNI: "c.example", wantVers: []uint16{tls.VersionTLS13, tls.VersionTLS12}, wantV: tls.VersionTLS13, wantALPN: "h2", wantKX: tls.X25519MLKEM768},
	}
	modes := []struct {
		name      string
		trickle   bool // the server reads one byte at a time
		bytewise  bool // the client writes one byte per write(2), a TCP segment each
		frag      int  // the client's handshake records carry at most frag bytes
		bigHellos bool // the mode suits the hello larger than a record
	}{
		{name: "whole", bigHellos: true},
		{name: "one byte per read", trickle: true, bigHellos: true},
		{name: "one byte per segment", bytewise: true},
		{name: "one byte per record", frag: 1},
		{name: "records of 100 bytes", frag: 100, bigHellos: true},
	}
	for _, tc := range cases {
		for _, mode := range modes {
			if tc.maxBytes > DefaultMaxBytes && !mode.bigHellos {
				continue
			}
			t.Run(tc.name+"/"+mode.name, func(t *testing.T) {
				ln := listen(t)
				clientCfg := &tls.Config{
					ServerName: tc.sni, NextProtos: tc.alpn, RootCAs: pki.pool,
					MinVersion: tc.minV, MaxVersion: tc.maxV, CurvePreferences: tc.curves,
				}
				var wg sync.WaitGroup
				defer wg.Wait()
				clientErr := make(chan error, 1)
				wg.Go(func() {
					clientErr <- runClient(ln.Addr().String(), clientCfg, mode.frag, mode.bytewise)
				})

				c := accept(t, ln)
				var peeked net.Conn = c
				if mode.trickle {
					peeked = trickleConn{c}
				}
				maxBytes := tc.maxBytes
				if mode.frag == 1 {
					maxBytes = 16 << 10 // six bytes of records for each byte of the hello
				}
				h, rc, err := Peek(peeked, maxBytes, 10*time.Second)
				if err != nil {
					t.Fatalf("Peek: %v", err)
				}
				if h.ServerName != tc.wantSNI {
					t.Errorf("ServerName = %q, want %q", h.ServerName, tc.wantSNI)
				}
				if !slices.Equal(h.ALPN, tc.alpn) {
					t.Errorf("ALPN = %q, want %q", h.ALPN, tc.alpn)
				}
				if !slices.Equal(h.Versions, tc.wantVers) {
					t.Errorf("Versions = %#x, want %#x", h.Versions, tc.wantVers)
				}

				var chi *tls.ClientHelloInfo
				serverCfg := &tls.Config{
					Certificates: []tls.Certificate{pki.cert},
					NextProtos:   []string{"h2", "http/1.1"},
					GetConfigForClient: func(info *tls.ClientHelloInfo) (*tls.Config, error) {
						chi = info
						return nil, nil
					},
				}
				ts := tls.Server(rc, serverCfg)
				if err := ts.Handshake(); err != nil {
					t.Fatalf("crypto/tls server on the peeked conn: %v (client: %v)", err, <-clientErr)
				}
				if !strings.EqualFold(chi.ServerName, h.ServerName) || !slices.Equal(chi.SupportedProtos, h.ALPN) {
					t.Errorf("crypto/tls read %q %q, Peek %q %q", chi.ServerName, chi.SupportedProtos, h.ServerName, h.ALPN)
				}
				st := ts.ConnectionState()
				if st.Version != tc.wantV || st.NegotiatedProtocol != tc.wantALPN || st.CurveID != tc.wantKX {
					t.Errorf("negotiated %#x %q %v, want %#x %q %v", st.Version, st.NegotiatedProtocol, st.CurveID, tc.wantV, tc.wantALPN, tc.wantKX)
				}
				line := make([]byte, 5)
				if _, err := io.ReadFull(ts, line); err != nil || string(line) != "ping\n" {
					t.Fatalf("read %q, %v", line, err)
				}
				if _, err := ts.Write([]byte("pong\n")); err != nil {
					t.Fatal(err)
				}
				if err := <-clientErr; err != nil {
					t.Fatalf("client: %v", err)
				}
			})
		}
	}
}

// runClient completes a TLS handshake with addr, writes ping and reads pong. With frag
// > 0 its handshake records carry at most frag bytes each; with bytewise it writes a
// byte at a time.
func runClient(addr string, cfg *tls.Config, frag int, bytewise bool) error {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := nc.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	var c net.Conn = nc
	if bytewise {
		c = bytewiseConn{nc}
	}
	if frag > 0 {
		c = &reframeConn{Conn: nc, frag: frag}
	}
	tc := tls.Client(c, cfg)
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	if _, err := tc.Write([]byte("ping\n")); err != nil {
		return err
	}
	line := make([]byte, 5)
	if _, err := io.ReadFull(tc, line); err != nil {
		return err
	}
	if string(line) != "pong\n" {
		return fmt.Errorf("read %q", line)
	}
	return nil
}

// bytewiseConn writes one byte per call to the connection it wraps (Go's TCP
// connections set TCP_NODELAY, so each goes out as a segment of its own).
type bytewiseConn struct{ net.Conn }

func (c bytewiseConn) Write(p []byte) (int, error) {
	for i := range p {
		if _, err := c.Conn.Write(p[i : i+1]); err != nil {
			return i, err
		}
	}
	return len(p), nil
}

// TestPeekNotTLS: a plain-text client is told apart from its first bytes, without
// waiting for more, and the returned conn yields those bytes.
func TestPeekNotTLS(t *testing.T) {
	for _, first := range []string{"GET / HTTP/1.1\r\n", "\x16\x02\x00", "\x80\x2e\x01\x03\x01"} {
		t.Run(fmt.Sprintf("%q", first), func(t *testing.T) {
			ln := listen(t)
			cc := dial(t, ln)
			if _, err := cc.Write([]byte(first)); err != nil {
				t.Fatal(err)
			}
			c := accept(t, ln)
			start := time.Now()
			_, rc, err := Peek(c, 0, time.Minute) // the client stays open: no EOF to end on
			if !errors.Is(err, ErrNotTLS) {
				t.Fatalf("err = %v, want ErrNotTLS", err)
			}
			if d := time.Since(start); d > 30*time.Second {
				t.Fatalf("Peek took %v", d)
			}
			cc.Close()
			got, err := io.ReadAll(rc)
			if err != nil || string(got) != first {
				t.Fatalf("replayed %q, %v; want %q", got, err, first)
			}
		})
	}
}

// TestPeekTimeout: a client that sends half a hello and stalls fails with a timeout;
// the returned conn yields the half, and its read deadline is cleared.
func TestPeekTimeout(t *testing.T) {
	hello := clientHello(t, &tls.Config{ServerName: "a.example"})
	ln := listen(t)
	cc := dial(t, ln)
	half := hello[:len(hello)/2]
	if _, err := cc.Write(half); err != nil {
		t.Fatal(err)
	}
	c := accept(t, ln)
	_, rc, err := Peek(c, 0, 50*time.Millisecond)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("err = %v, want os.ErrDeadlineExceeded", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err = %v, not a net.Error timeout", err)
	}
	// The deadline is in the past now: were it still set, reads would fail at once.
	if _, err := cc.Write(hello[len(half):]); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(hello))
	if _, err := io.ReadFull(rc, got); err != nil {
		t.Fatalf("reading after the timeout: %v", err)
	}
	if !bytes.Equal(got, hello) {
		t.Fatal("the conn does not yield the hello")
	}
}

// TestPeekEOF: a client that closes early gives io.EOF or io.ErrUnexpectedEOF.
func TestPeekEOF(t *testing.T) {
	hello := clientHello(t, &tls.Config{ServerName: "a.example"})
	for _, n := range []int{0, 1, 5, 9, len(hello) - 1} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			ln := listen(t)
			cc := dial(t, ln)
			if _, err := cc.Write(hello[:n]); err != nil {
				t.Fatal(err)
			}
			cc.Close()
			want := io.ErrUnexpectedEOF
			if n == 0 {
				want = io.EOF
			}
			_, rc, err := Peek(accept(t, ln), 0, 10*time.Second)
			if !errors.Is(err, want) {
				t.Fatalf("err = %v, want %v", err, want)
			}
			got, _ := io.ReadAll(rc)
			if !bytes.Equal(got, hello[:n]) {
				t.Fatalf("replayed %d bytes, want %d", len(got), n)
			}
		})
	}
}

// TestPeekTooLarge: a hello past maxBytes is refused; a record or message header that
// announces one is refused before the rest arrives.
func TestPeekTooLarge(t *testing.T) {
	hello := clientHello(t, &tls.Config{ServerName: "a.example"})
	big := frame(helloMsg(tls.VersionTLS12, []ext{{21, make([]byte, 30000)}}), 0)
	cases := []struct {
		name     string
		send     []byte
		maxBytes int
	}{
		{"real hello", hello, len(hello) - 1},
		{"record header", hello[:5], len(hello) - 1},
		{"message header", hello[:9], len(hello) - 1},
		{"second record", big[:maxPlaintext+5+5], 20000},
		{"message header, several records", big[:9], 20000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ln := listen(t)
			cc := dial(t, ln)
			if _, err := cc.Write(tc.send); err != nil {
				t.Fatal(err)
			}
			// The client stays open: only the header can have told.
			_, _, err := Peek(accept(t, ln), tc.maxBytes, time.Minute)
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("err = %v, want ErrTooLarge", err)
			}
		})
	}
	// Exactly maxBytes is enough.
	h, _, err := Peek(&memConn{data: hello}, len(hello), 0)
	if err != nil || h.ServerName != "a.example" {
		t.Fatalf("with maxBytes = len(hello): %+v, %v", h, err)
	}
}

// TestPeekConnMethods: the returned conn passes WriteTo, ReadFrom and CloseWrite on.
func TestPeekConnMethods(t *testing.T) {
	hello := clientHello(t, &tls.Config{ServerName: "b.example"})
	ln := listen(t)
	cc := dial(t, ln)
	if _, err := cc.Write(append(slices.Clip(hello), "after"...)); err != nil {
		t.Fatal(err)
	}
	_, rc, err := Peek(accept(t, ln), 0, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// ReadFrom writes to the client.
	if _, err := rc.(io.ReaderFrom).ReadFrom(strings.NewReader("to client")); err != nil {
		t.Fatal(err)
	}
	if err := rc.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(cc)
	if err != nil || string(got) != "to client" {
		t.Fatalf("client read %q, %v", got, err)
	}
	// WriteTo yields the hello, then the rest.
	if _, err := cc.Write([]byte(" and more")); err != nil {
		t.Fatal(err)
	}
	cc.Close()
	var sink bytes.Buffer
	if _, err := rc.(io.WriterTo).WriteTo(&sink); err != nil {
		t.Fatal(err)
	}
	if want := string(hello) + "after and more"; sink.String() != want {
		t.Fatalf("WriteTo wrote %d bytes, want %d", sink.Len(), len(want))
	}

	// Over a pipe, CloseWrite is unsupported.
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if err := newConn(a, nil).CloseWrite(); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("CloseWrite on a pipe: %v", err)
	}
}
