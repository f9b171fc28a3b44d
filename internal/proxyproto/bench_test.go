package proxyproto

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/netip"
	"testing"

	pires "github.com/pires/go-proxyproto"

	"github.com/gotthard-proxy/gotthard/internal/testnet"
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

// BenchmarkConnHeader measures what reading a header costs a TCP connection: the
// header and one byte of data arrive together; the "none" case reads the byte alone.
func BenchmarkConnHeader(b *testing.B) {
	hdrs := benchHeaders(b)
	nl, err := NewListener(nil, Options{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	if err != nil {
		b.Fatal(err)
	}
	l := nl.(*Listener)
	for _, name := range []string{"none", "v1", "v2"} {
		b.Run(name, func(b *testing.B) {
			client, server := testnet.Pair(b)
			msg := append(append([]byte{}, hdrs[name]...), 'x')
			one := make([]byte, 1)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := client.Write(msg); err != nil {
					b.Fatal(err)
				}
				var r io.Reader = server
				if name != "none" {
					c := l.Wrap(server)
					if _, err := c.Header(); err != nil {
						b.Fatal(err)
					}
					r = c
				}
				if _, err := io.ReadFull(r, one); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
