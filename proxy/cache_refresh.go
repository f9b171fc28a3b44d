package proxy

import (
	"errors"
	"io"
	"strings"
	"time"

	"github.com/gotthard-proxy/gotthard/cache"
	"github.com/gotthard-proxy/gotthard/internal/arena"
	"github.com/gotthard-proxy/gotthard/internal/h1"
	"github.com/gotthard-proxy/gotthard/message"
)

// The background refresh of a response served stale by stale-while-revalidate
// (RFC 5861 §3): while the client gets the stale response, a copy of its request goes
// upstream on a goroutine of its own, as the writer of the key's fill, so that the next
// requests find the response fresh again. It runs the upstream phases (UpstreamPeer to
// ResponseCacheFilter and the upstream body filter) on a context of its own from NewCtx,
// with a client side that discards what it is sent; the request phases, the response
// phases that follow ResponseCacheFilter, observers and Logging do not run for it. One
// refresh runs per key at a time (the fill is the lock), and none starts once the
// service is closing; Close cuts the refreshes' upstream connections and waits for them.

// startRefresh starts the background refresh of the stale response ex serves, unless
// one is in progress for its key.
func (c *conn[C]) startRefresh(ex *exchange[C]) {
	s, cs := c.svc, &ex.cache
	if s.closing.Load() {
		return
	}
	f, writer := cs.c.Join(cs.primary)
	if !writer {
		return // being fetched already
	}
	bg := &conn[C]{svc: s, nc: c.nc, clientIP: c.clientIP, clientS: c.clientS, trusted: c.trusted, tls: c.tls}
	req := cloneRequest(&ex.sess.req)
	ch, primary, variance := cs.c, cs.primary, cs.variance
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		f.Abandon(ErrShutdown)
		return
	}
	if s.refreshes == nil {
		s.refreshes = make(map[*conn[C]]struct{})
	}
	s.refreshes[bg] = struct{}{}
	s.connWG.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.connWG.Done()
		defer func() {
			s.mu.Lock()
			delete(s.refreshes, bg)
			s.mu.Unlock()
		}()
		bg.refresh(req, ch, primary, variance, f)
	}()
}

// refresh fetches req anew for the fill f of the key primary of ch.
func (c *conn[C]) refresh(req *message.RequestHeader, ch *cache.Cache, primary, variance string, f *cache.Fill) {
	s := c.svc
	ex := c.getExchange(nil)
	var err error
	defer func() {
		if p := recover(); p != nil {
			err = &Error{Type: InternalError, Source: Internal, Cause: panicError{p}}
			s.log.Error("panic in a background refresh", "err", err, "key", primary)
		}
		if ex.cache.fill != nil {
			ex.cache.fill.Abandon(err)
			ex.cache.fill = nil
		}
		c.putExchange(ex, nil)
	}()
	ex.obs = nil // (observers see the requests of clients; a refresh is none)
	discard := &discardDown{}
	ex.sess.ds = discard
	ex.sess.req.CopyFrom(req)
	ex.sess.timing.Start = time.Now()
	ex.sess.cache = ch
	ex.method = append(ex.method[:0], req.Method...)
	cs := &ex.cache
	cs.c, cs.primary, cs.variance, cs.fill, cs.background = ch, primary, variance, f, true
	// The stored response, to validate; it may have gone meanwhile (then it is a miss).
	if obj, key, lerr := ch.Lookup(primary, func(*message.ResponseHeader) (string, bool) { return variance, true }); lerr == nil {
		cs.obj, cs.key = obj, key
	}
	cc := s.app.NewCtx()
	if err = c.proxy(s.ctx, ex, cc); err != nil {
		s.log.Warn("cache: a background refresh failed", "key", primary, "err", err)
	}
}

// cloneRequest returns a copy of r whose strings are its own (r's may be in an arena
// that its exchange reuses).
func cloneRequest(r *message.RequestHeader) *message.RequestHeader {
	c := &message.RequestHeader{Method: strings.Clone(r.Method), Target: strings.Clone(r.Target), Version: r.Version}
	for name, value := range r.Header.All() {
		c.Header.Add(strings.Clone(name), strings.Clone(value))
	}
	return c
}

// cutRefreshes cuts the upstream connections of the background refreshes (Close).
func (s *Service[C]) cutRefreshes() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.refreshes {
		if uc := c.up.Load(); uc != nil {
			uc.nc.Close()
		}
	}
}

// discardDown is the client side of a background refresh: no request body, and a
// response that goes nowhere.
type discardDown struct{}

var errNoClient = errors.New("proxy: a background refresh has no client")

func (*discardDown) readBody() ([]byte, error)              { return nil, io.EOF }
func (*discardDown) bodyDone() bool                         { return true }
func (*discardDown) willWait() bool                         { return false }
func (*discardDown) trailers(*message.Header, *arena.Arena) {}
func (*discardDown) continue100() error                     { return errNoClient }
func (*discardDown) interim(int, *message.Header)           {}
func (*discardDown) writeHead(*Session, *message.ResponseHeader, h1.BodyKind, int64) error {
	return nil
}
func (*discardDown) writeBody([]byte) error                { return nil }
func (*discardDown) finish(*message.Header) error          { return nil }
func (*discardDown) flush() error                          { return nil }
func (*discardDown) buffered() int                         { return 0 }
func (*discardDown) abortRead()                            {}
func (*discardDown) readTimeout(time.Time, time.Duration)  {}
func (*discardDown) writeTimeout(time.Time, time.Duration) {}
