package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// maxMessage bounds a message, both ways: it is the read limit of the demo origin and of
// the client (coder/websocket's default is 32 KiB).
const maxMessage = 4 << 20

// echoOrigin is the demo origin: a net/http server on loopback. /echo accepts WebSocket
// connections (coder/websocket's Accept) and sends every message back as it arrives;
// / serves a page that does the same from a browser. Close stops it; its methods are
// safe for concurrent use.
type echoOrigin struct {
	ln     net.Listener
	srv    *http.Server
	served chan error // Serve's result

	// ctx ends every echo loop when the origin closes: WebSocket connections are
	// hijacked, so http.Server.Close does not close them.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	echoes sync.WaitGroup // running echo handlers
}

// startEchoOrigin runs an echo origin on a free loopback port.
func startEchoOrigin() (*echoOrigin, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("echo origin: %w", err)
	}
	o := &echoOrigin{ln: ln, served: make(chan error, 1)}
	o.ctx, o.cancel = context.WithCancel(context.Background())
	mux := http.NewServeMux()
	mux.HandleFunc("GET /echo", o.echo)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	})
	o.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { o.served <- o.srv.Serve(ln) }()
	return o, nil
}

// Addr returns the origin's "host:port".
func (o *echoOrigin) Addr() string { return o.ln.Addr().String() }

// Close stops the origin: the listener, plain connections and WebSocket connections. It
// waits for the echo handlers and the serve loop.
func (o *echoOrigin) Close() error {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	o.cancel()
	err := o.srv.Close()
	o.echoes.Wait()
	if serr := <-o.served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// echo accepts a WebSocket connection and echoes each message until the client closes.
func (o *echoOrigin) echo(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	o.echoes.Add(1)
	o.mu.Unlock()
	defer o.echoes.Done()

	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		// Which pages may connect is the proxy's decision (-allow-origin); without this,
		// Accept would refuse every page not served from the Host the client asked for.
		InsecureSkipVerify: true,
	})
	if err != nil {
		return // Accept has answered the client
	}
	defer c.CloseNow()
	c.SetReadLimit(maxMessage)
	for {
		if err := echoOne(o.ctx, c); err != nil {
			return // the client closed (it got its close frame back), or the connection failed
		}
	}
}

// echoOne sends one message back, streaming it: its frames are written as they are read.
func echoOne(ctx context.Context, c *websocket.Conn) error {
	typ, r, err := c.Reader(ctx)
	if err != nil {
		return err
	}
	w, err := c.Writer(ctx, typ)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// page talks to /echo from a browser, through the proxy that served it.
const page = `<!doctype html>
<meta charset="utf-8">
<title>WebSocket echo through Gotthard</title>
<h1>WebSocket echo through Gotthard</h1>
<form id="form"><input id="msg" value="Grüezi" autofocus> <button>Send</button></form>
<pre id="log"></pre>
<script>
const log = (line) => document.getElementById("log").textContent += line + "\n";
const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/echo");
ws.onopen = () => log("open: " + ws.url);
ws.onmessage = (e) => log("echo: " + e.data);
ws.onclose = (e) => log("closed: " + e.code + (e.reason ? " " + e.reason : ""));
document.getElementById("form").onsubmit = (e) => {
  e.preventDefault();
  ws.send(document.getElementById("msg").value);
  log("sent: " + document.getElementById("msg").value);
};
</script>
`
