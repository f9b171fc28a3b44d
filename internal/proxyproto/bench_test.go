package proxyproto

import (
	"bufio"
	"bytes"
	"net"
	"net/netip"
	"testing"

	pires "github.com/pires/go-proxyproto"
)

// The parsers side by side: ours and github.com/pires/go-proxyproto's, on the same
// headers, each from a bufio.Reader reset for every header.
func benchHeaders(b *testing.B) map[string][]byte {
	src, dst := netip.MustParseAddrPort("203.0.113.7:41000"), netip.MustParseAddrPort("198.51.100.2:443")
	v1, _ := Append(nil, 1, src, dst)
	v2, _ := Append(nil, 2, src, dst)
	v2tlv, _ := Append(nil, 2, src, dst, TLV{TypeALPN, []byte("h2")}, TLV{TypeAuthority, []byte("www.example.com")})
	return map[string][]byte{"v1": v1, "v2": v2, "v2-tlv": v2tlv}
}

func BenchmarkParse(b *testing.B) {
	for _, name := range []string{"v1", "v2", "v2-tlv"} {
		in := benchHeaders(b)[name]
		r := bytes.NewReader(in)
		br := bufio.NewReader(r)
		b.Run(name+"/ours", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r.Reset(in)
				br.Reset(r)
				if _, err := Parse(br); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/pires", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r.Reset(in)
				br.Reset(r)
				if _, err := pires.Read(br); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppend(b *testing.B) {
	src, dst := netip.MustParseAddrPort("203.0.113.7:41000"), netip.MustParseAddrPort("198.51.100.2:443")
	for _, v := range []int{1, 2} {
		name := "v1"
		if v == 2 {
			name = "v2"
		}
		b.Run(name+"/ours", func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 64)
			for b.Loop() {
				if _, err := Append(buf[:0], v, src, dst); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/pires", func(b *testing.B) {
			b.ReportAllocs()
			sa, da := net.TCPAddrFromAddrPort(src), net.TCPAddrFromAddrPort(dst)
			for b.Loop() {
				if _, err := pires.HeaderProxyFromAddrs(byte(v), sa, da).Format(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
