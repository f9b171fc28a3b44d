package proxy

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/arena"
	"github.com/gotthard-proxy/gotthard/internal/deadline"
	"github.com/gotthard-proxy/gotthard/internal/h1"
	"github.com/gotthard-proxy/gotthard/internal/h2"
	"github.com/gotthard-proxy/gotthard/internal/hop"
	"github.com/gotthard-proxy/gotthard/message"
	"golang.org/x/net/http2"
)

// HTTP/2 from clients: over TLS when ALPN chose "h2", and in clear text (h2c) by prior
// knowledge on the same listener as HTTP/1.1, the client preface telling them apart.
// Each stream is a request that goes through the same phases as an HTTP/1.x one; its
// Session's downstream is the stream. An Upgrade to h2c from HTTP/1.1 is not honoured
// (see tunnel.go).

// isPreface reports whether the first bytes from a client are (the start of) the
// HTTP/2 client preface.
func isPreface(b []byte) bool {
	n := min(len(b), len(h2.ClientPreface))
	return n >= 3 && string(b[:n]) == h2.ClientPreface[:n]
}

// serveH2 serves the connection as HTTP/2. buffered holds what was already read.
func (c *conn[C]) serveH2(buffered []byte) {
	s := c.svc
	pre := append([]byte(nil), buffered...)
	c.r.Reset(nil) // the HTTP/2 side reads the connection itself from here on
	c.w.Release()
	// The HTTP/2 connection keeps its own timeouts.
	c.nc.SetDeadline(time.Time{})
	c.dl = deadline.New(c.nc)
	opts := h2.Options{
		Logger:               s.log,
		MaxConcurrentStreams: s.opts.H2MaxConcurrentStreams,
		Limit:                s.h2max,
		IdleTimeout:          durOr(s.opts.KeepaliveTimeout, 60*time.Second),
		WriteTimeout:         durOr(s.opts.SendTimeout, 60*time.Second),
		MaxHeaderListSize:    uint32(max(s.opts.MaxHeadBytes, 0)),
		Pool:                 s.bufs, // request bodies: an idle connection holds none
		// WebSocket over HTTP/2 (RFC 8441).
		EnableConnectProtocol: true,
	}
	hc := h2.NewConn(c.nc, pre, opts, c.serveStream)
	c.h2c.Store(hc)
	c.state.Store(stateH2)
	if s.closing.Load() { // Shutdown began before this connection showed it was HTTP/2
		go hc.Shutdown(s.ctx)
	}
	if err := hc.Serve(); err != nil {
		s.log.Debug("HTTP/2 connection ended", "client", c.clientS, "err", err)
	}
}

// serveStream runs one HTTP/2 request through the phases.
func (c *conn[C]) serveStream(st *h2.Stream) {
	ex := c.getExchange(nil)
	ex.h2d = h2down{st: st, fields: ex.h2d.fields[:0], a: ex.arena}
	d := &ex.h2d
	ex.sess.ds = d
	ex.sess.requestIndex = int(st.ID() / 2) // the client's earlier streams
	ex.sess.timing.Start = time.Now()
	c.buildRequestH2(ex, st.Request(), d)
	// A client that resets the stream (or goes away) cuts the request's upstream side
	// at once, instead of letting it run to its end for nobody.
	if ex.abortFn == nil {
		ex.abortFn = ex.abortUpstream
	}
	st.SetOnAbort(ex.abortFn)
	if c.obs != nil {
		c.obs.h2Served.Add(1)
	}
	c.serveRequest(ex)
	st.SetOnAbort(nil)
	c.putExchange(ex, nil)
}

// buildRequestH2 turns the stream's request into the session's, doing the same
// protective work as for HTTP/1.x.
func (c *conn[C]) buildRequestH2(ex *exchange[C], r *h2.Request, d *h2down) {
	sess := &ex.sess
	req := &sess.req
	req.Method = r.Method
	req.Target = r.Path
	switch {
	case r.Method == "CONNECT" && r.Protocol != "":
		// Extended CONNECT (RFC 8441). A WebSocket is shown to the phases, and carried
		// to HTTP/1.1 peers, as the HTTP/1.1 handshake it stands for: a GET that asks
		// for an Upgrade. Other protocols are refused in run.
		if upgradeAllowed([]byte(r.Protocol)) {
			req.Method = "GET"
			sess.upgrade = "websocket"
			sess.h2Tunnel = true
		} else {
			sess.badProtocol = true
			sess.h2Tunnel = true // refused in run; its DATA is no request body either
		}
	case r.Method == "CONNECT":
		req.Target = r.Authority
		sess.h2Tunnel = true
	}
	req.Version = message.HTTP2
	if r.Authority != "" {
		req.Header.Add("Host", r.Authority)
	}
	var cookies []string
	for _, f := range r.Fields {
		switch {
		case f.Name == "host":
			if r.Authority != "" {
				continue // :authority wins (RFC 9113 §8.3.1)
			}
		case f.Name == "te":
			sess.teTrailers = true // "trailers" is all HTTP/2 allows
			continue
		case f.Name == "expect":
			sess.expect100 = strings.EqualFold(f.Value, "100-continue")
			continue
		case f.Name == "cookie" && len(r.Fields) > 1:
			// Split cookie fields are joined for HTTP/1.1 (RFC 9113 §8.2.3).
			cookies = append(cookies, f.Value)
			continue
		case !c.trusted && strings.HasPrefix(f.Name, "x-forwarded-"):
			continue
		case f.Name == "sec-websocket-key" && sess.h2Tunnel:
			continue // not part of RFC 8441's handshake; the proxy makes its own
		}
		req.Header.Add(f.Name, f.Value)
	}
	if len(cookies) > 0 {
		req.Header.Add("cookie", strings.Join(cookies, "; "))
	}
	switch {
	case sess.h2Tunnel:
		// The stream's DATA is the tunnel's, not a request body.
		sess.reqBodyKind = h1.BodyNone
	case r.EndStream:
		sess.reqBodyKind = h1.BodyNone
		d.bodyEnded = true
	case r.ContentLength >= 0:
		sess.reqBodyKind, sess.reqBodyLen = h1.BodyLength, r.ContentLength
		if r.ContentLength == 0 {
			sess.reqBodyKind = h1.BodyNone
		}
	default:
		sess.reqBodyKind = h1.BodyChunked
	}
}

// h2down is the downstream of an HTTP/2 stream.
type h2down struct {
	st        *h2.Stream
	a         *arena.Arena // the request's, for numbers in fields
	num       [20]byte
	fields    []h2.Field
	bodyEnded bool // the request body was read to its end
	ended     bool // the response stream was ended
}

func (d *h2down) readBody() ([]byte, error) {
	b, err := d.st.ReadBody()
	if err == io.EOF {
		d.bodyEnded = true
	}
	return b, err
}

func (d *h2down) bodyDone() bool                        { return d.bodyEnded }
func (d *h2down) willWait() bool                        { return false }
func (d *h2down) flush() error                          { return nil }
func (d *h2down) buffered() int                         { return 0 }
func (d *h2down) readTimeout(time.Time, time.Duration)  {}
func (d *h2down) writeTimeout(time.Time, time.Duration) {}

func (d *h2down) trailers(h *message.Header, _ *arena.Arena) {
	for _, f := range d.st.Trailers() {
		h.Add(f.Name, f.Value)
	}
}

func (d *h2down) abortRead() { d.st.Reset(http2.ErrCodeNo) }

func (d *h2down) continue100() error { return d.st.WriteHeaders(100, nil, false) }

func (d *h2down) interim(status int, h *message.Header) {
	d.st.WriteHeaders(status, d.toFields(h, false), false)
}

func (d *h2down) writeHead(s *Session, resp *message.ResponseHeader, kind h1.BodyKind, n int64) error {
	fields := d.toFields(&resp.Header, kind != h1.BodyNone)
	if kind == h1.BodyLength {
		fields = append(fields, h2.Field{Name: "content-length", Value: d.a.String(strconv.AppendInt(d.num[:0], n, 10))})
	}
	d.fields = fields
	// An empty body ends the stream with the head: a gRPC "trailers-only" response
	// (grpc-status in the head) must stay one HEADERS frame with END_STREAM.
	end := kind == h1.BodyNone || kind == h1.BodyLength && n == 0
	d.ended = end
	return d.st.WriteHeaders(resp.Status, fields, end)
}

func (d *h2down) writeBody(p []byte) error { return d.st.WriteData(p, false) }

func (d *h2down) finish(trailers *message.Header) error {
	if d.ended {
		return nil
	}
	d.ended = true
	if trailers != nil && trailers.Len() > 0 {
		return d.st.WriteTrailers(d.toFields(trailers, false))
	}
	return d.st.WriteData(nil, true)
}

// toFields converts a header for HTTP/2: names in lower case, without the fields of
// HTTP/1.x connections, and without Content-Length when the framework sets it.
func (d *h2down) toFields(h *message.Header, dropLength bool) []h2.Field {
	out := d.fields[:0]
	for _, f := range h.Fields() {
		name := lowerName(f.Name)
		if hop.Field(name) || dropLength && name == "content-length" {
			continue
		}
		out = append(out, h2.Field{Name: name, Value: f.Value})
	}
	d.fields = out
	return out
}

// lowerName returns name in lower case, without allocating for names that already are
// or that are common.
func lowerName(name string) string {
	lower := true
	for i := 0; i < len(name); i++ {
		if 'A' <= name[i] && name[i] <= 'Z' {
			lower = false
			break
		}
	}
	if lower {
		return name
	}
	for _, c := range &commonNames { // (& so that the array is not copied to the stack)
		if len(c) == len(name) && c[0] >= 'a' && message.EqualFold(c, name) {
			return c
		}
	}
	return string(bytes.ToLower([]byte(name)))
}

// shutdownH2 sends GOAWAY on an HTTP/2 connection and lets its streams finish.
func (c *conn[C]) shutdownH2(ctx context.Context) {
	if hc := c.h2c.Load(); hc != nil {
		hc.Shutdown(ctx)
	}
}
