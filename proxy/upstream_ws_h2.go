package proxy

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/h1"
	"github.com/gotthard-proxy/gotthard/internal/h2"
	"github.com/gotthard-proxy/gotthard/internal/hop"
	"golang.org/x/net/http2"
)

// A WebSocket to a peer of Protocol ProtoHTTP2 goes as an extended CONNECT (RFC 8441)
// when the peer offers it (SETTINGS_ENABLE_CONNECT_PROTOCOL), whatever the client's
// protocol; otherwise as an HTTP/1.1 Upgrade on a connection of its own. A peer of
// ProtoHTTP2IfOffered gets the HTTP/1.1 Upgrade (its TLS handshake then offers only
// http/1.1), which every WebSocket server understands. Each WebSocket has an HTTP/2
// connection of its own (internal/h2's Tunnel), as it would have an HTTP/1.1 one.

// errNoExtendedConnect is what exchangeWSH2 returns when the peer does not offer
// extended CONNECT: the attempt goes on over HTTP/1.1.
var errNoExtendedConnect = &Error{Type: ConnectError, Source: Upstream, Cause: h2.ErrNoExtendedConnect}

// exchangeWSH2 opens the WebSocket of the session's request on an HTTP/2 peer with an
// extended CONNECT, and tunnels between the client and the stream.
func (c *conn[C]) exchangeWSH2(ctx contextT, ex *exchange[C], cc C, peer *Peer) *Error {
	s, sess := c.svc, &ex.sess
	ex.gotResponseByte, ex.requestSent = false, false
	o := &peer.Options
	nc, e := s.pool.dialConn(ctx, peer, "h2")
	if e != nil {
		e.connectFailure = true
		return e
	}
	sess.reused = false
	sess.timing.UpstreamConnected = time.Now()
	if err := s.app.ConnectedToUpstream(ctx, sess, cc, peer, false); err != nil {
		nc.Close()
		return asError(err, InternalError, Internal)
	}
	// A client that resets its HTTP/2 stream closes nc (see abortUpstream).
	if sess.transport() == downstream(&ex.h2d) {
		if !ex.setUpstream(nc, nil) {
			nc.Close()
			return clientGoneError(errClientGone)
		}
		defer ex.setUpstream(nil, nil)
	}
	up, e := c.upstreamRequest(ctx, ex, cc, peer)
	if e != nil {
		nc.Close()
		return e
	}
	c.observeUpstreamRequest(ex, up, "HTTP/2")
	req := h2.TunnelRequest{Protocol: sess.upgrade, Scheme: "http", Authority: up.Header.Get("Host"), Path: up.Target}
	if peer.TLS != nil {
		req.Scheme = "https"
	}
	for _, f := range up.Header.Fields() {
		name := lowerName(f.Name)
		if hop.Field(name) || hop.TE(name) {
			continue
		}
		switch name {
		case "host", "content-length", "sec-websocket-key": // RFC 8441 §5: no key, no accept
			continue
		}
		req.Fields = append(req.Fields, h2.Field{Name: name, Value: f.Value})
	}
	hctx, cancel := context.WithTimeout(ctx, o.readTimeout())
	ex.requestSent = true
	tun, err := h2.OpenTunnel(hctx, nc, req, s.bufs)
	cancel()
	if err != nil {
		if errors.Is(err, h2.ErrNoExtendedConnect) {
			return errNoExtendedConnect
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return &Error{Type: ReadTimeout, Source: Upstream, Cause: err}
		}
		return asError(err, ReadError, Upstream)
	}
	defer tun.Close()
	ex.gotResponseByte = true
	resp := &http.Response{StatusCode: tun.Status, Header: http.Header{}, Body: tun, ContentLength: -1, ProtoMajor: 2}
	for _, f := range tun.Fields {
		resp.Header.Add(f.Name, f.Value)
	}
	if tun.Status != 200 {
		// Refused: the answer goes to the client as it is. The client's side of the
		// connection is in doubt (it may send WebSocket frames next): no reuse.
		sess.closeAfter = true
		if v, ok := resp.Header["Content-Length"]; ok && len(v) == 1 {
			if n, err := strconv.ParseInt(v[0], 10, 64); err == nil {
				resp.ContentLength = n
			}
		}
		return c.forwardH2(ctx, ex, cc, resp, o, func() { tun.Close() })
	}
	sess.timing.UpstreamResponse = time.Now()
	sess.upstreamStatus = tun.Status
	c.h2Response(ex, resp)
	ex.resp.Status, ex.resp.Reason = 101, "Switching Protocols"
	ex.resp.Header.Del("Content-Length")
	_, h2client := sess.transport().(*h2down)
	if !h2client {
		ex.resp.Header.Set("Sec-WebSocket-Accept", webSocketAccept(sess.req.Header.Get("Sec-WebSocket-Key")))
	}
	if done, e := c.answerSwitch(ctx, ex, cc); done || e != nil {
		return e
	}
	pe := tunnelPeer{tun}
	peerSide := tunnelSide{r: tun, rd: pe, w: pe}
	if h2client {
		st := ex.h2d.st
		hs := &h2Stream{st: st}
		return c.tunnelWatched(sess, tunnelSide{r: hs, rd: hs, w: hs}, peerSide, func() {
			st.Reset(http2.ErrCodeCancel)
			tun.Close()
		})
	}
	c.dl.Forget() // set directly from here on
	return c.tunnelWatched(sess, tunnelSide{r: c.r.Raw(), rd: c.nc, w: c.nc}, peerSide, func() {
		c.nc.Close()
		tun.Close()
	})
}

// tunnelPeer is an HTTP/2 tunnel to a peer as an end of a tunnel. It has no deadlines:
// the tunnel's watchdog bounds the waits.
type tunnelPeer struct{ *h2.Tunnel }

func (tunnelPeer) SetReadDeadline(time.Time) error  { return nil }
func (tunnelPeer) SetWriteDeadline(time.Time) error { return nil }

// wsOverH2 reports whether the session's request opens a WebSocket that goes to peer
// as an extended CONNECT.
func wsOverH2(sess *Session, peer *Peer) bool {
	return sess.upgrade != "" && peer.Protocol == ProtoHTTP2 && sess.reqBodyKind == h1.BodyNone
}
