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
// idle for the peer's idle timeout is closed when the set is next used or by the pool's
// sweep (each second), and all are closed with the pool's entry; one quiet for the
// options' pingQuiet must answer a PING before it takes a stream. It is safe for
// concurrent use.
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
	idle, _ := t.pruneLocked(time.Now(), true)
	t.mu.Unlock()
	for _, cc := range idle {
		cc.Close()
	}
}

// pruneLocked takes out the connections that ended, and those idle for the idle
// timeout (all idle ones with all); it returns those to close, and the connections
// kept that need a PING before their next stream (see h2Options), as bits of their
// indexes in t.conns (maxH2Conns fits in them). t.mu is held.
func (t *h2Conns) pruneLocked(now time.Time, all bool) (out []*h2.ClientConn, quiet uint64) {
	keep := t.conns[:0]
	for _, cc := range t.conns {
		since, alive, idle := cc.Quiet()
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
		if idle && t.opts.pingQuiet > 0 && now.Sub(alive) >= t.opts.pingQuiet {
			quiet |= 1 << len(keep)
		}
		keep = append(keep, cc)
	}
	clear(t.conns[len(keep):])
	t.conns = keep
	return out, quiet
}

// sweepIdle closes the connections idle for the idle timeout at now, and those that
// ended, for the pool's sweep: a set that no request uses keeps none past it.
func (t *h2Conns) sweepIdle(now time.Time) {
	t.mu.Lock()
	stale, _ := t.pruneLocked(now, false)
	t.mu.Unlock()
	closeAll(stale)
}

// stream opens a stream for req on a connection that can take one (the newest first),
// dialing a new connection if none can, within the connect timeout and total, if not
// zero; reused tells whether the connection was there before. A connection quiet for
// the options' pingQuiet is used only once it has answered a PING; one that does not
// answer in time is closed, and a new connection dialed. setDial, if not nil, is given
// the cancellation of the PING or the dial while it runs (and nil after), so that
// another goroutine can cut it; when it reports false neither starts.
func (t *h2Conns) stream(ctx context.Context, req *h2.ClientRequest, total time.Duration, setDial func(context.CancelFunc) bool) (*h2.ClientStream, bool, error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, false, errServiceClosed
	}
	stale, quiet := t.pruneLocked(time.Now(), false)
	var check *h2.ClientConn // the newest connection that needs a PING first
	for i := len(t.conns) - 1; i >= 0; i-- {
		cc := t.conns[i]
		if !cc.CanTakeRequest() {
			continue
		}
		if quiet&(1<<i) != 0 {
			if check == nil {
				check = cc
			}
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
	if full && check == nil {
		return nil, false, t.errFull()
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
	if check != nil {
		st, err := t.checked(ctx, check, req, total)
		if st != nil || err != nil {
			return st, st != nil, err
		}
		if full {
			return nil, false, t.errFull()
		}
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

// errFull is the error of a request that finds maxH2Conns connections to the peer, none
// of which can take its stream.
func (t *h2Conns) errFull() error {
	return fmt.Errorf("proxy: %d HTTP/2 connections to %s: %w", maxH2Conns, t.addr, h2.ErrNoStream)
}

// checked PINGs cc, a connection of the set that was quiet for pingQuiet, within the
// ping timeout (and total, if not zero), and opens a stream for req on it if it
// answers. A connection that does not answer is closed (the set drops it when next
// used); then, or if it can no longer take the stream, checked returns neither a stream
// nor an error, and the caller dials. An error is the request's own (ctx ended).
func (t *h2Conns) checked(ctx context.Context, cc *h2.ClientConn, req *h2.ClientRequest, total time.Duration) (*h2.ClientStream, error) {
	limit := t.opts.pingTimeout
	if total > 0 {
		limit = min(limit, total)
	}
	pctx, cancel := context.WithTimeout(ctx, limit)
	err := cc.Ping(pctx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if cc.Streams() == 0 { // (else another request found it alive and uses it)
			cc.Close() // dead or too slow: a new connection serves better
		}
		return nil, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, errServiceClosed
	}
	if st, err := cc.NewStream(req); err == nil {
		return st, nil
	}
	return nil, nil // it cannot take the stream: the caller dials
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
