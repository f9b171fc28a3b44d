package tlspeek

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestParseValid(t *testing.T) {
	sni := ext{extServerName, sniExt("a.example")}
	cases := []struct {
		name string
		msg  []byte
		want Hello
	}{
		{"no extensions", helloMsg(0x0303, nil), Hello{Versions: []uint16{0x0303}}},
		{"empty extensions", helloMsg(0x0301, []ext{}), Hello{Versions: []uint16{0x0301}}},
		{"sni only", helloMsg(0x0303, []ext{sni}), Hello{ServerName: "a.example", Versions: []uint16{0x0303}}},
		{"all three", helloMsg(0x0303, []ext{
			{0x0a0a, nil}, sni, {extALPN, alpnExt("h2", "http/1.1")}, {extSupportedVersions, versionsExt(0x1a1a, 0x0304, 0x0303)},
		}), Hello{ServerName: "a.example", ALPN: []string{"h2", "http/1.1"}, Versions: []uint16{0x1a1a, 0x0304, 0x0303}}},
		{"upper case", helloMsg(0x0303, []ext{{extServerName, sniExt("WWW.Example.COM")}}),
			Hello{ServerName: "www.example.com", Versions: []uint16{0x0303}}},
		{"other name type first", helloMsg(0x0303, []ext{{extServerName, u16(cat([]byte{7}, u16('x'), []byte{0}, u16([]byte("b.example")...))...)}}),
			Hello{ServerName: "b.example", Versions: []uint16{0x0303}}},
		{"other name type only", helloMsg(0x0303, []ext{{extServerName, u16(cat([]byte{7}, u16('x'))...)}}),
			Hello{Versions: []uint16{0x0303}}},
		{"255-byte name", helloMsg(0x0303, []ext{{extServerName, sniExt(strings.Repeat("a", 255))}}),
			Hello{ServerName: strings.Repeat("a", 255), Versions: []uint16{0x0303}}},
		{"duplicate unknown extension", helloMsg(0x0303, []ext{{99, nil}, {99, nil}}), Hello{Versions: []uint16{0x0303}}},
	}
	for _, tc := range cases {
		for _, frag := range []int{0, 1, 7} {
			records := frame(tc.msg, frag)
			h, n, err := Parse(append(slices.Clip(records), 23, 3, 3, 0, 1, 0)) // bytes after are not looked at
			if err != nil {
				t.Fatalf("%s, frag %d: %v", tc.name, frag, err)
			}
			if n != len(records) {
				t.Errorf("%s, frag %d: n = %d, want %d", tc.name, frag, n, len(records))
			}
			if h.ServerName != tc.want.ServerName || !slices.Equal(h.ALPN, tc.want.ALPN) || !slices.Equal(h.Versions, tc.want.Versions) {
				t.Errorf("%s, frag %d: %+v, want %+v", tc.name, frag, h, tc.want)
			}
			if (h.ALPN == nil) != (tc.want.ALPN == nil) {
				t.Errorf("%s: ALPN nil-ness %v", tc.name, h.ALPN == nil)
			}
		}
	}
}

func TestParseErrors(t *testing.T) {
	good := helloMsg(0x0303, []ext{{extServerName, sniExt("a.example")}})
	rec := frame(good, 0)
	withExt := func(e ...ext) []byte { return frame(helloMsg(0x0303, e), 0) }
	// msg returns the records of a message whose body is body.
	msg := func(typ byte, body []byte) []byte {
		return frame(cat([]byte{typ, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body), 0)
	}
	goodBody := good[4:]
	cases := []struct {
		name    string
		records []byte
		want    error
	}{
		{"http", []byte("GET / HTTP/1.1\r\n"), ErrNotTLS},
		{"alert first", []byte{21, 3, 1, 0, 2, 2, 40}, ErrNotTLS},
		{"sslv2", []byte{0x80, 0x2e, 1, 3, 1}, ErrNotTLS},
		{"record major 2", []byte{22, 2, 0, 0, 4}, ErrNotTLS},
		{"empty record", cat([]byte{22, 3, 1, 0, 0}, rec), ErrMalformed},
		{"oversized record", cat([]byte{22, 3, 1, 0x40, 0x01}, make([]byte, maxPlaintext+1)), ErrMalformed},
		{"alert mid-hello", cat(frame(good[:10], 0), []byte{21, 3, 3, 0, 2, 2, 40}, frame(good[10:], 0)), ErrMalformed},
		{"app data mid-hello", cat(frame(good[:2], 0), []byte{23, 3, 3, 0, 1, 0}), ErrMalformed},
		{"ccs mid-hello", cat(frame(good[:50], 0), []byte{20, 3, 3, 0, 1, 1}), ErrMalformed},
		{"server hello", msg(2, goodBody), ErrMalformed},
		{"bytes after the hello in its record", frame(cat(good, []byte{0}), 0), ErrMalformed},
		{"second message in the last record", frame(cat(good, []byte{1, 0, 0, 0}), 3), ErrMalformed},
		{"truncated random", msg(1, goodBody[:20]), ErrMalformed},
		{"session id past the end", msg(1, cat(goodBody[:34], []byte{200})), ErrMalformed},
		{"odd cipher suites", msg(1, cat(goodBody[:35], []byte{0, 3, 0x13, 1, 0, 1, 0})), ErrMalformed},
		{"byte after the extensions", msg(1, cat(goodBody, []byte{0})), ErrMalformed},
		{"extensions length lies", msg(1, cat(helloMsg(0x0303, nil)[4:], []byte{0, 50, 0, 0, 0, 0})), ErrMalformed},
		{"truncated extension", msg(1, cat(helloMsg(0x0303, nil)[4:], []byte{0, 6, 0, 0, 0, 9, 1, 2})), ErrMalformed},
		{"extension header cut", msg(1, cat(helloMsg(0x0303, nil)[4:], []byte{0, 3, 0, 0, 0})), ErrMalformed},
		{"sni empty list", withExt(ext{extServerName, u16()}), ErrMalformed},
		{"sni no list", withExt(ext{extServerName, nil}), ErrMalformed},
		{"sni empty name", withExt(ext{extServerName, u16(0, 0, 0)}), ErrMalformed},
		{"sni list length lies", withExt(ext{extServerName, cat(sniExt("a.example"), []byte{0})}), ErrMalformed},
		{"sni name length lies", withExt(ext{extServerName, u16(0, 0, 9, 'a')}), ErrMalformed},
		{"sni two host names", withExt(ext{extServerName, u16(cat([]byte{0}, u16('a'), []byte{0}, u16('b'))...)}), ErrMalformed},
		{"sni trailing dot", withExt(ext{extServerName, sniExt("a.example.")}), ErrMalformed},
		{"sni space", withExt(ext{extServerName, sniExt("a example")}), ErrMalformed},
		{"sni nul", withExt(ext{extServerName, sniExt("a\x00.example")}), ErrMalformed},
		{"sni high byte", withExt(ext{extServerName, sniExt("caf\xc3\xa9.example")}), ErrMalformed},
		{"sni 256 bytes", withExt(ext{extServerName, sniExt(strings.Repeat("a", 256))}), ErrMalformed},
		{"sni twice", withExt(ext{extServerName, sniExt("a.example")}, ext{extServerName, sniExt("b.example")}), ErrMalformed},
		{"alpn empty list", withExt(ext{extALPN, u16()}), ErrMalformed},
		{"alpn empty name", withExt(ext{extALPN, u16(2, 'h', '2', 0)}), ErrMalformed},
		{"alpn name length lies", withExt(ext{extALPN, u16(3, 'h', '2')}), ErrMalformed},
		{"alpn list length lies", withExt(ext{extALPN, cat(alpnExt("h2"), []byte{0})}), ErrMalformed},
		{"alpn twice", withExt(ext{extALPN, alpnExt("h2")}, ext{extALPN, alpnExt("h2")}), ErrMalformed},
		{"versions empty", withExt(ext{extSupportedVersions, u8()}), ErrMalformed},
		{"versions odd", withExt(ext{extSupportedVersions, u8(3, 4, 3)}), ErrMalformed},
		{"versions length lies", withExt(ext{extSupportedVersions, cat(versionsExt(0x0304), []byte{3})}), ErrMalformed},
		{"versions none", withExt(ext{extSupportedVersions, nil}), ErrMalformed},
		{"versions twice", withExt(ext{extSupportedVersions, versionsExt(0x0304)}, ext{extSupportedVersions, versionsExt(0x0304)}), ErrMalformed},
		{"cut short", rec[:len(rec)-1], io.ErrUnexpectedEOF},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := Parse(tc.records); !errors.Is(err, tc.want) {
				t.Errorf("Parse: %v, want %v", err, tc.want)
			}
			// Peek agrees, one byte a time or all at once.
			for _, chunk := range []int{0, 1} {
				_, rc, err := Peek(&memConn{data: tc.records, chunk: chunk}, 1<<20, 0)
				if !errors.Is(err, tc.want) {
					t.Errorf("Peek, chunk %d: %v, want %v", chunk, err, tc.want)
				}
				got, _ := io.ReadAll(rc)
				if !bytes.Equal(got, tc.records[:len(got)]) {
					t.Errorf("Peek, chunk %d: replayed bytes differ", chunk)
				}
			}
		})
	}
}

// TestParsePrefixes: every prefix of a real hello is incomplete, never malformed.
func TestParsePrefixes(t *testing.T) {
	for _, cfg := range []*tls.Config{
		{ServerName: "a.example", NextProtos: []string{"h2", "http/1.1"}},
		{ServerName: "b.example", NextProtos: bigALPN()},
	} {
		hello := clientHello(t, cfg)
		for n := range len(hello) {
			if _, _, err := Parse(hello[:n]); !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("Parse of %d of %d bytes: %v", n, len(hello), err)
			}
		}
		h, n, err := Parse(hello)
		if err != nil || n != len(hello) || h.ServerName != cfg.ServerName || !slices.Equal(h.ALPN, cfg.NextProtos) {
			t.Fatalf("Parse: %v, n %d of %d, %q", err, n, len(hello), h.ServerName)
		}
	}
}

// TestBigHelloSpansRecords: the large hello of the tests is carried by more than one
// record, as crypto/tls fragments it.
func TestBigHelloSpansRecords(t *testing.T) {
	hello := clientHello(t, &tls.Config{ServerName: "b.example", NextProtos: bigALPN()})
	records := 0
	for b := hello; len(b) >= recordHeaderLen; records++ {
		b = b[recordHeaderLen+(int(b[3])<<8|int(b[4])):]
	}
	if records < 2 || len(hello) <= maxPlaintext {
		t.Fatalf("%d bytes in %d records", len(hello), records)
	}
}

// TestClaimedLengthCostsNothing: headers that claim a large message cost memory in
// proportion to the bytes that came, not to the claim.
func TestClaimedLengthCostsNothing(t *testing.T) {
	// A 16 MiB message announced, its first bytes in two records.
	records := cat([]byte{22, 3, 1, 0, 6, 1, 0xff, 0xff, 0xff, 3, 3}, []byte{22, 3, 1, 0, 2, 0, 0})
	measure := func(f func()) uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	if n := measure(func() {
		if _, _, err := Parse(records); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("Parse: %v", err)
		}
	}); n > 64<<10 {
		t.Errorf("Parse allocated %d bytes", n)
	}
	if n := measure(func() {
		if _, _, err := Peek(&memConn{data: records}, 32<<20, 0); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("Peek: %v", err)
		}
	}); n > 64<<10 {
		t.Errorf("Peek allocated %d bytes", n)
	}
}
