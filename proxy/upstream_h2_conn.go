package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/h2"
)

// h2RoundTripper sends requests to the HTTP/2 peers of one identity: net/http's
// Transport (for a TLS peer that may answer in HTTP/1.1, ProtoHTTP2IfOffered), or
// h2Conns, our own client connections (see exchangeH2Conns).
type h2RoundTripper interface {
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

	// attempts holds the state of finished attempts for reuse (see h2Attempt); all
	// are of the service's context type.
	attempts sync.Pool

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
// dialing a new connection if none can, within the connect timeout and total, if not
// zero; reused tells whether the connection was there before. setDial, if not nil, is
// given the cancellation of the dial while it runs (and nil after), so that another
// goroutine can cut it; when it reports false the dial does not start.
func (t *h2Conns) stream(ctx context.Context, req *h2.ClientRequest, total time.Duration, setDial func(context.CancelFunc) bool) (*h2.ClientStream, bool, error) {
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
	if setDial != nil {
		dctx, cancel := context.WithCancel(ctx)
		defer cancel()
		if !setDial(cancel) {
			return nil, false, context.Canceled
		}
		defer setDial(nil)
		ctx = dctx
	}
	cc, err := t.dial(ctx, total)
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
// the HTTP/2 handshake, all within the connect timeout (and total, if not zero).
func (t *h2Conns) dial(ctx context.Context, total time.Duration) (*h2.ClientConn, error) {
	limit := t.opts.connect
	if total > 0 {
		limit = min(limit, total)
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
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

// releaseStream is called as a stream of the set ends: if the set was dropped while the
// stream ran, its connections left idle close.
func (t *h2Conns) releaseStream() {
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		t.CloseIdleConnections()
	}
}
