package l4

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCopyBursts sends many writes of random sizes through each kind of copy, in both
// directions at once, and checks every byte arrives in order and the ends are carried.
// A splicing direction waits between bursts with nothing held, so this crosses that
// wait many times.
func TestCopyBursts(t *testing.T) {
	for _, mode := range []string{"splice", "buffer"} {
		t.Run(mode, func(t *testing.T) {
			client, proxyIn := tcpPair(t)
			proxyOut, peer := tcpPair(t)
			var in, out net.Conn = proxyIn, proxyOut
			if mode == "buffer" {
				in, out = hidden{proxyIn}, hidden{proxyOut}
			}
			var pool sync.Pool
			pool.New = func() any { p := make([]byte, copyBufSize); return &p }
			f := &flow{cfg: &copyCfg{idle: time.Minute, bufs: &pool}, client: in, up: out}
			var counts [2]atomic.Int64
			up, down := &counts[0], &counts[1]
			ran := make(chan error, 1)
			go func() { ran <- f.run(&counts) }()

			rng := rand.New(rand.NewPCG(1, 2))
			var sent [2]bytes.Buffer
			for i := range 3000 {
				b := make([]byte, 1+rng.IntN(3000))
				for j := range b {
					b[j] = byte(i + j)
				}
				sent[i%2].Write(b)
			}
			send := func(c net.Conn, data []byte, seed uint64) {
				r := rand.New(rand.NewPCG(seed, 3))
				for len(data) > 0 {
					n := min(len(data), 1+r.IntN(5000))
					if _, err := c.Write(data[:n]); err != nil {
						t.Error(err)
						return
					}
					data = data[n:]
				}
				c.(*net.TCPConn).CloseWrite()
			}
			var got [2][]byte
			var wg sync.WaitGroup
			wg.Add(4)
			go func() { defer wg.Done(); send(client, sent[0].Bytes(), 7) }()
			go func() { defer wg.Done(); send(peer, sent[1].Bytes(), 8) }()
			go func() { defer wg.Done(); got[0], _ = io.ReadAll(peer) }()
			go func() { defer wg.Done(); got[1], _ = io.ReadAll(client) }()
			wg.Wait()
			if err := <-ran; err != nil {
				t.Fatalf("flow: %v", err)
			}
			for i, dir := range []string{"client to peer", "peer to client"} {
				if !bytes.Equal(got[i], sent[i].Bytes()) {
					t.Errorf("%s: got %d bytes, sent %d, equal %v", dir, len(got[i]), sent[i].Len(), bytes.Equal(got[i], sent[i].Bytes()))
				}
			}
			if up.Load() != int64(sent[0].Len()) || down.Load() != int64(sent[1].Len()) {
				t.Errorf("counted %d up, %d down; sent %d, %d", up.Load(), down.Load(), sent[0].Len(), sent[1].Len())
			}
		})
	}
}

// soloOwner owns a flow outside a service: its abort closes the flow's sockets, and
// the flow's end goes to done.
type soloOwner struct {
	f    *flow
	done chan error
}

func (o *soloOwner) abort(error)                 { o.f.client.Close(); o.f.up.Close() }
func (o *soloOwner) ended(err error)             { o.done <- err }
func (o *soloOwner) setConns(net.Conn, net.Conn) {}

// run copies both ways until both ends were carried, or a failure, and returns the
// flow's end.
func (f *flow) run(counts *[2]atomic.Int64) error {
	o := &soloOwner{f: f, done: make(chan error, 1)}
	f.own = o
	f.start(counts)
	return <-o.done
}
