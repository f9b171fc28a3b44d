// Command upgradeorigin is the origin of the zero-downtime upgrade benchmark
// (bench/upgrade.sh). On loopback it serves, on -listen, HTTP/1.1 with keep-alive:
//
//	GET /1k   1024 bytes
//	GET /ws   a WebSocket that echoes every message, text or binary
//
// and on -grpc, gRPC over HTTP/2 in clear text: the server-streaming method of package
// bench/internal/tick, which sends "tick N" every -interval until the client cancels.
//
// It runs until SIGINT or SIGTERM, then prints how many WebSocket connections and gRPC
// streams it served.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/grpc"

	"github.com/gotthard-proxy/gotthard/bench/internal/tick"
)

// wsIdle bounds the wait for a WebSocket client's next message; the benchmark's
// clients send one every 100 ms.
const wsIdle = time.Minute

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve HTTP/1.1 (/1k, /ws) on")
	grpcListen := flag.String("grpc", "127.0.0.1:0", "address to serve gRPC over h2c on")
	interval := flag.Duration("interval", 100*time.Millisecond, "time between two messages of a gRPC stream")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("upgradeorigin: ")
	if err := run(*listen, *grpcListen, *interval); err != nil {
		log.Fatal(err)
	}
}

// origin counts what it served.
type origin struct {
	interval   time.Duration
	wsConns    atomic.Int64
	wsMessages atomic.Int64
	streams    atomic.Int64
}

func run(listen, grpcListen string, interval time.Duration) error {
	if interval <= 0 {
		return fmt.Errorf("-interval must be positive, got %v", interval)
	}
	o := &origin{interval: interval}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	gln, err := net.Listen("tcp", grpcListen)
	if err != nil {
		ln.Close()
		return err
	}
	log.Printf("HTTP on %s, gRPC on %s", ln.Addr(), gln.Addr())

	body := bytes.Repeat([]byte("a"), 1024)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /1k", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(body)
	})
	mux.HandleFunc("GET /ws", o.echo)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 5 * time.Minute}

	gs := grpc.NewServer(grpc.ForceServerCodec(tick.Codec{}))
	gs.RegisterService(&grpc.ServiceDesc{
		ServiceName: tick.Service,
		HandlerType: (*any)(nil),
		Streams: []grpc.StreamDesc{{
			StreamName:    tick.StreamName,
			ServerStreams: true,
			Handler:       func(_ any, ss grpc.ServerStream) error { return o.ticks(ss) },
		}},
	}, nil)

	errc := make(chan error, 2)
	go func() { errc <- hs.Serve(ln) }()
	go func() { errc <- gs.Serve(gln) }()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case s := <-sig:
		log.Printf("%v: stopping", s)
	case err = <-errc:
		err = fmt.Errorf("serve: %w", err)
	}
	gs.Stop()
	hs.Close() // hijacked WebSocket connections end with their handlers' reads
	log.Printf("served %d WebSocket connections (%d messages echoed) and %d gRPC streams",
		o.wsConns.Load(), o.wsMessages.Load(), o.streams.Load())
	return err
}

// echo accepts a WebSocket and sends every message back until the client closes it.
func (o *origin) echo(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept has answered the client
	}
	defer c.CloseNow()
	o.wsConns.Add(1)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), wsIdle)
		typ, msg, err := c.Read(ctx)
		if err == nil {
			err = c.Write(ctx, typ, msg)
		}
		cancel()
		if err != nil {
			return
		}
		o.wsMessages.Add(1)
	}
}

// ticks sends "tick N" every interval until the client cancels the stream.
func (o *origin) ticks(ss grpc.ServerStream) error {
	o.streams.Add(1)
	var req []byte
	if err := ss.RecvMsg(&req); err != nil {
		return err
	}
	t := time.NewTicker(o.interval)
	defer t.Stop()
	for n := 1; ; n++ {
		if err := ss.SendMsg(fmt.Appendf(nil, "tick %d", n)); err != nil {
			return err
		}
		select {
		case <-ss.Context().Done():
			if errors.Is(ss.Context().Err(), context.Canceled) {
				return nil
			}
			return ss.Context().Err()
		case <-t.C:
		}
	}
}
