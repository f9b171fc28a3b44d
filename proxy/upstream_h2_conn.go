package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/h2"
)

// h2RoundTripper sends requests to the HTTP/2 peers of one identity: net/http's
// Transport (for a TLS peer that may answer in HTTP/1.1, ProtoHTTP2IfOffered), or
// h2Conns, our own client connections.
type h2RoundTripper interface {
	RoundTrip(*http.Request) (*http.Response, error)
	CloseIdleConnections()
}

// maxH2Conns bounds the client connections to one peer identity: beyond it, a request
// that finds every connection full fails (h2.ErrNoStream).
const maxH2Conns = 64

// h2Conns is the set of HTTP/2 client connections (internal/h2) to one peer identity
// and set of options: requests share a connection up to the peer's stream limit, and
// a new connection is opened when the others are full or going away. A connection
// idle for the peer's idle timeout is closed when the set is next used, and all are
// closed with the pool's entry. It is safe for concurrent use.
type h2Conns struct {
	// Immutable.
	network, addr string
	opts          h2Options
	tlsConfig     *tls.Config // nil for h2c
	bufs          *h2.BufPool

	mu     sync.Mutex
	conns  []*h2.ClientConn
	closed bool
}

func newH2Conns(peer *Peer, opts h2Options, cfg *tls.Config, bufs *h2.BufPool) *h2Conns {
	if cfg != nil {
		cfg.NextProtos = []string{"h2"}
	}
	return &h2Conns{network: peer.network(), addr: peer.Address, opts: opts, tlsConfig: cfg, bufs: bufs}
}

// CloseIdleConnections closes the connections without streams, and the others once
// their streams end: the set is no longer used.
func (t *h2Conns) CloseIdleConnections() {
	t.mu.Lock()
	t.closed = true
	idle := t.pruneLocked(time.Now(), true)
	t.mu.Unlock()
	for _, cc := range idle {
		cc.Close()
	}
}

// pruneLocked takes out the connections that ended, and those idle for the idle
// timeout (all idle ones with all); it returns those to close. t.mu is held.
func (t *h2Conns) pruneLocked(now time.Time, all bool) []*h2.ClientConn {
	var out []*h2.ClientConn
	keep := t.conns[:0]
	for _, cc := range t.conns {
		since, idle := cc.IdleSince()
		select {
		case <-cc.Done():
			out = append(out, cc)
			continue
		default:
		}
		if idle && (all || now.Sub(since) >= t.opts.idle) {
			out = append(out, cc)
			continue
		}
		if !idle && cc.Streams() == 0 && !cc.CanTakeRequest() {
			out = append(out, cc) // going away with nothing left
			continue
		}
		keep = append(keep, cc)
	}
	clear(t.conns[len(keep):])
	t.conns = keep
	return out
}

// stream opens a stream for req on a connection that can take one (the newest first),
// dialing a new connection if none can; reused tells whether the connection was there
// before.
func (t *h2Conns) stream(ctx context.Context, req *h2.ClientRequest) (*h2.ClientStream, bool, error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, false, errServiceClosed
	}
	stale := t.pruneLocked(time.Now(), false)
	for i := len(t.conns) - 1; i >= 0; i-- {
		cc := t.conns[i]
		if !cc.CanTakeRequest() {
			continue
		}
		st, err := cc.NewStream(req)
		if err == nil {
			t.mu.Unlock()
			closeAll(stale)
			return st, true, nil
		}
	}
	full := len(t.conns) >= maxH2Conns
	t.mu.Unlock()
	closeAll(stale)
	if full {
		return nil, false, fmt.Errorf("proxy: %d HTTP/2 connections to %s: %w", maxH2Conns, t.addr, h2.ErrNoStream)
	}
	cc, err := t.dial(ctx)
	if err != nil {
		return nil, false, err
	}
	st, err := cc.NewStream(req)
	if err != nil {
		cc.Close()
		return nil, false, err
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		st.Close()
		cc.Close()
		return nil, false, errServiceClosed
	}
	t.conns = append(t.conns, cc)
	t.mu.Unlock()
	return st, false, nil
}

func closeAll(conns []*h2.ClientConn) {
	for _, cc := range conns {
		cc.Close()
	}
}

// dial opens a connection to the peer: TCP, TLS with ALPN h2 if the peer has TLS, and
// the HTTP/2 handshake, all within the connect timeout.
func (t *h2Conns) dial(ctx context.Context) (*h2.ClientConn, error) {
	ctx, cancel := context.WithTimeout(ctx, t.opts.connect)
	defer cancel()
	d := net.Dialer{KeepAlive: t.opts.keepAlive}
	nc, err := d.DialContext(ctx, t.network, t.addr)
	if err != nil {
		return nil, err
	}
	if t.tlsConfig != nil {
		tc := tls.Client(nc, t.tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, err
		}
		if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
			nc.Close()
			return nil, fmt.Errorf("proxy: the peer %s did not negotiate h2 (ALPN %q)", t.addr, p)
		}
		nc = tc
	}
	return h2.NewClientConn(ctx, nc, h2.ClientOptions{Pool: t.bufs})
}

// maxUnprocessedResends bounds the resends of a request the peer did not process.
const maxUnprocessedResends = 3

// RoundTrip sends req on a stream and returns the response once its head arrived. A
// request the peer did not process (GOAWAY, REFUSED_STREAM) is sent again on another
// connection when its body can be replayed: none, or GetBody.
func (t *h2Conns) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	trace := httptrace.ContextClientTrace(ctx)
	head := h2Head(req)
	for i := 0; ; i++ {
		head.EndStream = req.Body == nil || req.Body == http.NoBody
		st, reused, err := t.stream(ctx, &head)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, err
		}
		if trace != nil && trace.GotConn != nil {
			trace.GotConn(httptrace.GotConnInfo{Reused: reused})
		}
		resp, err := t.exchange(ctx, trace, st, req)
		if err == nil {
			return resp, nil
		}
		if !errors.Is(err, h2.ErrUnprocessed) || i >= maxUnprocessedResends || ctx.Err() != nil {
			return nil, err
		}
		if !head.EndStream {
			if req.GetBody == nil {
				return nil, err
			}
			body, gerr := req.GetBody()
			if gerr != nil {
				return nil, err
			}
			req = req.Clone(ctx)
			req.Body = body
		}
	}
}

// h2Head is the HTTP/2 head of req.
func h2Head(req *http.Request) h2.ClientRequest {
	h := h2.ClientRequest{Method: req.Method, Scheme: req.URL.Scheme, Authority: req.Host, Path: req.URL.RequestURI()}
	if h.Authority == "" {
		h.Authority = req.URL.Host
	}
	h.Fields = make([]h2.Field, 0, len(req.Header)+1)
	for k, vs := range req.Header {
		name := strings.ToLower(k)
		if name == "host" || name == "content-length" || name == "connection" || name == "transfer-encoding" {
			continue
		}
		for _, v := range vs {
			h.Fields = append(h.Fields, h2.Field{Name: name, Value: v})
		}
	}
	if req.ContentLength > 0 {
		h.Fields = append(h.Fields, h2.Field{Name: "content-length", Value: strconv.FormatInt(req.ContentLength, 10)})
	}
	return h
}

// exchange sends req's body on st (on a goroutine of its own) and waits for the
// response head.
func (t *h2Conns) exchange(ctx context.Context, trace *httptrace.ClientTrace, st *h2.ClientStream, req *http.Request) (*http.Response, error) {
	b := &h2ConnBody{st: st, set: t}
	b.stop = context.AfterFunc(ctx, st.Cancel)
	b.refs.Store(1)
	if req.Body != nil && req.Body != http.NoBody {
		b.refs.Add(1)
		go b.send(req, t.bufs)
	}
	var on1xx func(int, []h2.Field)
	if trace != nil && trace.Got1xxResponse != nil {
		on1xx = func(code int, fields []h2.Field) {
			h := make(textproto.MIMEHeader, len(fields))
			for _, f := range fields {
				h.Add(f.Name, f.Value)
			}
			_ = trace.Got1xxResponse(code, h)
		}
	}
	status, fields, err := st.ReadHead(on1xx)
	if err != nil {
		b.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	resp := &http.Response{
		Status: strconv.Itoa(status) + " " + http.StatusText(status), StatusCode: status,
		Proto: "HTTP/2.0", ProtoMajor: 2, Header: make(http.Header, len(fields)),
		ContentLength: -1, Request: req, Body: b,
	}
	b.resp, b.ctx = resp, ctx
	for _, f := range fields {
		k := http.CanonicalHeaderKey(f.Name)
		resp.Header[k] = append(resp.Header[k], f.Value)
		switch f.Name {
		case "content-length":
			if n, err := strconv.ParseInt(f.Value, 10, 64); err == nil && n >= 0 {
				resp.ContentLength = n
			}
		case "trailer":
			for _, k := range strings.Split(f.Value, ",") {
				if k = strings.TrimSpace(k); k != "" {
					if resp.Trailer == nil {
						resp.Trailer = http.Header{}
					}
					resp.Trailer[http.CanonicalHeaderKey(k)] = nil
				}
			}
		}
	}
	if st.HeadEndsStream() {
		b.Close()
		resp.Body = http.NoBody
		resp.ContentLength = 0
	}
	return resp, nil
}

// h2ConnBody is a response body on a client stream, and the goroutine that sends the
// request body on it.
type h2ConnBody struct {
	set  *h2Conns
	st   *h2.ClientStream
	resp *http.Response
	ctx  context.Context
	stop func() bool
	once sync.Once
	// refs counts the users of st: the response side and the request body's
	// goroutine; the last one done closes it.
	refs atomic.Int32
}

// release drops one user of the stream.
func (b *h2ConnBody) release() {
	if b.refs.Add(-1) == 0 {
		b.stop()
		b.st.Close()
		b.set.mu.Lock()
		closed := b.set.closed
		b.set.mu.Unlock()
		if closed {
			b.set.CloseIdleConnections() // the set was dropped while this stream ran
		}
	}
}

// send copies the request body to the stream, then its trailers.
func (b *h2ConnBody) send(req *http.Request, bufs *h2.BufPool) {
	defer b.release()
	buf := bufs.Get()
	defer bufs.Put(buf)
	for {
		n, err := req.Body.Read(buf)
		if n > 0 {
			if werr := b.st.WriteData(buf[:n], false); werr != nil {
				return // the stream ended: the response says why
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			b.st.Cancel()
			return
		}
	}
	if len(req.Trailer) > 0 {
		fields := make([]h2.Field, 0, len(req.Trailer))
		for k, vs := range req.Trailer {
			for _, v := range vs {
				fields = append(fields, h2.Field{Name: strings.ToLower(k), Value: v})
			}
		}
		_ = b.st.WriteTrailers(fields)
		return
	}
	_ = b.st.WriteData(nil, true)
}

func (b *h2ConnBody) Read(p []byte) (int, error) {
	n, err := b.st.Read(p)
	if err == io.EOF {
		if tr := b.st.Trailers(); len(tr) > 0 {
			if b.resp.Trailer == nil {
				b.resp.Trailer = http.Header{}
			}
			for _, f := range tr {
				k := http.CanonicalHeaderKey(f.Name)
				b.resp.Trailer[k] = append(b.resp.Trailer[k], f.Value)
			}
		}
	} else if err != nil && b.ctx != nil && b.ctx.Err() != nil {
		err = fmt.Errorf("%w: %w", b.ctx.Err(), err)
	}
	return n, err
}

// Close ends the exchange: a stream still open is reset (which ends the request body's
// goroutine too).
func (b *h2ConnBody) Close() error {
	b.once.Do(func() {
		b.st.Cancel()
		b.release()
	})
	return nil
}
