package proxy

import (
	"encoding/base64"
	"encoding/binary"
	"io"
	"strings"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/arena"
	"github.com/gotthard-proxy/gotthard/internal/h1"
	"github.com/gotthard-proxy/gotthard/message"
)

// The gRPC-web bridge (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-WEB.md)
// lets a browser-style client, which cannot read HTTP trailers, call a gRPC service: the
// request goes upstream as gRPC, and the response comes back with its trailers encoded
// as a last frame of the body (flag byte 0x80). In the text form
// (application/grpc-web-text) both bodies are base64.
//
// The bridge sits between the phases and the client: RequestFilter and the later phases
// see a gRPC request and a gRPC response (application/grpc, trailers as trailers), and
// the conversion to gRPC-web happens as the response is written, after every filter.

// BridgeGRPCWeb turns on the gRPC-web bridge for this request if it is a gRPC-web call
// (Content-Type application/grpc-web or application/grpc-web-text, with an optional
// +proto or other suffix), and reports whether it did. It rewrites the request head at
// once into a gRPC one (Content-Type application/grpc..., TE: trailers), so call it in
// EarlyRequestFilter or RequestFilter, before the request body is read and before a
// response is written. The peer must speak gRPC, that is HTTP/2 (see [Peer.Protocol]).
// CORS preflight requests (OPTIONS) are not gRPC-web calls: the phases answer them.
func (s *Session) BridgeGRPCWeb() bool {
	if s.gw.on || s.respStarted || s.bodyRead || s.req.Method != "POST" {
		return false
	}
	ct := s.req.Header.Get("Content-Type")
	const web, text = "application/grpc-web", "application/grpc-web-text"
	g := &s.gw
	switch {
	case hasPrefixFold(ct, text):
		g.text, g.suffix = true, ct[len(text):]
	case hasPrefixFold(ct, web):
		g.text, g.suffix = false, ct[len(web):]
	default:
		return false
	}
	if g.suffix != "" && g.suffix[0] != '+' && g.suffix[0] != ';' {
		return false // another media type that starts the same way
	}
	g.on = true
	g.inner = s.ds
	s.ds = g
	s.req.Header.Set("Content-Type", "application/grpc"+g.suffix)
	s.teTrailers = true
	if g.text {
		// The decoded body is shorter: its length is not known in advance.
		s.req.Header.Del("Content-Length")
		if s.reqBodyKind == h1.BodyLength {
			s.reqBodyKind, s.reqBodyLen = h1.BodyChunked, 0
		}
	}
	return true
}

// GRPCWeb reports whether the gRPC-web bridge is on for this request.
func (s *Session) GRPCWeb() bool { return s.gw.on }

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// grpcWeb is the bridge: a downstream that wraps the client's and converts on the way.
type grpcWeb struct {
	inner  downstream
	on     bool
	text   bool   // application/grpc-web-text: bodies in base64
	suffix string // of the request's content type ("+proto", or "")

	// convert is set by writeHead when the response is gRPC and not trailers-only: the
	// body is then re-encoded and the trailers go into it.
	convert bool

	// Request body, text form: base64 not yet decoded (less than a quantum, or what
	// follows padding) and the decoded bytes returned by the last readBody.
	pending []byte
	decoded []byte
	inEOF   bool

	// Response body, text form: up to 2 bytes waiting for a full base64 quantum, and the
	// encoding buffer.
	carry   [3]byte
	ncarry  int
	encoded []byte
	frame   []byte // the trailer frame
}

// reset forgets the last request's bridge, keeping its buffers.
func (g *grpcWeb) reset() {
	*g = grpcWeb{pending: g.pending[:0], decoded: g.decoded[:0], encoded: g.encoded[:0], frame: g.frame[:0]}
}

var errGRPCWebText = &h1.Error{Status: 400, Reason: "invalid base64 in grpc-web-text request body"}

func (g *grpcWeb) readBody() ([]byte, error) {
	if !g.text {
		return g.inner.readBody()
	}
	for {
		if g.inEOF {
			return nil, io.EOF
		}
		chunk, err := g.inner.readBody()
		if err != nil && err != io.EOF {
			return nil, err
		}
		g.inEOF = err == io.EOF
		g.pending = append(g.pending, chunk...)
		out, derr := g.decode()
		switch {
		case derr != nil:
			return nil, derr
		case g.inEOF && len(g.pending) > 0:
			return nil, errGRPCWebText // the body ends inside a base64 quantum
		case g.inEOF:
			return out, io.EOF
		case len(out) > 0:
			return out, nil
		}
	}
}

// decode decodes the complete base64 quanta of pending. Padding may end a segment in
// the middle of the stream (a client may encode each message on its own); decoding
// goes on after it.
func (g *grpcWeb) decode() ([]byte, error) {
	out := g.decoded[:0]
	p := g.pending
	for len(p) >= 4 {
		// The longest run of whole quanta up to and including the first padded one.
		n := len(p) &^ 3
		if i := strings.IndexByte(string(p[:n]), '='); i >= 0 {
			n = (i + 4) &^ 3
		}
		start := len(out)
		out = append(out, make([]byte, base64.StdEncoding.DecodedLen(n))...)
		m, err := base64.StdEncoding.Decode(out[start:], p[:n])
		if err != nil {
			return nil, errGRPCWebText
		}
		out = out[:start+m]
		p = p[n:]
	}
	g.pending = append(g.pending[:0], p...)
	g.decoded = out
	return out, nil
}

func (g *grpcWeb) bodyDone() bool { return g.inner.bodyDone() && len(g.pending) == 0 }
func (g *grpcWeb) willWait() bool { return g.inner.willWait() }
func (g *grpcWeb) trailers(h *message.Header, a *arena.Arena) {
	g.inner.trailers(h, a)
}
func (g *grpcWeb) continue100() error                          { return g.inner.continue100() }
func (g *grpcWeb) interim(status int, h *message.Header)       { g.inner.interim(status, h) }
func (g *grpcWeb) flush() error                                { return g.inner.flush() }
func (g *grpcWeb) buffered() int                               { return g.inner.buffered() }
func (g *grpcWeb) abortRead()                                  { g.inner.abortRead() }
func (g *grpcWeb) readTimeout(now time.Time, d time.Duration)  { g.inner.readTimeout(now, d) }
func (g *grpcWeb) writeTimeout(now time.Time, d time.Duration) { g.inner.writeTimeout(now, d) }

func (g *grpcWeb) writeHead(s *Session, resp *message.ResponseHeader, kind h1.BodyKind, n int64) error {
	ct, ok := resp.Header.Lookup("Content-Type")
	if kind == h1.BodyNone || !ok || !hasPrefixFold(ct, "application/grpc") || hasPrefixFold(ct, "application/grpc-web") {
		return g.inner.writeHead(s, resp, kind, n) // not a gRPC response: as it is
	}
	rest := ct[len("application/grpc"):]
	if g.text {
		resp.Header.Set("Content-Type", "application/grpc-web-text"+rest)
	} else {
		resp.Header.Set("Content-Type", "application/grpc-web"+rest)
	}
	if resp.Header.Has("Grpc-Status") {
		// Trailers-only: the status is in the head, which gRPC-web keeps as it is.
		return g.inner.writeHead(s, resp, kind, n)
	}
	// The body gains the trailer frame (and may be re-encoded): its length is unknown.
	g.convert = true
	resp.Header.Del("Content-Length")
	return g.inner.writeHead(s, resp, h1.BodyChunked, 0)
}

func (g *grpcWeb) writeBody(p []byte) error {
	if !g.convert || !g.text {
		return g.inner.writeBody(p)
	}
	if out := g.encode(p, false); len(out) > 0 {
		return g.inner.writeBody(out)
	}
	return nil
}

// encode returns p in base64, continuing the stream of earlier calls; the last call
// pads.
func (g *grpcWeb) encode(p []byte, last bool) []byte {
	out := g.encoded[:0]
	if g.ncarry > 0 {
		k := copy(g.carry[g.ncarry:], p)
		g.ncarry += k
		p = p[k:]
		if g.ncarry == 3 || last {
			out = base64.StdEncoding.AppendEncode(out, g.carry[:g.ncarry])
			g.ncarry = 0
		}
	}
	whole := len(p) - len(p)%3
	if last {
		whole = len(p)
	}
	out = base64.StdEncoding.AppendEncode(out, p[:whole])
	g.ncarry += copy(g.carry[g.ncarry:], p[whole:])
	g.encoded = out
	return out
}

func (g *grpcWeb) finish(trailers *message.Header) error {
	if !g.convert {
		return g.inner.finish(trailers)
	}
	f := g.frame[:0]
	if trailers != nil && trailers.Len() > 0 {
		// A frame of flag 0x80 and length, then the trailers as an HTTP/1 head block
		// with lower-case names.
		f = append(f, 0x80, 0, 0, 0, 0)
		for _, fl := range trailers.Fields() {
			f = append(f, lowerName(fl.Name)...)
			f = append(f, ": "...)
			f = append(f, fl.Value...)
			f = append(f, "\r\n"...)
		}
		binary.BigEndian.PutUint32(f[1:5], uint32(len(f)-5))
	}
	g.frame = f
	var err error
	if g.text {
		if out := g.encode(f, true); len(out) > 0 {
			err = g.inner.writeBody(out)
		}
	} else if len(f) > 0 {
		err = g.inner.writeBody(f)
	}
	if err != nil {
		return err
	}
	return g.inner.finish(nil)
}
