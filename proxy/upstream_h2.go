package proxy

import (
	"bytes"
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
	"sync"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/arena"
	"github.com/gotthard-proxy/gotthard/message"
)

// HTTP/2 to peers (Peer.Protocol ProtoHTTP2 or ProtoHTTP2IfOffered) runs on the
// standard library's client: one net/http.Transport per peer identity, whose HTTP/2
// connections are shared by concurrent requests up to the peer's stream limit, PINGed
// when idle, and whose requests that a peer's GOAWAY left unprocessed (or that it
// refused) are sent again on another connection, whatever their method, when their body
// can be replayed (none, or buffered). Requests and responses cross between the proxy's
// message types and net/http's here.

// h2Pool holds the transports to the HTTP/2 peers of one identity, in its hostPool and
// under its lock. net/http builds some of a peer's options into a transport (the
// connect timeout, TCP keep-alive and idle timeout), so peers of the same identity with
// different such options get transports of their own; the others (read and total
// timeouts) are applied per request.
type h2Pool struct {
	transports []h2Entry // at most maxH2Transports
}

type h2Entry struct {
	opts h2Options
	tr   *http.Transport
	used time.Time
}

// h2Options are the options a transport is built with.
type h2Options struct {
	connect, keepAlive, idle time.Duration
}

// find returns the transport built with opts, or nil; call with the hostPool's lock.
func (p *h2Pool) find(opts h2Options, now time.Time) *http.Transport {
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
func (p *h2Pool) add(opts h2Options, tr *http.Transport, now time.Time) *http.Transport {
	var old *http.Transport
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
func (p *connPool) h2Transport(peer *Peer) (*http.Transport, error) {
	if p.closed.Load() {
		return nil, errServiceClosed
	}
	o := &peer.Options
	opts := h2Options{connect: o.connectTimeout(), keepAlive: o.keepAlive(), idle: o.idleTimeout()}
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
	tr = newH2Transport(peer, opts, max(p.maxIdle, 1), cfg)
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
			SendPingTimeout: 15 * time.Second, // PING an idle connection, drop it if unanswered
			PingTimeout:     10 * time.Second,
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
func (c *conn[C]) exchangeH2(ctx contextT, ex *exchange[C], cc C, peer *Peer) *Error {
	s, sess := c.svc, &ex.sess
	ex.gotResponseByte, ex.requestSent = false, false
	o := &peer.Options
	tr, err := s.pool.h2Transport(peer)
	if err != nil {
		return &Error{Type: ConnectionClosed, Source: Internal, Cause: err}
	}
	up, e := c.upstreamRequest(ctx, ex, cc, peer)
	if e != nil {
		return e
	}
	req, rerr := c.h2Request(ex, peer, up)
	if rerr != nil {
		return rerr
	}
	actx, cancel := context.WithCancel(ctx)
	if o.TotalTimeout > 0 {
		actx, cancel = context.WithTimeout(ctx, o.TotalTimeout)
	}
	defer cancel()
	if !ex.setUpstream(nil, cancel) {
		return clientGoneError(errClientGone)
	}
	defer ex.setUpstream(nil, nil)
	body := &h2ReqBody[C]{c: c, ex: ex, ctx: ctx, cc: cc, req: req}
	if sess.reqBodyKind != 0 || sess.bodyBuffered && len(sess.body) > 0 {
		req.Body = body
		if sess.bodyBuffered {
			// A buffered body can be sent again, on another connection.
			req.GetBody = func() (io.ReadCloser, error) {
				return io.NopCloser(bytes.NewReader(sess.body)), nil
			}
		} else {
			if err := sess.send100(); err != nil {
				return err.(*Error)
			}
			sess.bodyRead = true
		}
	}
	// The connection the transport picks makes the attempt connected: the
	// ConnectedToUpstream phase runs then; an error from it ends the attempt.
	var connected bool
	var phaseErr error
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
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
	}, GotConn: c.gotConn(ctx, sess, cc, peer, &connected, &phaseErr, cancel)}
	req = req.WithContext(httptrace.WithClientTrace(actx, trace))
	// The wait for the answer is bounded by the read timeout, counted from the last
	// piece of request body sent: a long upload (gRPC client streaming) is no wait.
	body.wait.start(o.readTimeout(), cancel)
	ex.requestSent = true
	resp, err := tr.RoundTrip(req)
	body.wait.stop()
	if err != nil {
		// net/http may still read the body on its own goroutine: stop it before
		// looking at what it saw.
		if body.stop(sess); body.err != nil {
			return body.err
		}
		return roundTripError(ex, err, connected, phaseErr, actx, ctx)
	}
	defer resp.Body.Close()
	defer body.stop(sess)
	return c.forwardH2(ctx, ex, cc, resp, o, cancel)
}

// forwardH2 passes an HTTP/2 peer's response through the response phases to the client.
func (c *conn[C]) forwardH2(ctx contextT, ex *exchange[C], cc C, resp *http.Response, o *PeerOptions, cancel func()) *Error {
	s, sess := c.svc, &ex.sess
	ex.gotResponseByte = true
	sess.timing.UpstreamResponse = time.Now()
	sess.upstreamStatus = resp.StatusCode
	c.h2Response(ex, resp)
	if err := s.app.UpstreamResponseFilter(ctx, sess, cc, &ex.resp); err != nil {
		return asError(err, InternalError, Internal)
	}
	if err := s.app.ResponseFilter(ctx, sess, cc, &ex.resp); err != nil {
		return asError(err, InternalError, Internal)
	}
	if sess.respStarted {
		return nil
	}
	if err := validateHeader(&ex.resp.Header); err != nil {
		return asError(err, InternalError, Internal)
	}
	src := &h2Body{resp: resp, buf: s.bufs.Get(), bufs: s.bufs.Put, timeout: o.readTimeout(), cancel: cancel}
	defer src.release()
	return c.sendResponse(ctx, ex, cc, src)
}

// roundTripError maps the failure of a request to an HTTP/2 peer: an error of
// ConnectedToUpstream, a failure to connect (for FailToConnect), a timeout, or a read
// error.
func roundTripError[C any](ex *exchange[C], err error, connected bool, phaseErr error, actx, ctx contextT) *Error {
	if phaseErr != nil {
		return asError(phaseErr, InternalError, Internal)
	}
	if !connected {
		t := ConnectError
		if isRefused(err) {
			t = ConnectRefused
		}
		e := asError(err, t, Upstream)
		e.Retry, e.connectFailure = true, true
		ex.requestSent = false
		return e
	}
	if actx.Err() == context.DeadlineExceeded || errors.Is(err, context.Canceled) && ctx.Err() == nil {
		return &Error{Type: ReadTimeout, Source: Upstream, Cause: err}
	}
	return asError(err, ReadError, Upstream)
}

// gotConn returns the httptrace hook that makes an attempt to an HTTP/2 peer
// connected: it counts the connection as new or reused and runs ConnectedToUpstream,
// whose error it keeps in *phaseErr, cancelling the attempt.
func (c *conn[C]) gotConn(ctx contextT, sess *Session, cc C, peer *Peer, connected *bool, phaseErr *error, cancel func()) func(httptrace.GotConnInfo) {
	s := c.svc
	return func(info httptrace.GotConnInfo) {
		if *connected {
			return // a retry of the transport's own, after a GOAWAY
		}
		*connected = true
		sess.reused = info.Reused
		sess.timing.UpstreamConnected = time.Now()
		if info.Reused {
			s.pool.reused.Add(1)
		} else {
			s.pool.newConns.Add(1)
		}
		if err := s.app.ConnectedToUpstream(ctx, sess, cc, peer, info.Reused); err != nil {
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
		switch {
		case message.EqualFold(f.Name, "Host"), message.EqualFold(f.Name, "Content-Length"),
			message.EqualFold(f.Name, "Transfer-Encoding"), message.EqualFold(f.Name, "Connection"),
			message.EqualFold(f.Name, "Keep-Alive"), message.EqualFold(f.Name, "Upgrade"),
			message.EqualFold(f.Name, "Proxy-Connection"):
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
		switch k {
		case "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Trailer":
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
	if c.svc.via != "" {
		appendVia(&r.Header, c.svc.via)
	}
}

// h2ReqBody streams the client's request body (through RequestBodyFilter) to an HTTP/2
// peer; net/http reads it on a goroutine of its own.
type h2ReqBody[C any] struct {
	c       *conn[C]
	ex      *exchange[C]
	ctx     contextT
	cc      C
	req     *http.Request
	mu      sync.Mutex // held while reading, so that stop waits for a read in progress
	pending []byte
	off     int // of the buffered body
	done    bool
	stopped bool
	err     *Error
	wait    waitTimer // for the response head
}

// waitTimer calls f once a wait has lasted d; push starts the wait again, until stop.
type waitTimer struct {
	mu      sync.Mutex
	t       *time.Timer
	d       time.Duration
	stopped bool
}

func (w *waitTimer) start(d time.Duration, f func()) {
	w.d = d
	w.t = time.AfterFunc(d, f)
}

func (w *waitTimer) push() {
	w.mu.Lock()
	if !w.stopped && w.t != nil {
		w.t.Reset(w.d)
	}
	w.mu.Unlock()
}

func (w *waitTimer) stop() {
	w.mu.Lock()
	w.stopped = true
	w.t.Stop()
	w.mu.Unlock()
}

func (b *h2ReqBody[C]) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return 0, io.ErrClosedPipe
	}
	sess := &b.ex.sess
	if sess.bodyBuffered {
		if b.off >= len(sess.body) {
			return 0, io.EOF
		}
		n := copy(p, sess.body[b.off:])
		b.off += n
		return n, nil
	}
	for len(b.pending) == 0 {
		if b.done {
			return 0, io.EOF
		}
		d := sess.ds
		if d.willWait() {
			d.readTimeout(time.Now(), sess.bodyTimeout)
		}
		chunk, err := sess.readBody()
		if err != nil && err != io.EOF {
			b.err = clientReadError(err)
			return 0, b.err
		}
		end := err == io.EOF
		out, ferr := b.c.svc.app.RequestBodyFilter(b.ctx, sess, b.cc, chunk, end)
		if ferr != nil {
			b.err = asError(ferr, InternalError, Internal)
			return 0, b.err
		}
		b.pending = out
		b.wait.push()
		if end {
			b.done = true
			// Neither ex.trl nor the request's arena: the response, which may be on
			// its way meanwhile, uses those.
			var trl message.Header
			var a arena.Arena
			d.trailers(&trl, &a)
			for _, f := range trl.Fields() {
				b.req.Trailer.Add(f.Name, f.Value)
			}
		}
	}
	n := copy(p, b.pending)
	b.pending = b.pending[n:]
	return n, nil
}

func (b *h2ReqBody[C]) Close() error { return nil }

// stop ends the body for good once the exchange is over; a read in progress on the
// client is cut short first, so that nothing reads the session after it is reused.
func (b *h2ReqBody[C]) stop(sess *Session) {
	if b.stopped {
		return
	}
	aborted := false
	if !b.mu.TryLock() {
		sess.ds.abortRead()
		b.mu.Lock()
		aborted = true
	}
	if aborted || b.err != nil {
		sess.closeAfter = true // the client's side of the connection is in doubt
	}
	b.stopped = true
	b.mu.Unlock()
}

// h2Body reads an HTTP/2 peer's response body through a pooled buffer.
type h2Body struct {
	resp    *http.Response
	buf     []byte
	bufs    func([]byte)
	timeout time.Duration
	cancel  context.CancelFunc // ends the attempt: a read that waits too long
	timer   *time.Timer
	eof     bool
}

func (b *h2Body) readBody() ([]byte, error) {
	if b.eof {
		return nil, io.EOF
	}
	// Each wait for the peer is bounded by the read timeout.
	if b.timer == nil {
		b.timer = time.AfterFunc(b.timeout, b.cancel)
	} else {
		b.timer.Reset(b.timeout)
	}
	n, err := b.resp.Body.Read(b.buf)
	b.timer.Stop()
	if err == io.EOF {
		b.eof = true
	}
	return b.buf[:n], err
}

func (b *h2Body) buffered() int         { return 1 } // net/http buffers: never refresh deadlines
func (b *h2Body) readTimeout(time.Time) {}
func (b *h2Body) skip()                 {}

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
