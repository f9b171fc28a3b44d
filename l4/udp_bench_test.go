package l4

import (
	"errors"
	"net"
	"testing"
)

// echoUDP echoes every datagram on a loopback socket until the test ends.
func echoUDP(b testing.TB) string {
	b.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			pc.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	b.Cleanup(func() { pc.Close(); <-done })
	return pc.LocalAddr().String()
}

// BenchmarkUDPDatagram measures one 64-byte datagram to an echo upstream and its
// echo back: "direct" without the service, "proxied" through it (one session, its
// steady state). The difference is the service's cost per round trip.
func BenchmarkUDPDatagram(b *testing.B) {
	for _, proxied := range []bool{false, true} {
		name := "direct"
		if proxied {
			name = "proxied"
		}
		b.Run(name, func(b *testing.B) {
			addr := echoUDP(b)
			if proxied {
				_, addr = startUDP(b, &udpTestApp{peers: []string{addr}}, UDPOptions{})
			}
			benchRoundTrips(b, addr)
		})
	}
}

func benchRoundTrips(b *testing.B, addr string) {
	conn, err := net.Dial("udp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	msg := make([]byte, 64)
	buf := make([]byte, 2048)
	if _, err := conn.Write(msg); err != nil { // makes the session
		b.Fatal(err)
	}
	if _, err := conn.Read(buf); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := conn.Write(msg); err != nil {
			b.Fatal(err)
		}
		if n, err := conn.Read(buf); err != nil || n != len(msg) {
			b.Fatal(n, err)
		}
	}
}
