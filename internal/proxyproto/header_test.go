package proxyproto

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
)

func parseString(s string) (*Header, string, error) {
	br := bufio.NewReader(strings.NewReader(s))
	h, err := Parse(br)
	rest, _ := io.ReadAll(br)
	return h, string(rest), err
}

func TestRoundTrip(t *testing.T) {
	ap := netip.MustParseAddrPort
	tests := []struct {
		name     string
		src, dst netip.AddrPort
		wantV1   string
		fam      Family
		wsrc     netip.AddrPort
		wdst     netip.AddrPort
	}{
		{"ipv4", ap("192.0.2.7:51234"), ap("198.51.100.1:443"), "PROXY TCP4 192.0.2.7 198.51.100.1 51234 443\r\n", INET, ap("192.0.2.7:51234"), ap("198.51.100.1:443")},
		{"ipv6", ap("[2001:db8::1]:1"), ap("[2001:db8::2]:65535"), "PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n", INET6, ap("[2001:db8::1]:1"), ap("[2001:db8::2]:65535")},
		{"mapped is ipv4", ap("[::ffff:10.0.0.1]:80"), ap("10.0.0.2:81"), "PROXY TCP4 10.0.0.1 10.0.0.2 80 81\r\n", INET, ap("10.0.0.1:80"), ap("10.0.0.2:81")},
		{"mixed is ipv6", ap("10.0.0.1:80"), ap("[2001:db8::2]:81"), "PROXY TCP6 ::ffff:10.0.0.1 2001:db8::2 80 81\r\n", INET6, ap("[::ffff:10.0.0.1]:80"), ap("[2001:db8::2]:81")},
		{"unknown", netip.AddrPort{}, ap("10.0.0.2:81"), "PROXY UNKNOWN\r\n", Unspec, netip.AddrPort{}, netip.AddrPort{}},
	}
	for _, tt := range tests {
		for _, v := range []int{1, 2} {
			t.Run(tt.name+"/v"+string(rune('0'+v)), func(t *testing.T) {
				b, err := Append(nil, v, tt.src, tt.dst)
				if err != nil {
					t.Fatal(err)
				}
				if v == 1 && string(b) != tt.wantV1 {
					t.Fatalf("v1 = %q, want %q", b, tt.wantV1)
				}
				h, rest, err := parseString(string(b) + "GET / HTTP/1.1\r\n")
				if err != nil {
					t.Fatal(err)
				}
				if rest != "GET / HTTP/1.1\r\n" {
					t.Errorf("left %q after the header", rest)
				}
				if h.Version != v || h.Command != Proxy || h.Family != tt.fam || h.Source != tt.wsrc || h.Destination != tt.wdst {
					t.Errorf("got %+v", h)
				}
				if h.HasAddresses() != (tt.fam != Unspec) {
					t.Errorf("HasAddresses = %v", h.HasAddresses())
				}
			})
		}
	}
}

func TestTLVs(t *testing.T) {
	b, err := Append(nil, 2, netip.MustParseAddrPort("10.1.1.1:1000"), netip.MustParseAddrPort("10.1.1.2:443"),
		TLV{TypeALPN, []byte("h2")}, TLV{TypeAuthority, []byte("example.com")}, TLV{0xE0, nil})
	if err != nil {
		t.Fatal(err)
	}
	h, _, err := parseString(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := h.Authority(); !ok || a != "example.com" {
		t.Errorf("Authority = %q, %v", a, ok)
	}
	if a, ok := h.ALPN(); !ok || string(a) != "h2" {
		t.Errorf("ALPN = %q, %v", a, ok)
	}
	if len(h.TLVs) != 3 || h.TLVs[2].Type != 0xE0 || len(h.TLVs[2].Value) != 0 {
		t.Errorf("TLVs = %+v", h.TLVs)
	}
	if _, ok := h.TLV(TypeUniqueID); ok {
		t.Error("TLV(UniqueID) found")
	}
	if _, err := Append(nil, 1, netip.AddrPort{}, netip.AddrPort{}, TLV{TypeALPN, nil}); err == nil {
		t.Error("v1 with TLVs: no error")
	}
	if _, err := Append(nil, 3, netip.AddrPort{}, netip.AddrPort{}); err == nil {
		t.Error("version 3: no error")
	}
	if _, err := Append(nil, 2, netip.AddrPort{}, netip.AddrPort{}, TLV{1, make([]byte, MaxV2Payload)}); err == nil {
		t.Error("over MaxV2Payload: no error")
	}
}

func TestLocalAndUnix(t *testing.T) {
	h, rest, err := parseString(string(AppendLocal(nil)) + "x")
	if err != nil || h.Command != Local || h.Family != Unspec || rest != "x" || h.HasAddresses() {
		t.Fatalf("local: %+v %q %v", h, rest, err)
	}
	b := append([]byte{}, sigV2...)
	b = append(b, 0x21, 0x31)
	b = binary.BigEndian.AppendUint16(b, 216)
	addrs := make([]byte, 216)
	copy(addrs, "/run/src.sock")
	copy(addrs[108:], "/run/dst.sock")
	h, _, err = parseString(string(append(b, addrs...)))
	if err != nil || h.Family != Unix || h.SourceUnix != "/run/src.sock" || h.DestinationUnix != "/run/dst.sock" || h.HasAddresses() {
		t.Fatalf("unix: %+v %v", h, err)
	}
	// A LOCAL header may carry addresses; they are read and ignored.
	b, _ = Append(nil, 2, netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.0.0.2:2"))
	b[12] = 0x20
	h, _, err = parseString(string(b))
	if err != nil || h.Command != Local || h.HasAddresses() {
		t.Fatalf("local with addresses: %+v %v", h, err)
	}
}

func v2(verCmd, fam byte, length int, payload []byte) string {
	b := append([]byte{}, sigV2...)
	b = append(b, verCmd, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(length))
	return string(append(b, payload...))
}

func TestMalformed(t *testing.T) {
	ipv4 := make([]byte, 12)
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrTruncated},
		{"bad first byte", "GET / HTTP/1.1\r\n\r\n", ErrNoHeader},
		{"bad v1 signature", "PROXZ TCP4 1.1.1.1 1.1.1.1 1 1\r\n", ErrNoHeader},
		{"bad v2 signature", "\r\n\r\n\x00\r\nQUIT\r" + "\x21\x11\x00\x0c", ErrNoHeader},
		{"v1 truncated", "PROXY TCP4 1.1.1.1 1.1.1.1 1 1", ErrTruncated},
		{"v1 signature truncated", "PROX", ErrTruncated},
		{"v1 overlong", "PROXY TCP6 " + strings.Repeat("1", 100) + "\r\n", ErrTooLong},
		{"v1 no CR", "PROXY TCP4 1.1.1.1 1.1.1.1 1 1\n", ErrInvalid},
		{"v1 unknown family", "PROXY TCP5 1.1.1.1 1.1.1.1 1 1\r\n", ErrInvalid},
		{"v1 UDP4", "PROXY UDP4 1.1.1.1 1.1.1.1 1 1\r\n", ErrInvalid},
		{"v1 missing port", "PROXY TCP4 1.1.1.1 1.1.1.1 1\r\n", ErrInvalid},
		{"v1 extra field", "PROXY TCP4 1.1.1.1 1.1.1.1 1 1 1\r\n", ErrInvalid},
		{"v1 double space", "PROXY TCP4  1.1.1.1 1.1.1.1 1 1\r\n", ErrInvalid},
		{"v1 family mismatch", "PROXY TCP4 ::1 ::1 1 1\r\n", ErrInvalid},
		{"v1 v4 as TCP6", "PROXY TCP6 1.1.1.1 1.1.1.1 1 1\r\n", ErrInvalid},
		{"v1 bad address", "PROXY TCP4 1.1.1 1.1.1.1 1 1\r\n", ErrInvalid},
		{"v1 zone", "PROXY TCP6 fe80::1%eth0 ::1 1 1\r\n", ErrInvalid},
		{"v1 port over 65535", "PROXY TCP4 1.1.1.1 1.1.1.1 65536 1\r\n", ErrInvalid},
		{"v1 port leading zero", "PROXY TCP4 1.1.1.1 1.1.1.1 01 1\r\n", ErrInvalid},
		{"v1 port sign", "PROXY TCP4 1.1.1.1 1.1.1.1 +1 1\r\n", ErrInvalid},
		{"v2 fixed part truncated", string(sigV2) + "\x21\x11", ErrTruncated},
		{"v2 lying length", v2(0x21, 0x11, 12, ipv4[:8]), ErrTruncated},
		{"v2 length shorter than addresses", v2(0x21, 0x11, 8, ipv4[:8]), ErrInvalid},
		{"v2 ipv6 length short", v2(0x21, 0x21, 12, ipv4), ErrInvalid},
		{"v2 unix length short", v2(0x21, 0x31, 12, ipv4), ErrInvalid},
		{"v2 too long", v2(0x21, 0x11, MaxV2Payload+1, nil), ErrTooLong},
		{"v2 version 1", v2(0x11, 0x11, 12, ipv4), ErrInvalid},
		{"v2 version 3", v2(0x31, 0x11, 12, ipv4), ErrInvalid},
		{"v2 command 2", v2(0x22, 0x11, 12, ipv4), ErrInvalid},
		{"v2 unknown family", v2(0x21, 0x41, 12, ipv4), ErrInvalid},
		{"v2 unknown transport", v2(0x21, 0x13, 12, ipv4), ErrInvalid},
		{"v2 proxy without transport", v2(0x21, 0x10, 12, ipv4), ErrInvalid},
		{"v2 TLV lying length", v2(0x21, 0x11, 17, append(append([]byte{}, ipv4...), 0x02, 0x00, 0x09, 'a', 'b')), ErrInvalid},
		{"v2 TLV truncated head", v2(0x21, 0x11, 14, append(append([]byte{}, ipv4...), 0x02, 0x00)), ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _, err := parseString(tt.in)
			if err == nil {
				t.Fatalf("parsed %+v", h)
			}
			if !errors.Is(err, tt.want) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// A header is read without a byte past it, even from a small buffer.
func TestParseReadsNoFurther(t *testing.T) {
	for _, hdr := range []string{"PROXY UNKNOWN\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", string(AppendLocal(nil))} {
		r := &countReader{r: strings.NewReader(hdr + "more")}
		br := bufio.NewReaderSize(&oneByte{r: r}, 128)
		if _, err := Parse(br); err != nil {
			t.Fatal(err)
		}
		if r.n != len(hdr) || br.Buffered() != 0 {
			t.Errorf("%q: read %d bytes, %d buffered", hdr, r.n, br.Buffered())
		}
	}
}

type countReader struct {
	r io.Reader
	n int
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func FuzzParse(f *testing.F) {
	ap := netip.MustParseAddrPort
	for _, v := range []int{1, 2} {
		b, _ := Append(nil, v, ap("192.0.2.1:1"), ap("192.0.2.2:2"))
		f.Add(b)
		b, _ = Append(nil, v, ap("[2001:db8::1]:1"), ap("[2001:db8::2]:2"))
		f.Add(b)
	}
	b, _ := Append(nil, 2, ap("10.0.0.1:1"), ap("10.0.0.2:2"), TLV{TypeAuthority, []byte("a.example")})
	f.Add(b)
	f.Add(AppendLocal(nil))
	f.Add([]byte("PROXY UNKNOWN whatever\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		br := bufio.NewReader(bytes.NewReader(in))
		h, err := Parse(br)
		if err != nil {
			return
		}
		consumed := len(in) - br.Buffered()
		if h.Version == 1 && consumed > MaxV1Bytes || h.Version == 2 && consumed > 16+MaxV2Payload {
			t.Fatalf("consumed %d bytes", consumed)
		}
		if !h.HasAddresses() {
			return
		}
		// What parses re-encodes to a header that parses to the same addresses.
		out, err := Append(nil, h.Version, h.Source, h.Destination)
		if err != nil {
			t.Fatal(err)
		}
		h2, err := Parse(bufio.NewReader(bytes.NewReader(out)))
		if err != nil {
			t.Fatalf("re-encoded %q: %v", out, err)
		}
		if h2.Source.Addr().Unmap() != h.Source.Addr().Unmap() || h2.Source.Port() != h.Source.Port() ||
			h2.Destination.Addr().Unmap() != h.Destination.Addr().Unmap() || h2.Destination.Port() != h.Destination.Port() {
			t.Fatalf("%v %v became %v %v", h.Source, h.Destination, h2.Source, h2.Destination)
		}
	})
}
