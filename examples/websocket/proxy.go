package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/gotthard-proxy/gotthard/message"
	"github.com/gotthard-proxy/gotthard/proxy"
)

// wsCtx is the per-request state of [wsProxy].
type wsCtx struct {
	handshake bool   // the request is a WebSocket opening handshake
	origin    string // its Origin field, as received
	switched  bool   // the peer answered 101 and the connection became a tunnel
}

// wsProxy proxies every request to one peer. It refuses WebSocket handshakes from
// browser pages whose origin is not allowed, and logs one line per WebSocket
// connection. It is safe for concurrent use: it is not changed after start-up.
type wsProxy struct {
	proxy.Phases[*wsCtx]
	peer  *proxy.Peer
	allow map[string]bool // normalized origins (see normalizeOrigin); empty: every origin
	log   *slog.Logger
}

// A wrong phase signature fails to compile here, naming the method.
var _ proxy.ProxyHTTP[*wsCtx] = (*wsProxy)(nil)

func (*wsProxy) NewCtx() *wsCtx { return &wsCtx{} }

func (p *wsProxy) UpstreamPeer(context.Context, *proxy.Session, *wsCtx) (*proxy.Peer, error) {
	return p.peer, nil
}

// RequestFilter refuses a WebSocket handshake whose Origin is not in the allow list
// with 403, before any connection to the peer is made.
//
// A handshake is recognized by [proxy.Session.Upgrade], which reports the HTTP/1.1
// handshake (a GET with Upgrade: websocket; Upgrade and Connection themselves are
// hop-by-hop, removed before the phases run) and the HTTP/2 one (RFC 8441 extended
// CONNECT, shown to the phases as that GET) alike. Sec-WebSocket-Key would not do: an
// HTTP/2 handshake has none, the proxy makes one up for the peer after the phases. A
// peer that switches protocols for a request that is not a handshake gets no tunnel:
// the proxy answers the client 502 itself.
//
// Origin is what browsers send to say which page opened the connection (RFC 6455 §10.2,
// RFC 8441 §5); checking it stops other sites' pages from using a visitor's browser,
// and its cookies, to talk to the origin (cross-site WebSocket hijacking). A handshake
// without Origin comes from a program, not a page, and passes: a program can send any
// Origin it likes, so refusing it would protect nothing.
func (p *wsProxy) RequestFilter(_ context.Context, s *proxy.Session, c *wsCtx) (proxy.Result, error) {
	c.handshake = s.Upgrade() == "websocket"
	if !c.handshake {
		return proxy.Continue, nil
	}
	h := &s.Request().Header
	origins := h.Values("Origin")
	if len(origins) > 0 {
		c.origin = origins[0]
	}
	if len(origins) == 0 || len(p.allow) == 0 {
		return proxy.Continue, nil
	}
	if len(origins) == 1 {
		if o, err := normalizeOrigin(c.origin); err == nil && p.allow[o] {
			return proxy.Continue, nil
		}
	}
	return proxy.Handled, s.Respond(403, "Forbidden: WebSocket connections from this origin are not allowed\n")
}

// ResponseFilter sees the peer's answer to the handshake: a 101 means the connection
// becomes a tunnel once this phase returns (for an HTTP/2 client, the proxy answers
// its stream 200 instead, as RFC 8441 says).
func (p *wsProxy) ResponseFilter(_ context.Context, _ *proxy.Session, c *wsCtx, resp *message.ResponseHeader) error {
	c.switched = resp.Status == 101
	return nil
}

// Logging writes one line per WebSocket handshake: refused, not accepted by the peer,
// or a tunnel that has ended (then the duration is the tunnel's life and bytes counts
// what went to the client). Other requests are not logged.
func (p *wsProxy) Logging(ctx context.Context, s *proxy.Session, c *wsCtx, err error) {
	if !c.handshake {
		return
	}
	t := s.Timing()
	attrs := []any{
		"client", s.ClientAddr().String(),
		"target", s.Request().Target,
		"status", s.Status(),
		"tunnel", c.switched,
		"duration", t.End.Sub(t.Start),
		"bytes_to_client", s.BytesSent(),
		"bytes_from_client", s.BytesReceived(),
	}
	if c.origin != "" {
		attrs = append(attrs, "origin", c.origin)
	}
	if err != nil {
		attrs = append(attrs, "err", err.Error())
	}
	p.log.InfoContext(ctx, "websocket", attrs...)
}

// parseAllowList parses the -allow-origin list: origins separated by commas.
func parseAllowList(list string) (map[string]bool, error) {
	allow := map[string]bool{}
	for o := range strings.SplitSeq(list, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		n, err := normalizeOrigin(o)
		if err != nil {
			return nil, err
		}
		allow[n] = true
	}
	return allow, nil
}

// normalizeOrigin returns origin as browsers serialize it (RFC 6454 §6.1): the scheme
// and host in lower case and no default port, so "HTTPS://App.example:443" and
// "https://app.example" compare equal. Only http and https origins with a host and no
// path are accepted.
func normalizeOrigin(origin string) (string, error) {
	u, err := url.Parse(origin)
	if err != nil {
		return "", fmt.Errorf("origin %q: %w", origin, err)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("origin %q: want http://HOST[:PORT] or https://HOST[:PORT]", origin)
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port == "" || scheme == "http" && port == "80" || scheme == "https" && port == "443" {
		return scheme + "://" + host, nil
	}
	return scheme + "://" + host + ":" + port, nil
}
