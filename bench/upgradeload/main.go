// Command upgradeload is the load client of the zero-downtime upgrade benchmark
// (bench/upgrade.sh). For -duration it keeps, against a proxy in front of
// bench/upgradeorigin:
//
//   - -ws-clients WebSocket clients on -ws, each sending a message every -ws-interval
//     and checking that the same message comes back before the next one is sent, and
//     reconnecting when the connection is closed;
//   - with -grpc, one gRPC client of the server-streaming method of bench/internal/tick,
//     counting its messages and how each stream ended, and opening a new stream when one
//     ends;
//   - with -http, -http-conns HTTP/1.1 keep-alive clients sending GET requests back to
//     back (for machines without wrk).
//
// With -reconnect-for, the clients stop opening connections and streams after that
// time: what is open then is kept until it is closed or -duration ends, and the tool
// exits once everything has ended. This is how a graceful shutdown is watched: the
// connections open at SIGTERM must be closed by the proxy (WebSockets with code 1001,
// gRPC streams with Unavailable) once its grace period is over.
//
// At the end it prints key=value lines on standard output (see [report] for the keys)
// and the same in words on standard error. failures= counts everything that is a
// failure: a refused, reset or failed connection or handshake, a WebSocket closed with
// another code than 1001 (going away) or dropped without a close, an echo lost or
// wrong, a gRPC stream that failed to open or ended otherwise than with Unavailable,
// and an HTTP error or non-2xx response. A message still unanswered when the proxy
// closes a WebSocket with 1001 is counted apart (ws_unanswered_at_1001), not as a
// failure: after a close frame the proxy may send no more data (RFC 6455, 5.5.1).
// The exit status is 3 when failures is not 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/gotthard-proxy/gotthard/bench/internal/tick"
)

// config is what the flags say.
type config struct {
	duration     time.Duration
	reconnectFor time.Duration // 0: the whole duration
	wsURL        string
	wsClients    int
	wsInterval   time.Duration
	echoTimeout  time.Duration
	grpcAddr     string
	httpURL      string
	httpConns    int
}

func main() {
	var cfg config
	flag.DurationVar(&cfg.duration, "duration", 30*time.Second, "how long to run")
	flag.DurationVar(&cfg.reconnectFor, "reconnect-for", 0, "open connections and streams only during this first part of the run (0: all of it)")
	flag.StringVar(&cfg.wsURL, "ws", "", "WebSocket echo URL, ws://HOST:PORT/ws (empty: no WebSocket clients)")
	flag.IntVar(&cfg.wsClients, "ws-clients", 20, "WebSocket clients")
	flag.DurationVar(&cfg.wsInterval, "ws-interval", 100*time.Millisecond, "time between two messages of a WebSocket client")
	flag.DurationVar(&cfg.echoTimeout, "echo-timeout", 2*time.Second, "an echo that takes longer is lost")
	flag.StringVar(&cfg.grpcAddr, "grpc", "", "HOST:PORT of the gRPC server-stream service over h2c (empty: no gRPC client)")
	flag.StringVar(&cfg.httpURL, "http", "", "URL to GET over HTTP/1.1 keep-alive (empty: no HTTP load)")
	flag.IntVar(&cfg.httpConns, "http-conns", 64, "HTTP/1.1 connections")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("upgradeload: ")
	if err := cfg.check(); err != nil {
		log.Print(err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := run(ctx, cfg)
	if err != nil {
		log.Print(err)
		os.Exit(1)
	}
	s.report(os.Stdout, os.Stderr)
	if s.failures() > 0 {
		os.Exit(3)
	}
}

func (c config) check() error {
	switch {
	case c.duration <= 0:
		return errors.New("-duration must be positive")
	case c.reconnectFor < 0 || c.reconnectFor > c.duration:
		return errors.New("-reconnect-for must be between 0 and -duration")
	case c.wsURL != "" && (c.wsClients <= 0 || c.wsInterval <= 0 || c.echoTimeout <= 0):
		return errors.New("-ws-clients, -ws-interval and -echo-timeout must be positive")
	case c.httpURL != "" && c.httpConns <= 0:
		return errors.New("-http-conns must be positive")
	case c.wsURL == "" && c.grpcAddr == "" && c.httpURL == "":
		return errors.New("nothing to do: give -ws, -grpc or -http")
	}
	return nil
}

// run runs the clients until the duration ends, ctx is canceled, or, with
// -reconnect-for, every client has ended its last connection.
func run(ctx context.Context, cfg config) (*stats, error) {
	start := time.Now()
	ctx, cancel := context.WithDeadline(ctx, start.Add(cfg.duration))
	defer cancel()
	s := &stats{closeCodes: map[websocket.StatusCode]int{}, grpcEnds: map[codes.Code]int{}, grpcOpenFails: map[codes.Code]int{}}
	reconnectUntil := start.Add(cfg.duration)
	if cfg.reconnectFor > 0 {
		reconnectUntil = start.Add(cfg.reconnectFor)
	}
	mayConnect := func() bool { return ctx.Err() == nil && time.Now().Before(reconnectUntil) }

	var wg sync.WaitGroup
	if cfg.wsURL != "" {
		for i := range cfg.wsClients {
			wg.Go(func() { wsClient(ctx, cfg, i, s, mayConnect) })
		}
	}
	if cfg.grpcAddr != "" {
		conn, err := grpc.NewClient(cfg.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.ForceCodec(tick.Codec{})))
		if err != nil {
			return nil, fmt.Errorf("-grpc: %w", err)
		}
		defer conn.Close()
		wg.Go(func() { grpcClient(ctx, conn, s, mayConnect) })
	}
	if cfg.httpURL != "" {
		tr := &http.Transport{MaxIdleConnsPerHost: cfg.httpConns, MaxConnsPerHost: cfg.httpConns, DisableCompression: true}
		defer tr.CloseIdleConnections()
		hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		for range cfg.httpConns {
			wg.Go(func() { httpClient(ctx, hc, cfg.httpURL, s, mayConnect) })
		}
	}
	wg.Wait()
	s.elapsed = time.Since(start)
	return s, nil
}

// wait sleeps for d, or less if ctx ends first.
func wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// wsClient connects, exchanges messages until the connection ends, and reconnects,
// while mayConnect says so.
func wsClient(ctx context.Context, cfg config, id int, s *stats, mayConnect func() bool) {
	for seq := 0; mayConnect(); {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		c, _, err := websocket.Dial(dctx, cfg.wsURL, nil)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.wsDialFailed(err)
			wait(ctx, 100*time.Millisecond)
			continue
		}
		s.add(&s.wsDials, 1)
		if !wsSession(ctx, cfg, c, id, &seq, s) {
			wait(ctx, 100*time.Millisecond) // after a failure, not after a 1001
		}
	}
}

// wsSession sends a message every interval on c and checks its echo, until c ends or
// ctx does. It reports whether the session ended well: by ctx, or by a close 1001.
func wsSession(ctx context.Context, cfg config, c *websocket.Conn, id int, seq *int, s *stats) bool {
	rctx, stopReading := context.WithCancel(ctx)
	got := make(chan readResult, 1)
	readerDone := make(chan struct{})
	defer func() {
		stopReading()
		c.CloseNow()
		<-readerDone
	}()
	go func() {
		defer close(readerDone)
		defer close(got)
		for {
			_, msg, err := c.Read(rctx)
			select {
			case got <- readResult{msg, err}:
			case <-rctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	var pending []byte // the message sent and not yet echoed
	var sentAt time.Time
	tk := time.NewTicker(cfg.wsInterval)
	defer tk.Stop()
	for {
		if pending == nil {
			*seq++
			msg := fmt.Appendf(nil, "client %d message %d", id, *seq)
			wctx, cancel := context.WithTimeout(ctx, cfg.echoTimeout)
			err := c.Write(wctx, websocket.MessageText, msg)
			cancel()
			if err != nil {
				// A close frame that arrived meanwhile fails the write too; the reader
				// has it, with its code.
				return s.wsEnded(ctx, readErr(got, err), false)
			}
			pending, sentAt = msg, time.Now()
		}
		select {
		case <-ctx.Done():
			c.Close(websocket.StatusNormalClosure, "")
			return true
		case r, ok := <-got:
			if !ok {
				return s.wsEnded(ctx, errors.New("reader ended"), pending != nil)
			}
			if r.err != nil {
				return s.wsEnded(ctx, r.err, pending != nil)
			}
			if string(r.msg) != string(pending) {
				s.add(&s.wsBad, 1)
				return false
			}
			s.add(&s.wsOK, 1)
			pending = nil
			select { // the next message at the next tick
			case <-ctx.Done():
				c.Close(websocket.StatusNormalClosure, "")
				return true
			case r, ok := <-got:
				if !ok {
					return s.wsEnded(ctx, errors.New("reader ended"), false)
				}
				if r.err == nil { // a message nobody asked for
					s.add(&s.wsBad, 1)
					return false
				}
				return s.wsEnded(ctx, r.err, false)
			case <-tk.C:
			}
		case <-tk.C:
			if time.Since(sentAt) > cfg.echoTimeout {
				s.add(&s.wsLost, 1)
				return false
			}
		}
	}
}

// readResult is what a WebSocket connection's reader read: a message or the error
// that ended it.
type readResult struct {
	msg []byte
	err error
}

// readErr returns the error that ended the reader of got (skipping messages), or
// fallback if the reader has not ended within a second.
func readErr(got <-chan readResult, fallback error) error {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	for {
		select {
		case r, ok := <-got:
			if !ok {
				return fallback
			}
			if r.err != nil {
				return r.err
			}
		case <-t.C:
			return fallback
		}
	}
}

// grpcClient opens a stream, counts its messages until it ends, and opens another,
// while mayConnect says so.
func grpcClient(ctx context.Context, conn *grpc.ClientConn, s *stats, mayConnect func() bool) {
	desc := &grpc.StreamDesc{StreamName: tick.StreamName, ServerStreams: true}
	var last time.Time
	for mayConnect() {
		sctx, cancel := context.WithCancel(ctx)
		st, err := conn.NewStream(sctx, desc, tick.Method, grpc.WaitForReady(true))
		if err == nil {
			err = st.SendMsg([]byte{})
		}
		if err == nil {
			err = st.CloseSend()
		}
		if err != nil {
			cancel()
			if ctx.Err() != nil {
				return
			}
			s.grpcOpenFailed(status.Code(err))
			wait(ctx, 100*time.Millisecond)
			continue
		}
		s.add(&s.grpcStreams, 1)
		for n := 1; ; n++ {
			var msg []byte
			err := st.RecvMsg(&msg)
			if err != nil {
				if ctx.Err() == nil {
					if errors.Is(err, io.EOF) {
						s.grpcEnded(codes.OK)
					} else {
						s.grpcEnded(status.Code(err))
					}
				}
				break
			}
			now := time.Now()
			s.grpcMessage(string(msg) == fmt.Sprintf("tick %d", n), last, now)
			last = now
		}
		cancel()
	}
}

// httpClient sends GET requests back to back while mayConnect says so.
func httpClient(ctx context.Context, hc *http.Client, url string, s *stats, mayConnect func() bool) {
	for mayConnect() {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			s.httpFailed(err)
			return
		}
		resp, err := hc.Do(req)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			s.httpFailed(err)
			wait(ctx, 10*time.Millisecond)
		case resp.StatusCode/100 != 2:
			s.add(&s.httpNon2xx, 1)
		default:
			s.add(&s.httpOK, 1)
		}
	}
}
