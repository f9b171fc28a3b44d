package tlspeek

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

// seedHellos adds real and hand-made hellos to a fuzz corpus, through add.
func seedHellos(f *testing.F, add func(msg []byte)) {
	for _, cfg := range []*tls.Config{
		{ServerName: "a.example", NextProtos: []string{"h2", "http/1.1"}},
		{ServerName: "b.example", MaxVersion: tls.VersionTLS12},
		{ServerName: "c.example", CurvePreferences: []tls.CurveID{tls.X25519MLKEM768}, MinVersion: tls.VersionTLS13},
	} {
		records := clientHello(f, cfg)
		// crypto/tls sends the hello in one record here: its message follows the header.
		add(records[recordHeaderLen:])
	}
	add(helloMsg(0x0303, nil))
	add(helloMsg(0x0303, []ext{{extServerName, sniExt("Mixed.Case")}, {extALPN, alpnExt("a", "bc")}, {extSupportedVersions, versionsExt(0x0a0a, 0x0304)}}))
	add(helloMsg(0x0303, []ext{{extServerName, u16(cat([]byte{1}, u16('x'), []byte{0}, u16('y'))...)}}))
}

// FuzzParse feeds arbitrary bytes to Parse and to Peek: neither may panic, they must
// agree, and a Hello they return keeps its invariants.
func FuzzParse(f *testing.F) {
	seedHellos(f, func(msg []byte) {
		f.Add(frame(msg, 0))
		f.Add(frame(msg, 5))
	})
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Add([]byte{22, 3, 1, 0, 0})
	f.Fuzz(func(t *testing.T, records []byte) {
		h, n, err := Parse(records)
		if err == nil {
			if n <= 0 || n > len(records) {
				t.Fatalf("n = %d of %d", n, len(records))
			}
			checkHello(t, h)
		} else if !errors.Is(err, ErrNotTLS) && !errors.Is(err, ErrMalformed) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("Parse: unexpected error %v", err)
		}

		chunk := 0
		if len(records) > 0 {
			chunk = int(records[len(records)-1] % 4) // 0 is all at once
		}
		ph, rc, perr := Peek(&memConn{data: records, chunk: chunk}, 1<<20, 0)
		switch {
		case errors.Is(perr, ErrTooLarge):
			// A header announced more than maxBytes; Parse, unbounded, may have gone
			// on to find the end of the data or a malformed record.
			if err == nil || errors.Is(err, ErrNotTLS) {
				t.Fatalf("Parse: %v, Peek: %v", err, perr)
			}
		case err == nil:
			if perr != nil {
				t.Fatalf("Parse succeeded, Peek: %v", perr)
			}
			if ph.ServerName != h.ServerName || !slices.Equal(ph.ALPN, h.ALPN) || !slices.Equal(ph.Versions, h.Versions) {
				t.Fatalf("Parse %+v, Peek %+v", h, ph)
			}
		case errors.Is(err, io.ErrUnexpectedEOF):
			if !errors.Is(perr, io.ErrUnexpectedEOF) && !errors.Is(perr, io.EOF) {
				t.Fatalf("Parse: %v, Peek: %v", err, perr)
			}
		case errors.Is(err, ErrNotTLS) && !errors.Is(perr, ErrNotTLS),
			errors.Is(err, ErrMalformed) && !errors.Is(perr, ErrMalformed):
			t.Fatalf("Parse: %v, Peek: %v", err, perr)
		}
		got, rerr := io.ReadAll(rc)
		if rerr != nil || !bytes.Equal(got, records) {
			t.Fatalf("the peeked conn yields %d bytes (%v), want %d", len(got), rerr, len(records))
		}
	})
}

// FuzzClientHello wraps arbitrary ClientHello bodies in records of frag bytes and holds
// Parse to crypto/tls's server: a hello crypto/tls accepts must parse to the same
// server name and ALPN list (or be refused for its server name's bytes alone).
func FuzzClientHello(f *testing.F) {
	seedHellos(f, func(msg []byte) {
		f.Add(msg[handshakeHeaderLen:], uint8(0))
		f.Add(msg[handshakeHeaderLen:], uint8(3))
	})
	f.Fuzz(func(t *testing.T, body []byte, frag uint8) {
		if len(body) > 1<<16 {
			return
		}
		msg := append([]byte{typeClientHello, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
		records := frame(msg, int(frag))
		h, _, err := Parse(records)
		if err == nil {
			checkHello(t, h)
		}

		var chi *tls.ClientHelloInfo
		stop := errors.New("stop")
		_ = tls.Server(&memConn{data: records}, &tls.Config{
			GetConfigForClient: func(info *tls.ClientHelloInfo) (*tls.Config, error) {
				chi = info
				return nil, stop
			},
		}).Handshake()
		if chi == nil {
			return // crypto/tls refused it
		}
		if !validName(chi.ServerName) {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("server name %q: Parse: %v, want ErrMalformed", chi.ServerName, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("crypto/tls accepts the hello, Parse: %v", err)
		}
		if h.ServerName != strings.ToLower(chi.ServerName) || !slices.Equal(h.ALPN, chi.SupportedProtos) {
			t.Fatalf("Parse %q %q, crypto/tls %q %q", h.ServerName, h.ALPN, chi.ServerName, chi.SupportedProtos)
		}
	})
}

// validName reports whether a server name crypto/tls accepted passes the rules of Parse
// too.
func validName(s string) bool {
	if len(s) > maxServerName {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// checkHello checks the invariants of a parsed Hello.
func checkHello(t *testing.T, h Hello) {
	t.Helper()
	if len(h.Versions) == 0 {
		t.Fatal("no versions")
	}
	if h.ServerName != strings.ToLower(h.ServerName) || len(h.ServerName) > maxServerName || strings.HasSuffix(h.ServerName, ".") || !validName(h.ServerName) {
		t.Fatalf("server name %q", h.ServerName)
	}
	if h.ALPN != nil && len(h.ALPN) == 0 {
		t.Fatal("empty ALPN list")
	}
	for _, p := range h.ALPN {
		if p == "" || len(p) > 255 {
			t.Fatalf("ALPN name %q", p)
		}
	}
}
