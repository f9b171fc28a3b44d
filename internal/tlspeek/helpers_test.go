package tlspeek

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

// memConn is a net.Conn that reads from a byte slice, at most chunk bytes a time (all
// at once if chunk is 0), then io.EOF; it discards writes and ignores deadlines.
type memConn struct {
	data  []byte
	off   int
	chunk int
}

func (c *memConn) Read(p []byte) (int, error) {
	if c.off == len(c.data) {
		return 0, io.EOF
	}
	if c.chunk > 0 && len(p) > c.chunk {
		p = p[:c.chunk]
	}
	n := copy(p, c.data[c.off:])
	c.off += n
	return n, nil
}

func (c *memConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *memConn) Close() error                     { return nil }
func (c *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// trickleConn reads one byte at a time from the connection it wraps.
type trickleConn struct{ net.Conn }

func (c trickleConn) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return c.Conn.Read(p)
}

// reframeConn rewrites the plaintext handshake records written to it as records of at
// most frag bytes each; other records, and all after a ChangeCipherSpec (TLS 1.2 then
// encrypts its Finished), pass unchanged.
type reframeConn struct {
	net.Conn
	frag      int
	pending   []byte
	encrypted bool
}

func (c *reframeConn) Write(p []byte) (int, error) {
	c.pending = append(c.pending, p...)
	var out []byte
	for len(c.pending) >= recordHeaderLen {
		n := int(c.pending[3])<<8 | int(c.pending[4])
		if len(c.pending) < recordHeaderLen+n {
			break
		}
		rec := c.pending[:recordHeaderLen+n]
		if rec[0] == 20 { // change_cipher_spec
			c.encrypted = true
		}
		if rec[0] == recordTypeHandshake && !c.encrypted {
			out = append(out, frameVersion(rec[recordHeaderLen:], c.frag, rec[1], rec[2])...)
		} else {
			out = append(out, rec...)
		}
		c.pending = c.pending[recordHeaderLen+n:]
	}
	if _, err := c.Conn.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// frame wraps handshake bytes in records of at most frag bytes each (16 KiB if 0).
func frame(msg []byte, frag int) []byte { return frameVersion(msg, frag, 3, 1) }

// frameVersion is frame with records of version major.minor.
func frameVersion(msg []byte, frag int, major, minor byte) []byte {
	if frag <= 0 || frag > maxPlaintext {
		frag = maxPlaintext
	}
	var out []byte
	for len(msg) > 0 {
		n := min(frag, len(msg))
		out = append(out, recordTypeHandshake, major, minor, byte(n>>8), byte(n))
		out = append(out, msg[:n]...)
		msg = msg[n:]
	}
	return out
}

// ext is one extension of a hand-made hello.
type ext struct {
	typ  uint16
	data []byte
}

// helloMsg builds a ClientHello handshake message (header included) with the given
// extensions; extensions nil leaves the block out.
func helloMsg(version uint16, exts []ext) []byte {
	body := []byte{byte(version >> 8), byte(version)}
	body = append(body, make([]byte, 32)...)          // random
	body = append(body, 0)                            // session id
	body = append(body, 0, 4, 0x13, 0x01, 0xc0, 0x2f) // two suites
	body = append(body, 1, 0)                         // null compression
	if exts != nil {
		var block []byte
		for _, e := range exts {
			block = append(block, byte(e.typ>>8), byte(e.typ), byte(len(e.data)>>8), byte(len(e.data)))
			block = append(block, e.data...)
		}
		body = append(body, byte(len(block)>>8), byte(len(block)))
		body = append(body, block...)
	}
	return append([]byte{typeClientHello, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
}

// u16 returns b with a two-byte length prefix; u8 with a one-byte one.
func u16(b ...byte) []byte { return append([]byte{byte(len(b) >> 8), byte(len(b))}, b...) }
func u8(b ...byte) []byte  { return append([]byte{byte(len(b))}, b...) }

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// sniExt returns the data of a server_name extension naming host.
func sniExt(host string) []byte { return u16(cat([]byte{0}, u16([]byte(host)...))...) }

// alpnExt returns the data of an ALPN extension listing protos.
func alpnExt(protos ...string) []byte {
	var list []byte
	for _, p := range protos {
		list = append(list, u8([]byte(p)...)...)
	}
	return u16(list...)
}

// versionsExt returns the data of a supported_versions extension.
func versionsExt(vs ...uint16) []byte {
	var list []byte
	for _, v := range vs {
		list = append(list, byte(v>>8), byte(v))
	}
	return u8(list...)
}

// clientHello returns the records of the ClientHello a crypto/tls client sends with
// cfg.
func clientHello(tb testing.TB, cfg *tls.Config) []byte {
	tb.Helper()
	a, b := net.Pipe()
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = tls.Client(a, cfg).Handshake() // fails once b closes
		a.Close()
	})
	defer wg.Wait()
	defer b.Close()
	var got []byte
	buf := make([]byte, 4096)
	for {
		n, err := b.Read(buf)
		got = append(got, buf[:n]...)
		if _, _, perr := Parse(got); !errors.Is(perr, io.ErrUnexpectedEOF) {
			if perr != nil {
				tb.Fatalf("Parse of crypto/tls's hello: %v", perr)
			}
			return got
		}
		if err != nil {
			tb.Fatalf("reading the hello: %v", err)
		}
	}
}

// testPKI is a self-signed certificate for the names the tests use, and a pool that
// trusts it.
type testPKI struct {
	cert tls.Certificate
	pool *x509.CertPool
}

func newPKI(tb testing.TB) testPKI {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tlspeek test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		DNSNames:              []string{"a.example", "b.example", "c.example", "d.example"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return testPKI{cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool: pool}
}
