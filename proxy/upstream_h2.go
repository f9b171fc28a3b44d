package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/gotthard-proxy/gotthard/internal/arena"
	"github.com/gotthard-proxy/gotthard/internal/h2"
	"github.com/gotthard-proxy/gotthard/internal/hop"
	"github.com/gotthard-proxy/gotthard/message"
)

// HTTP/2 to peers (Peer.Protocol ProtoHTTP2 or ProtoHTTP2IfOffered) runs on
// internal/h2's client connections (h2Conns, upstream_h2_conn.go; the attempts in
// upstream_h2_attempt.go and upstream_h2_run.go), or, for a TLS peer that may answer in
// HTTP/1.1 (ProtoHTTP2IfOffered), on the standard library's net/http.Transport. Either
// way, per peer identity, connections are shared by concurrent requests up to the
// peer's stream limit, and requests that a peer's GOAWAY left unprocessed (or that it
// refused) are sent again on another connection, whatever their method, when their body
// can be replayed (none, or buffered). Requests and responses cross between the proxy's
// message types and the stream's fields directly for h2Conns, and through net/http's
// types for the Transport.

// h2Pool holds the transports to the HTTP/2 peers of one identity, in its hostPool and
// under its lock. A transport is built with some of a peer's options (the connect
// timeout, TCP keep-alive and idle timeout), so peers of the same identity with
// different such options get transports of their own; the others (read and total
// timeouts) are applied per request.
type h2Pool struct {
	transports []h2Entry // at most maxH2Transports
}

type h2Entry struct {
	opts h2Options
	tr   h2RoundTripper
	used time.Time
}

// h2Options are the options a transport is built with. A connection with no stream
// that has shown no sign of life for pingQuiet is PINGed before it is used again (by
// our client) or in the background (by net/http's), and dropped if the answer takes
// longer than pingTimeout: a peer that vanished without closing it (a crash, a
// middlebox's idle timeout) would otherwise cost the next request its read timeout.
type h2Options struct {
	connect, keepAlive, idle time.Duration
	pingQuiet, pingTimeout   time.Duration
}

// h2PingQuiet is how long a connection to an HTTP/2 peer may sit without streams
// before it is PINGed (see h2Options); the answer is awaited for the connect timeout,
// at most h2PingTimeout.
const (
	h2PingQuiet   = 15 * time.Second
	h2PingTimeout = 10 * time.Second
)

// newH2Options returns the options of transports to peers with options o.
func newH2Options(o *PeerOptions) h2Options {
	return h2Options{connect: o.connectTimeout(), keepAlive: o.keepAlive(), idle: o.idleTimeout(),
		pingQuiet: h2PingQuiet, pingTimeout: min(o.connectTimeout(), h2PingTimeout)}
}

// find returns the transport built with opts, or nil; call with the hostPool's lock.
func (p *h2Pool) find(opts h2Options, now time.Time) h2RoundTripper {
	for i := range p.transports {
		if e := &p.transports[i]; e.opts == opts {
			e.used = now
			return e.tr
		}
	}
	return nil
}

// add adds tr, built with opts, and returns the transport it replaced to keep within
// maxH2Transports, or nil; call with the hostPool's lock.
func (p *h2Pool) add(opts h2Options, tr h2RoundTripper, now time.Time) h2RoundTripper {
	var old h2RoundTripper
	if len(p.transports) >= maxH2Transports {
		i := 0
		for j, e := range p.transports {
			if e.used.Before(p.transports[i].used) {
				i = j
			}
		}
		old = p.transports[i].tr
		p.transports = slices.Delete(p.transports, i, i+1)
	}
	p.transports = append(p.transports, h2Entry{opts: opts, tr: tr, used: now})
	return old
}

var errServiceClosed = errors.New("proxy: service closed")

// h2Transport returns the transport to peer: one per peer identity and set of the
// options a transport is built with.
func (p *connPool) h2Transport(peer *Peer) (h2RoundTripper, error) {
	if p.closed.Load() {
		return nil, errServiceClosed
	}
	o := &peer.Options
	opts := newH2Options(o)
	now := time.Now()
	h := p.entry(peer.key(), now)
	h.mu.Lock()
	h.touch(now, o)
	tr := h.h2.find(opts, now)
	h.mu.Unlock()
	if tr != nil {
		return tr, nil
	}
	var cfg *tls.Config
	if peer.TLS != nil {
		cfg = p.tlsConfig(peer).Clone()
		cfg.NextProtos = nil // the transport offers what Protocols allows
	}
	if peer.TLS != nil && peer.Protocol == ProtoHTTP2IfOffered {
		tr = newH2Transport(peer, opts, max(p.maxIdle, 1), cfg) // (HTTP/1.1 if not offered)
	} else {
		tr = newH2Conns(peer, opts, cfg, p.bufs)
	}
	h.mu.Lock()
	if p.closed.Load() {
		h.mu.Unlock()
		return nil, errServiceClosed
	}
	if cur := h.h2.find(opts, now); cur != nil {
		h.mu.Unlock()
		return cur, nil
	}
	old := h.h2.add(opts, tr, now)
	h.mu.Unlock()
	if old != nil {
		old.CloseIdleConnections()
	}
	return tr, nil
}

// newH2Transport returns a transport to peer, with opts and, for a TLS peer, cfg.
func newH2Transport(peer *Peer, opts h2Options, maxIdle int, cfg *tls.Config) *http.Transport {
	d := &net.Dialer{Timeout: opts.connect, KeepAlive: opts.keepAlive}
	network, addr := peer.network(), peer.Address
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		TLSHandshakeTimeout:    opts.connect,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 64 << 10,
		MaxIdleConnsPerHost:    maxIdle,
		IdleConnTimeout:        max(opts.idle, time.Millisecond),
		HTTP2: &http.HTTP2Config{
			SendPingTimeout: opts.pingQuiet, // PING an idle connection, drop it if unanswered
			PingTimeout:     opts.pingTimeout,
		},
		TLSClientConfig: cfg,
	}
	var protos http.Protocols
	switch {
	case peer.TLS == nil:
		protos.SetUnencryptedHTTP2(true)
	case peer.Protocol == ProtoHTTP2IfOffered:
		protos.SetHTTP1(true)
		protos.SetHTTP2(true)
	default:
		protos.SetHTTP2(true)
	}
	tr.Protocols = &protos
	return tr
}

// exchangeH2 runs one attempt to an HTTP/2 peer. A failure to reach the peer comes back
// marked connectFailure, for FailToConnect.
//
// Every phase of the attempt runs on the request's goroutine, one at a time, as with an
// HTTP/1.x peer. On net/http's Transport, without a body to stream (none, or one
// buffered), the request goroutine calls RoundTrip itself, and net/http's goroutines
// run only the framework's hooks. A streamed body goes through an h2Pump instead.
func (c *conn[C]) exchangeH2(ctx contextT, ex *exchange[C], cc C, peer *Peer) *Error {
	s := c.svc
	ex.gotResponseByte, ex.requestSent = false, false
	tr, err := s.pool.h2Transport(peer)
	if err != nil {
		return &Error{Type: ConnectionClosed, Source: Internal, Cause: err}
	}
	up, e := c.upstreamRequest(ctx, ex, cc, peer)
	if e != nil {
		return e
	}
	c.observeUpstreamRequest(ex, up, "HTTP/2")
	if set, ok := tr.(*h2Conns); ok {
		return c.exchangeH2Conns(ctx, ex, cc, peer, set, up)
	}
	return c.exchangeTransport(ctx, ex, cc, peer, tr.(*http.Transport), up)
}

// exchangeTransport runs one attempt to an HTTP/2 peer on net/http's Transport (see
// exchangeH2).
func (c *conn[C]) exchangeTransport(ctx contextT, ex *exchange[C], cc C, peer *Peer, tr *http.Transport, up *message.RequestHeader) *Error {
	sess := &ex.sess
	o := &peer.Options
	req, rerr := c.h2Request(ex, peer, up)
	if rerr != nil {
		return rerr
	}
	var actx contextT
	var cancel context.CancelFunc
	if o.TotalTimeout > 0 {
		actx, cancel = context.WithTimeout(ctx, o.TotalTimeout)
	} else {
		actx, cancel = context.WithCancel(ctx)
	}
	defer cancel()
	if !ex.setUpstream(nil, cancel) {
		return clientGoneError(errClientGone)
	}
	defer ex.setUpstream(nil, nil)
	// The connection the transport picks makes the attempt connected: the
	// ConnectedToUpstream phase runs then; an error from it ends the attempt.
	var connected bool
	var phaseErr error
	onConn := c.gotConn(ctx, sess, cc, peer, &connected, &phaseErr, cancel)
	on1xx := func(code int, h textproto.MIMEHeader) error {
		// Interim responses (103 Early Hints, say) go on to the client, except 100:
		// the proxy answers Expect itself.
		if code == 100 || code == 101 || sess.req.Version == message.HTTP10 {
			return nil
		}
		ex.trl.Reset()
		for k, vs := range h {
			for _, v := range vs {
				ex.trl.Add(k, v)
			}
		}
		if validateHeader(&ex.trl) == nil {
			sess.ds.interim(code, &ex.trl)
		}
		return nil
	}
	if sess.reqBodyKind != 0 && !sess.bodyBuffered {
		if err := sess.send100(); err != nil {
			return err.(*Error)
		}
		sess.bodyRead = true
		p := newH2Pump(c, ex, ctx, cc, cancel, o.readTimeout())
		defer p.finish()
		req.Body = p.body
		// net/http calls the hooks on its goroutines: they run on the request's.
		trace := &httptrace.ClientTrace{
			Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
				p.call(func() { on1xx(code, h) })
				return nil
			},
			GotConn: func(info httptrace.GotConnInfo) { p.call(func() { onConn(info) }) },
		}
		p.req = req.WithContext(httptrace.WithClientTrace(actx, trace))
		ex.requestSent = true
		p.start(tr)
		// The wait for the answer is bounded by the read timeout, counted from the
		// last piece of request body sent: a long upload (gRPC client streaming) is no
		// wait.
		u := p.next()
		if u.err != nil {
			if p.err != nil {
				return p.err
			}
			mirrorReset(sess, u.err)
			return roundTripError(ex, u.err, connected, phaseErr, actx, ctx)
		}
		p.resp = u.resp // finish closes it, once net/http's read of the body is stopped
		return c.forwardH2Pumped(ctx, ex, cc, u.resp, o, cancel, p)
	}
	if sess.bodyBuffered && len(sess.body) > 0 {
		// A buffered body can be sent again, on another connection (GetBody). net/http
		// reads it on its goroutine, until the guard stops it as the attempt ends: the
		// session's buffer then serves the next request.
		g := &h2Guard{}
		body := sess.body
		req.Body = &h2BufBody{g: g, b: body}
		req.GetBody = func() (io.ReadCloser, error) { return &h2BufBody{g: g, b: body}, nil }
		defer g.stop()
	}
	trace := &httptrace.ClientTrace{Got1xxResponse: on1xx, GotConn: onConn}
	req = req.WithContext(httptrace.WithClientTrace(actx, trace))
	// The wait for the answer is bounded by the read timeout.
	wait := time.AfterFunc(o.readTimeout(), cancel)
	ex.requestSent = true
	resp, err := tr.RoundTrip(req)
	wait.Stop()
	if err != nil {
		return roundTripError(ex, err, connected, phaseErr, actx, ctx)
	}
	defer resp.Body.Close()
	return c.forwardH2(ctx, ex, cc, resp, o, cancel)
}

// mirrorReset resets an HTTP/2 client's stream with the code of the peer's reset that
// failed the attempt before any answer, while the client's body still streamed: the
// client learns what the peer said (a gRPC client, say, maps CANCEL past its deadline
// to DEADLINE_EXCEEDED) instead of the end of its body being cut with NO_ERROR.
func mirrorReset(sess *Session, err error) {
	var re *h2.ResetError
	if !errors.As(err, &re) || !re.Remote || re.Code == http2.ErrCodeNo {
		return
	}
	if d, ok := sess.transport().(*h2down); ok {
		d.st.Reset(re.Code)
	}
}

// forwardH2 passes an HTTP/2 peer's response through the response phases to the client.
func (c *conn[C]) forwardH2(ctx contextT, ex *exchange[C], cc C, resp *http.Response, o *PeerOptions, cancel func()) *Error {
	return c.forwardH2Pumped(ctx, ex, cc, resp, o, cancel, nil)
}

// forwardH2Pumped is forwardH2 while p carries the rest of a streamed request body (nil
// if there is none).
func (c *conn[C]) forwardH2Pumped(ctx contextT, ex *exchange[C], cc C, resp *http.Response, o *PeerOptions, cancel func(), p *h2Pump[C]) *Error {
	s, sess := c.svc, &ex.sess
	if p != nil {
		p.settle()
	}
	ex.gotResponseByte = true
	sess.timing.UpstreamResponse = time.Now()
	sess.upstreamStatus = resp.StatusCode
	c.h2Response(ex, resp)
	src := &h2Body{resp: resp, buf: s.bufs.Get(), bufs: s.bufs.Put, timeout: o.readTimeout(), cancel: cancel}
	if p != nil {
		src.pump = p
	}
	defer src.release() // (also when a phase panics)
	e := c.respond(ctx, ex, cc, src)
	if e != nil && p != nil && p.err != nil {
		return p.err // the request body failed, which cut the response short
	}
	return e
}

// h2ConnectError is the error of an attempt that got no stream from an HTTP/2 peer's
// connections: a failure to connect, which FailToConnect sees, retried by default;
// nothing of the request was sent.
func h2ConnectError[C any](ex *exchange[C], err error) *Error {
	t := ConnectError
	if isRefused(err) {
		t = ConnectRefused
	}
	e := asError(err, t, Upstream)
	e.Retry, e.connectFailure = true, true
	ex.requestSent = false
	return e
}

// roundTripError maps the failure of a request to an HTTP/2 peer: an error of
// ConnectedToUpstream, a failure to connect (for FailToConnect), a timeout, or a read
// error.
func roundTripError[C any](ex *exchange[C], err error, connected bool, phaseErr error, actx, ctx contextT) *Error {
	if phaseErr != nil {
		return asError(phaseErr, InternalError, Internal)
	}
	if !connected {
		return h2ConnectError(ex, err)
	}
	if actx.Err() == context.DeadlineExceeded { // (only TotalTimeout sets a deadline on it)
		return &Error{Type: TotalTimeout, Source: Upstream, Cause: err}
	}
	if errors.Is(err, context.Canceled) && ctx.Err() == nil {
		return peerReadTimeout(err)
	}
	return asError(err, ReadError, Upstream)
}

// peerReadTimeout is the error of an attempt to an HTTP/2 peer whose read timeout
// cancelled it: err is what net/http returned for the cut (context canceled).
func peerReadTimeout(err error) *Error {
	return &Error{Type: ReadTimeout, Source: Upstream, Cause: err}
}

// gotConn returns the httptrace hook that makes an attempt to an HTTP/2 peer
// connected: it counts the connection as new or reused and runs ConnectedToUpstream,
// whose error it keeps in *phaseErr, cancelling the attempt.
func (c *conn[C]) gotConn(ctx contextT, sess *Session, cc C, peer *Peer, connected *bool, phaseErr *error, cancel func()) func(httptrace.GotConnInfo) {
	return func(info httptrace.GotConnInfo) {
		if *connected {
			return // a retry of the transport's own, after a GOAWAY
		}
		*connected = true
		if err := c.h2Connected(ctx, sess, cc, peer, info.Reused); err != nil {
			*phaseErr = err
			cancel()
		}
	}
}

// h2Request builds the net/http request for up.
func (c *conn[C]) h2Request(ex *exchange[C], peer *Peer, up *message.RequestHeader) (*http.Request, *Error) {
	sess := &ex.sess
	u, err := url.ParseRequestURI(up.Target)
	if err != nil || up.Target == "*" {
		return nil, &Error{Type: InternalError, Source: Internal, Status: 400, Cause: errors.New("proxy: request target not in origin form")}
	}
	u.Scheme = "http"
	if peer.TLS != nil {
		u.Scheme = "https"
	}
	host := up.Header.Get("Host")
	u.Host = host
	req := &http.Request{
		Method:     up.Method,
		URL:        u,
		Host:       host,
		Header:     make(http.Header, up.Header.Len()),
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Body:       http.NoBody,
	}
	for _, f := range up.Header.Fields() {
		if hop.Field(f.Name) || message.EqualFold(f.Name, "Host") || message.EqualFold(f.Name, "Content-Length") {
			continue
		}
		req.Header.Add(f.Name, f.Value)
	}
	if sess.teTrailers { // an HTTP/2 client's, or the gRPC-web bridge's
		req.Header.Set("Te", "trailers") // gRPC needs it end to end
	}
	switch {
	case sess.bodyBuffered:
		req.ContentLength = int64(len(sess.body))
	case sess.reqBodyKind == 0:
		req.ContentLength = 0
	default:
		req.ContentLength = -1
		if v, ok := up.Header.Lookup("Content-Length"); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
				req.ContentLength = n
			}
		}
		req.Trailer = http.Header{}
	}
	return req, nil
}

// h2Response copies the peer's response head into ex.resp.
func (c *conn[C]) h2Response(ex *exchange[C], resp *http.Response) {
	r := &ex.resp
	r.Reset()
	r.Status = resp.StatusCode
	r.Version = message.HTTP2
	if resp.ProtoMajor == 1 {
		r.Version = message.HTTP11
	}
	keys := make([]string, 0, len(resp.Header))
	for k := range resp.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if hop.Field(k) || k == "Trailer" {
			continue
		}
		for _, v := range resp.Header[k] {
			r.Header.Add(k, v)
		}
	}
	switch {
	case resp.Body == http.NoBody:
		// The head ended the stream (for gRPC, a trailers-only response).
		r.Header.Set("Content-Length", "0")
	case len(resp.Trailer) > 0:
		// Trailers are announced: an HTTP/1.1 client can get them only with a chunked
		// body, so the length is not passed on.
		r.Header.Del("Content-Length")
	case resp.ContentLength >= 0 && !r.Header.Has("Content-Length"):
		r.Header.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	c.addRelayFields(&ex.sess, &r.Header)
}

// h2Body reads an HTTP/2 peer's response body through a pooled buffer. It is used by
// the request goroutine alone.
type h2Body struct {
	resp    *http.Response
	buf     []byte
	bufs    func([]byte)
	timeout time.Duration
	cancel  context.CancelFunc // ends the attempt: a read that waits too long
	timer   *time.Timer
	expired atomic.Bool // the timer cut a wait: the read's error is a timeout
	eof     bool
	pump    h2ResponseReader // while a streamed request body goes on; nil if none
}

// h2ResponseReader reads an HTTP/2 peer's response body while the request body streams
// up (see h2Pump.readResponse).
type h2ResponseReader interface {
	readResponse(buf []byte) (n int, err error, ok bool)
}

func (b *h2Body) readBody() ([]byte, error) {
	if b.eof {
		return nil, io.EOF
	}
	if b.pump != nil {
		if n, err, ok := b.pump.readResponse(b.buf); ok {
			if err == io.EOF {
				b.eof = true
			}
			return b.buf[:n], err
		}
		b.pump = nil // the request body is over: read here
	}
	// Each wait for the peer is bounded by the read timeout.
	if b.timer == nil {
		b.timer = time.AfterFunc(b.timeout, func() {
			b.expired.Store(true)
			b.cancel()
		})
	} else {
		b.timer.Reset(b.timeout)
	}
	n, err := b.resp.Body.Read(b.buf)
	b.timer.Stop()
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil && b.expired.Load():
		err = peerReadTimeout(err)
	}
	return b.buf[:n], err
}

func (b *h2Body) known() []message.Field { return nil } // from net/http: check them all
func (b *h2Body) buffered() int          { return 1 }   // net/http buffers: never refresh deadline.Tracker
func (b *h2Body) readTimeout(time.Time)  {}
func (b *h2Body) skip()                  {}

// finish releases the body's buffer and timer; the stream itself ends with the
// attempt, when its body is closed.
func (b *h2Body) finish(*Session, bool, *Error) { b.release() }

func (b *h2Body) trailers(h *message.Header, _ *arena.Arena) {
	for k, vs := range b.resp.Trailer {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
}

func (b *h2Body) release() {
	if b.timer != nil {
		b.timer.Stop()
	}
	if b.buf != nil {
		b.bufs(b.buf)
		b.buf = nil
	}
}
