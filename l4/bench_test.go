package l4

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hidden hides a connection's concrete type, so that the copy cannot splice.
type hidden struct{ net.Conn }

func (h hidden) CloseWrite() error { return h.Conn.(*net.TCPConn).CloseWrite() }

// BenchmarkCopy measures one direction of the copy between two loopback TCP
// connections: with splice(2) (both sides plain TCP) and with the pooled buffer (as a
// TLS side would have it, without the cost of TLS itself). Bytes/s are the
// throughput; allocs are per 64 KiB written; cpu-µs/MiB is the process's CPU time per
// MiB copied, which a loaded machine distorts less than the throughput.
func BenchmarkCopy(b *testing.B) {
	for _, mode := range []string{"splice", "buffer"} {
		b.Run(mode, func(b *testing.B) {
			src, proxyIn := tcpPair(b)
			proxyOut, dst := tcpPair(b)
			var in, out net.Conn = proxyIn, proxyOut
			if mode == "buffer" {
				in, out = hidden{proxyIn}, hidden{proxyOut}
			}
			if spliceable(out, in) != (mode == "splice") && mode == "splice" {
				b.Skip("no splice(2) on this platform")
			}
			var pool sync.Pool
			pool.New = func() any { p := make([]byte, copyBufSize); return &p }
			f := &flow{cfg: &copyCfg{idle: time.Minute, bufs: &pool}, client: in, up: out}
			var counts [2]atomic.Int64
			up := &counts[0]
			ran := make(chan error, 1)
			go func() { ran <- f.run(&counts) }()
			drained := make(chan int64, 1)
			go func() { n, _ := io.Copy(io.Discard, dst); drained <- n }()

			buf := make([]byte, 64<<10)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				if _, err := src.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if cpu := cpuTime() - cpu0; cpu > 0 {
				// The whole process's CPU: the copy, and the writer and reader at the
				// ends, which cost the same in both modes.
				b.ReportMetric(float64(cpu.Microseconds())/(float64(b.N)*float64(len(buf))/(1<<20)), "cpu-µs/MiB")
			}
			src.(*net.TCPConn).CloseWrite()
			if n := <-drained; n != up.Load() {
				b.Fatalf("drained %d bytes, copied %d", n, up.Load())
			}
			dst.Close()
			src.Close()
			<-ran
		})
	}
}

// BenchmarkConnection measures a whole short connection through the service: accept,
// phases, connect to the peer, one 64-byte round trip, both ends closing.
func BenchmarkConnection(b *testing.B) {
	app := newTestApp(&Peer{Address: backend(b, echo)})
	app.ends = make(chan ended, 1)
	drain := make(chan struct{})
	go func() {
		for range app.ends {
		}
		close(drain)
	}()
	b.Cleanup(func() { close(app.ends); <-drain }) // runs after the service's Close
	_, addr := newService(b, app, ServiceOptions{})
	msg := make([]byte, 64)
	got := make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, got); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
