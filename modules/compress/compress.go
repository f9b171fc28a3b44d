package compress

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/gotthard-proxy/gotthard/message"
	"github.com/gotthard-proxy/gotthard/proxy"
)

// Module compresses responses for clients that accept it: a [proxy.Module] to list in
// [proxy.ServiceOptions.Modules]. Build it with [New]. It is safe for concurrent use.
type Module struct {
	cfg    config
	encs   *encoders
	reqs   sync.Pool    // *request
	active atomic.Int64 // responses being compressed
}

var _ proxy.Module = (*Module)(nil)

// New returns a compression module configured by opts, or an error naming the first bad
// field of opts (wrapping [ErrOptions]).
func New(opts Options) (*Module, error) {
	cfg, err := opts.config()
	if err != nil {
		return nil, err
	}
	m := &Module{cfg: cfg}
	m.encs = newEncoders(&m.cfg)
	m.reqs.New = func() any { return &request{m: m} }
	return m, nil
}

// Name returns "compress".
func (*Module) Name() string { return "compress" }

// NewRequest reads the request's Accept-Encoding and returns the module's state for the
// request. It returns nil (nothing more to do) only for methods whose responses have
// no body worth compressing (CONNECT) or requests upgraded to another protocol.
func (m *Module) NewRequest(s *proxy.Session) proxy.ModuleRequest {
	req := s.Request()
	if req.Method == "CONNECT" || s.Upgrade() != "" {
		return nil
	}
	r := m.reqs.Get().(*request)
	r.accept.reset()
	req.Header.Range(func(name, value string) bool {
		if eqFold(name, "Accept-Encoding") {
			r.accept.present = true
			r.accept.parse(value)
		}
		return true
	})
	r.head = req.Method == "HEAD"
	r.ranged = req.Header.Has("Range")
	return r
}

// request is the module's state for one request. It is pooled by its Module.
type request struct {
	proxy.ModuleFilters
	m      *Module
	accept Accept
	head   bool // a HEAD request: headers as for GET, no body to compress
	ranged bool // the request has a Range field
	coding Coding
	st     *stream // the encoder while compressing; nil otherwise
	closed bool    // the encoder has written its end
}

// ResponseFilter decides whether the response is compressed and changes its head to
// match: Content-Encoding set, Content-Length and Accept-Ranges removed, a strong ETag
// made weak, and Vary: Accept-Encoding added whenever the choice depends on the
// request's Accept-Encoding.
func (r *request) ResponseFilter(_ context.Context, _ *proxy.Session, resp *message.ResponseHeader) error {
	if r.st != nil { // a second head for the request: start over
		r.m.encs.put(r.coding, r.st)
		r.st = nil
		r.m.active.Add(-1)
	}
	r.coding = Identity
	h := &resp.Header
	if !r.m.eligible(resp) {
		return nil
	}
	// From here the response's own properties allow compression, so what the client
	// gets depends on its Accept-Encoding: caches must key on it.
	addVary(h, "Accept-Encoding")
	if r.head || r.ranged || resp.Status == 206 {
		// A HEAD response gets the head of a GET's response (RFC 9110 §9.3.2), but the
		// head is all there is; a range is of the unencoded body, which the origin
		// sliced.
		if r.head && !r.ranged {
			if c := r.accept.Negotiate(r.m.cfg.prefs); c != Identity {
				r.setHead(h, c)
			}
		}
		return nil
	}
	c := r.accept.Negotiate(r.m.cfg.prefs)
	if c == Identity {
		return nil
	}
	if r.m.active.Add(1) > r.m.cfg.maxStreams {
		r.m.active.Add(-1)
		return nil // over MaxStreams: as it is
	}
	r.setHead(h, c)
	r.coding = c
	r.st = r.m.encs.get(c)
	r.closed = false
	return nil
}

// setHead rewrites the head of a response sent with coding c.
func (r *request) setHead(h *message.Header, c Coding) {
	h.Set("Content-Encoding", c.String())
	h.Del("Content-Length")
	h.Del("Accept-Ranges")
	if etag, ok := h.Lookup("ETag"); ok && len(etag) > 0 && etag[0] == '"' {
		// The coded body is another representation: a strong validator must not
		// match the identity one (RFC 9110 §8.8.1), a weak one may.
		h.Set("ETag", "W/"+etag)
	}
}

// eligible reports whether resp itself may be compressed, whatever the request.
func (m *Module) eligible(resp *message.ResponseHeader) bool {
	st := resp.Status
	if st < 200 || st == 204 || st == 304 {
		return false // no body (RFC 9110 §6.4.1)
	}
	h := &resp.Header
	if ce, ok := h.Lookup("Content-Encoding"); ok && !eqFold(trimOWS(ce), "identity") && trimOWS(ce) != "" {
		return false // coded already
	}
	if hasDirective(h, "Cache-Control", "no-transform") {
		return false // RFC 9111 §5.2.2.6
	}
	if cl, ok := h.Lookup("Content-Length"); ok {
		n, err := strconv.ParseInt(trimOWS(cl), 10, 64)
		if err != nil || n == 0 || n < m.cfg.minSize {
			return false // empty, too small, or a length we do not understand
		}
	}
	ct, ok := h.Lookup("Content-Type")
	return ok && m.cfg.compressible(ct)
}

// ResponseBodyFilter compresses each piece as it comes and flushes the encoder after
// it, so that what the client has received decodes up to the end of that piece; at the
// end it writes the coding's end. The returned slice is valid until the next call.
func (r *request) ResponseBodyFilter(_ context.Context, _ *proxy.Session, chunk []byte, end bool) ([]byte, error) {
	if r.st == nil || r.closed {
		return chunk, nil
	}
	st := r.st
	st.buf.Reset()
	if len(chunk) > 0 {
		if _, err := st.enc.Write(chunk); err != nil {
			return nil, fmt.Errorf("compress: %s: %w", r.coding, err)
		}
	}
	var err error
	if end {
		r.closed = true
		err = st.enc.Close()
	} else if len(chunk) > 0 {
		err = st.enc.Flush()
	}
	if err != nil {
		return nil, fmt.Errorf("compress: %s: %w", r.coding, err)
	}
	return st.buf.Bytes(), nil
}

// Done gives the encoder and the request's state back to their pools.
func (r *request) Done(*proxy.Session) {
	if r.st != nil {
		r.m.encs.put(r.coding, r.st)
		r.st = nil
		r.m.active.Add(-1)
	}
	r.coding, r.closed = Identity, false
	r.m.reqs.Put(r)
}

// addVary adds token to the Vary field unless it (or "*") is listed already.
func addVary(h *message.Header, token string) {
	for _, v := range h.Values("Vary") {
		for len(v) > 0 {
			var e string
			e, v = cutByte(v, ',')
			e = trimOWS(e)
			if e == "*" || eqFold(e, token) {
				return
			}
		}
	}
	if old, ok := h.Lookup("Vary"); ok && trimOWS(old) != "" {
		// Merge into the first Vary line, keeping one field.
		vals := h.Values("Vary")
		merged := ""
		for _, v := range vals {
			if v = trimOWS(v); v != "" {
				merged += v + ", "
			}
		}
		h.Set("Vary", merged+token)
		return
	}
	h.Set("Vary", token)
}

// hasDirective reports whether a comma-separated field named name lists directive
// (case-insensitive, with or without an argument).
func hasDirective(h *message.Header, name, directive string) bool {
	found := false
	h.Range(func(n, v string) bool {
		if !eqFold(n, name) {
			return true
		}
		for len(v) > 0 {
			var e string
			e, v = cutByte(v, ',')
			e, _ = cutByte(e, '=')
			if eqFold(trimOWS(e), directive) {
				found = true
				return false
			}
		}
		return true
	})
	return found
}
