package tlspeek

import (
	"crypto/tls"
	"errors"
	"testing"
)

// benchHello is the hello of Go's client with an X25519MLKEM768 key share, a server
// name and two ALPN protocols (about 1.5 KiB).
func benchHello(b *testing.B) []byte {
	return clientHello(b, &tls.Config{ServerName: "a.example", NextProtos: []string{"h2", "http/1.1"}})
}

func BenchmarkParse(b *testing.B) {
	hello := benchHello(b)
	b.SetBytes(int64(len(hello)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Parse(hello); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseFragmented(b *testing.B) {
	records := frame(benchHello(b)[recordHeaderLen:], 512)
	b.SetBytes(int64(len(records)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Parse(records); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPeek peeks at an in-memory connection and reads the hello back, as a proxy
// handing the connection on would.
func BenchmarkPeek(b *testing.B) {
	hello := benchHello(b)
	c := &memConn{data: hello}
	buf := make([]byte, 4096)
	b.SetBytes(int64(len(hello)))
	b.ReportAllocs()
	for b.Loop() {
		c.off = 0
		_, rc, err := Peek(c, 0, 0)
		if err != nil {
			b.Fatal(err)
		}
		if n, err := rc.Read(buf); err != nil || n != len(hello) {
			b.Fatal(n, err)
		}
	}
}

// BenchmarkCryptoTLSHello is the yardstick: crypto/tls's server reading the same hello
// up to GetConfigForClient, where a terminating proxy would see the server name.
func BenchmarkCryptoTLSHello(b *testing.B) {
	hello := benchHello(b)
	c := &memConn{data: hello}
	stop := errors.New("stop")
	cfg := &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return nil, stop }}
	b.SetBytes(int64(len(hello)))
	b.ReportAllocs()
	for b.Loop() {
		c.off = 0
		if err := tls.Server(c, cfg).Handshake(); !errors.Is(err, stop) {
			b.Fatal(err)
		}
	}
}
