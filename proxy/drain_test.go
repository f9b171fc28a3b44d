package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsFloodOrigin is a WebSocket origin that sends binary messages without pause (see
// floodMessage) until its connection ends, and reports the close status it got from
// its client (-1 for none).
func wsFloodOrigin(t *testing.T) (string, chan websocket.StatusCode) {
	got := make(chan websocket.StatusCode, 4)
	_, addr := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		go func() {
			for seq := uint64(0); ; seq++ {
				if c.Write(ctx, websocket.MessageBinary, floodMessage(seq)) != nil {
					return
				}
			}
		}()
		for {
			if _, _, err := c.Read(ctx); err != nil {
				got <- websocket.CloseStatus(err)
				return
			}
		}
	}))
	return addr, got
}

// floodMessage is the message number seq of wsFloodOrigin: its number, then bytes
// that depend on it and their place, 8 B to 200 KiB long, so that frames span several
// reads of the proxy's buffers and a cut one shows.
func floodMessage(seq uint64) []byte {
	n := 8 + int(seq*7919%(200<<10))
	b := make([]byte, n)
	binary.BigEndian.PutUint64(b, seq)
	for i := 8; i < n; i++ {
		b[i] = byte(seq) + byte(i)
	}
	return b
}

// checkFlood reads wsFloodOrigin's messages from c, each whole and in order, until
// the connection ends; it sends the number read to started once it reaches 5, and
// returns the error that ended the reading.
func checkFlood(ctx context.Context, c *websocket.Conn, started chan<- struct{}) error {
	c.SetReadLimit(1 << 20)
	for seq := uint64(0); ; seq++ {
		typ, m, err := c.Read(ctx)
		if err != nil {
			return err
		}
		want := floodMessage(seq)
		if typ != websocket.MessageBinary || string(m) != string(want) {
			return fmt.Errorf("message %d: %d bytes, not the %d sent", seq, len(m), len(want))
		}
		if seq == 5 {
			close(started)
		}
	}
}

// drainProxy logs each request's error.
func drainProxy(peer *Peer) loggingProxy {
	return loggingProxy{peer: peer, logged: make(chan loggedRequest, 64)}
}

// shutdownWith starts svc.Shutdown with a context that ends after limit, and returns
// where its result comes.
func shutdownWith(svc *Service[*testCtx], limit time.Duration) <-chan error {
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		defer cancel()
		shut <- svc.Shutdown(ctx)
	}()
	return shut
}

// TestCloseStreamsWebSocket checks CloseStreams on a WebSocket whose origin sends
// without pause, from a client over HTTP/1.1 and over HTTP/2 (RFC 8441): while Shutdown
// runs, the client gets close status 1001 after whole messages only, the origin gets a
// (masked) 1001 too, the request ends with ErrShutdown, and Shutdown returns before its
// context ends.
func TestCloseStreamsWebSocket(t *testing.T) {
	for _, proto := range []string{"h1", "h2"} {
		t.Run(proto, func(t *testing.T) {
			origin, originGot := wsFloodOrigin(t)
			app := drainProxy(testPeer(origin))
			svc, logs := newTestService[*testCtx](t, app, ServiceOptions{})
			addr := startProxy(t, svc)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var opts *websocket.DialOptions
			if proto == "h2" {
				opts = &websocket.DialOptions{HTTPClient: newRFC8441Client()}
			}
			c, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", opts)
			if err != nil {
				t.Fatalf("dial: %v\n%s", err, logs.String())
			}
			defer c.CloseNow()
			started := make(chan struct{})
			read := make(chan error, 1)
			go func() { read <- checkFlood(ctx, c, started) }()
			select {
			case <-started:
			case err := <-read:
				t.Fatalf("before the drain: %v", err)
			}

			shut := shutdownWith(svc, 20*time.Second)
			svc.CloseStreams()
			if err := <-read; websocket.CloseStatus(err) != websocket.StatusGoingAway {
				t.Fatalf("client: %v, want close status 1001\n%s", err, logs.String())
			}
			if got := <-originGot; got != websocket.StatusGoingAway {
				t.Fatalf("origin got close status %d, want 1001", got)
			}
			if err := <-shut; err != nil {
				t.Fatalf("Shutdown: %v\n%s", err, logs.String())
			}
			if l := <-app.logged; !errors.Is(l.err, ErrShutdown) {
				t.Fatalf("Logging got %v, want ErrShutdown", l.err)
			}
		})
	}
}
