package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// A probe is one message the client sends and expects back unchanged.
type probe struct {
	name string
	typ  websocket.MessageType
	data []byte
}

// probes returns the client's messages: short text, text beyond ASCII, every byte value,
// and a large binary message that crosses the proxy in many reads and writes.
func probes() []probe {
	large := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{'g', 'o', 't', 't', 'h', 'a', 'r', 'd'}).Read(large) // the same bytes every run
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	return []probe{
		{"text", websocket.MessageText, []byte("hello through Gotthard")},
		{"text", websocket.MessageText, []byte("Grüezi mitenand, 你好, 🏔")},
		{"binary", websocket.MessageBinary, all},
		{"binary", websocket.MessageBinary, large},
	}
}

// runClient dials the echo origin at url through the proxy with opts, sends each probe
// and checks its echo, pings, and closes, writing one line per step to out. It returns
// the first failure.
//
// Everything that depends on how the client reaches the proxy is in opts (the HTTP
// client and its transport, header fields such as Origin), so the same checks can run
// over another transport. coder/websocket sends the HTTP/1.1 Upgrade handshake whatever
// the transport; the tests run this client over HTTP/2 (RFC 8441) with a RoundTripper
// that sends an extended CONNECT instead.
func runClient(ctx context.Context, out io.Writer, url string, opts *websocket.DialOptions) error {
	c, resp, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		if resp != nil {
			return fmt.Errorf("dial %s: %s: %w", url, resp.Status, err)
		}
		return fmt.Errorf("dial %s: %w", url, err)
	}
	defer c.CloseNow()
	fmt.Fprintf(out, "client: connected to %s (%s)\n", url, resp.Status)
	c.SetReadLimit(maxMessage)

	for _, p := range probes() {
		start := time.Now()
		if err := c.Write(ctx, p.typ, p.data); err != nil {
			return fmt.Errorf("send %s message of %s: %w", p.name, size(len(p.data)), err)
		}
		typ, got, err := c.Read(ctx)
		if err != nil {
			return fmt.Errorf("read the echo of the %s message of %s: %w", p.name, size(len(p.data)), err)
		}
		if typ != p.typ || !bytes.Equal(got, p.data) {
			return fmt.Errorf("the echo of the %s message of %s came back as a %v message of %s that differs", p.name, size(len(p.data)), typ, size(len(got)))
		}
		fmt.Fprintf(out, "client: %-6s %8s  echoed in %v\n", p.name, size(len(p.data)), roundDur(time.Since(start)))
	}

	// A pong is read by a Read call: CloseRead keeps one going (no more messages come).
	ctx = c.CloseRead(ctx)
	start := time.Now()
	if err := c.Ping(ctx); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	fmt.Fprintf(out, "client: %-6s %8s  pong in %v\n", "ping", "", roundDur(time.Since(start)))

	if err := c.Close(websocket.StatusNormalClosure, "done"); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	fmt.Fprintf(out, "client: %-6s %8s  1000 (normal closure), and the origin's close frame came back\n", "closed", "")
	return nil
}

// refusedOrigin tries a handshake with an Origin the proxy does not allow and reports
// the refusal to out; it fails if the handshake is not answered with 403.
func refusedOrigin(ctx context.Context, out io.Writer, url, origin string, opts websocket.DialOptions) error {
	opts.HTTPHeader = opts.HTTPHeader.Clone()
	if opts.HTTPHeader == nil {
		opts.HTTPHeader = http.Header{}
	}
	opts.HTTPHeader.Set("Origin", origin)
	c, resp, err := websocket.Dial(ctx, url, &opts)
	if err == nil {
		c.CloseNow()
		return fmt.Errorf("a handshake with Origin %s was accepted", origin)
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		return fmt.Errorf("handshake with Origin %s: want 403: %w", origin, err)
	}
	fmt.Fprintf(out, "client: Origin %s refused by the proxy (%s)\n", origin, resp.Status)
	return nil
}

// size formats n bytes for the client's lines.
func size(n int) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d B", n)
}

// roundDur rounds d for display.
func roundDur(d time.Duration) time.Duration {
	if d > time.Millisecond {
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
