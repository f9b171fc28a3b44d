package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"

	"github.com/gotthard-proxy/gotthard/cache"
	"github.com/gotthard-proxy/gotthard/internal/arena"
	"github.com/gotthard-proxy/gotthard/message"
)

// The cache's part in a request (see the cache phases in ProxyHTTP and docs/cache.md):
//
//	RequestCacheFilter  returns the cache, or nil: no part (the rest is skipped)
//	CacheKey            the primary key
//	IsPurge             a purge request: the key is purged, PurgeResponseFilter, answered
//	(lookup; CacheVaryFilter picks the variant)
//	CacheHitFilter      on a stored response: serve it, or treat it as expired or missing
//	  fresh             served from the store; ResponseFilter and the body filters run
//	  stale             validated with the peer (a 304 refreshes it), or served stale
//	(miss)              the cache lock: one request goes upstream, the others read its fill
//	ResponseCacheFilter on the peer's response, after UpstreamResponseFilter: store or not
//
// A request's cache state belongs to its goroutine, as the rest of its exchange; a fill
// is shared with the requests that read it (see cache.Fill).

// HitAction is what CacheHitFilter decides about a stored response.
type HitAction uint8

const (
	// HitServe serves the stored response as the cache judged it: as it is if fresh,
	// after validation (or stale, where allowed) if not.
	HitServe HitAction = iota
	// HitExpire treats the stored response as stale: it is validated with the peer.
	HitExpire
	// HitMiss ignores the stored response: a new one is fetched, and replaces it if
	// it is cacheable.
	HitMiss
)

// CacheDecision is ResponseCacheFilter's answer: whether to store the response, and if
// not, why (for the log and Cache-Status's detail).
type CacheDecision struct {
	Store  bool
	Reason string
}

// CacheStatus is what the cache did for a request; [Session.CacheStatus] returns it.
type CacheStatus uint8

const (
	// CacheOff: the cache took no part (RequestCacheFilter returned nil).
	CacheOff CacheStatus = iota
	// CacheBypass: the request cannot be answered from a cache (its method, no-store).
	CacheBypass
	// CacheMiss: nothing was stored; the response came from the peer.
	CacheMiss
	// CacheHit: a fresh stored response answered the request.
	CacheHit
	// CacheCollapsed: the response came from another request's fill of the same key.
	CacheCollapsed
	// CacheRevalidated: a stale stored response was validated by the peer (304) and
	// answered the request.
	CacheRevalidated
	// CacheExpired: a stored response was stale, and the peer sent a new one.
	CacheExpired
	// CacheStale: a stale stored response answered the request without validation
	// (stale-while-revalidate, stale-if-error, max-stale, ShouldServeStale).
	CacheStale
	// CachePurge: the request was a purge (IsPurge).
	CachePurge
)

var cacheStatusNames = [...]string{"off", "bypass", "miss", "hit", "collapsed", "revalidated", "expired", "stale", "purge"}

// String returns the status's name in lower case: "hit", "miss"...
func (s CacheStatus) String() string {
	if int(s) < len(cacheStatusNames) {
		return cacheStatusNames[s]
	}
	return "CacheStatus(" + strconv.Itoa(int(s)) + ")"
}

// scheme returns the client connection's scheme.
func (s *Session) scheme() string { return schemeOf(s.tls) }

// cachePolicy returns the policy of the request's cache (the zero Policy without one).
func (s *Session) cachePolicy() cache.Policy {
	if s.cache == nil {
		return cache.Policy{}
	}
	return s.cache.Policy()
}

// CacheStatus returns what the cache did for the request (for Logging).
func (s *Session) CacheStatus() CacheStatus { return s.cacheStatus }

// cacheState is a request's use of its cache. It belongs to the request's goroutine.
type cacheState struct {
	c          *cache.Cache
	primary    string       // the CacheKey
	obj        cache.Object // the stored response found, if any (closed at the request's end)
	key        string       // obj's key in the store
	variance   string       // the variance obj was found with
	fill       *cache.Fill  // the fill this request writes, if it went upstream for the key
	validating bool         // the upstream request validates obj
	background bool         // a background refresh (see cache_refresh.go)
	reqTime    time.Time    // when the request went upstream, for the stored response's age
	src        cacheSource
	rng        cache.ByteRange   // the one range served, Length -1 for none
	ranges     []cache.ByteRange // a Range's ranges
	fwd        cache.Fwd         // why a CacheBypass request went upstream
	multi      *cache.Multipart  // the parts of several ranges served
}

// reset closes what the state holds; the request ended with err (nil: it went well).
func (cs *cacheState) reset(err error) {
	if cs.fill != nil {
		if err == nil {
			err = errors.New("proxy: the request ended before its response was stored")
		}
		cs.fill.Abandon(err)
	}
	if cs.obj != nil {
		cs.obj.Close()
	}
	ranges := cs.ranges[:0]
	*cs = cacheState{ranges: ranges}
}

// serveCache runs the cache phases before the request goes upstream. done reports that
// the request was answered (from the store, a fill, or as a purge); otherwise it goes
// upstream, possibly as the writer of a fill.
func (c *conn[C]) serveCache(ctx contextT, ex *exchange[C], cc C) (done bool, _ error) {
	s, sess := c.svc, &ex.sess
	ch, err := s.app.RequestCacheFilter(ctx, sess, cc)
	if err != nil || ch == nil {
		return false, err
	}
	cs := &ex.cache
	cs.c, sess.cache = ch, ch
	if cs.primary, err = s.app.CacheKey(ctx, sess, cc); err != nil {
		return false, err
	}
	if s.app.IsPurge(ctx, sess, cc) {
		// The key to purge is the one a GET of the target has.
		if cs.primary, err = c.getKey(ctx, ex, cc, sess.req.Target); err != nil {
			return true, err
		}
		return true, c.purge(ctx, ex, cc)
	}
	req := &sess.req
	if !cacheableMethod(req.Method) {
		sess.cacheStatus, cs.fwd = CacheBypass, cache.FwdMethod
		return false, nil
	}
	rcc := cache.ParseRequestCacheControl(&req.Header)
	if rcc.NoStore {
		// (RFC 9111 §5.2.1.5: nothing of this exchange is stored.)
		sess.cacheStatus, cs.fwd = CacheBypass, cache.FwdRequest
		return false, nil
	}
	variance := func(stored *message.ResponseHeader) (string, bool) {
		v, ok := s.app.CacheVaryFilter(ctx, sess, cc, stored)
		cs.variance = v
		return v, ok
	}
	obj, key, err := ch.Lookup(cs.primary, variance)
	if err == nil {
		cs.obj, cs.key = obj, key
		now := sess.clock()
		j := judge(ch.Policy(), req, &rcc, obj.Meta(), now)
		act, err := s.app.CacheHitFilter(ctx, sess, cc, obj.Meta(), j.fresh)
		if err != nil {
			return false, err
		}
		switch act {
		case HitMiss:
			cs.obj.Close()
			cs.obj = nil
		case HitExpire:
			j = judgement{}
		}
		if cs.obj != nil && j.fresh {
			sess.cacheStatus = CacheHit
			return true, c.serveStored(ctx, ex, cc, now)
		}
		if cs.obj != nil && j.serveStale {
			sess.cacheStatus = CacheStale
			if j.background {
				c.startRefresh(ex)
			}
			return true, c.serveStored(ctx, ex, cc, now)
		}
		if cs.obj != nil && rcc.OnlyIfCached {
			return true, &Error{Type: HTTPStatus, Source: Downstream, Status: 504,
				Cause: errors.New("proxy: only-if-cached, and the stored response is stale")}
		}
	}
	if cs.obj == nil && rcc.OnlyIfCached {
		return true, &Error{Type: HTTPStatus, Source: Downstream, Status: 504,
			Cause: errors.New("proxy: only-if-cached, and nothing is stored")}
	}
	// A miss, or a stale response to validate: one request goes upstream for the key.
	f, writer := ch.Join(cs.primary)
	if writer {
		cs.fill = f
		sess.cacheStatus = CacheMiss
		if cs.obj != nil {
			sess.cacheStatus = CacheExpired // (CacheRevalidated if the peer answers 304)
		}
		return false, nil
	}
	if done, err := c.serveFill(ctx, ex, cc, f); done || err != nil {
		return done, err
	}
	// The fill gave nothing to use. It may have refreshed the stored response instead
	// (a 304 validated it): then that answers. Otherwise this request goes upstream
	// itself, uncached.
	if cs.obj != nil {
		cs.obj.Close()
		cs.obj = nil
	}
	if obj, key, err := ch.Lookup(cs.primary, variance); err == nil {
		now := sess.clock()
		if judge(ch.Policy(), req, &rcc, obj.Meta(), now).fresh {
			cs.obj, cs.key = obj, key
			sess.cacheStatus = CacheRevalidated
			return true, c.serveStored(ctx, ex, cc, now)
		}
		obj.Close()
	}
	sess.cacheStatus = CacheMiss
	return false, nil
}

// cacheableMethod reports whether a response to method may come from the store.
func cacheableMethod(m string) bool { return m == "GET" || m == "HEAD" }

// purge answers a purge request: the key's stored response goes, and the client gets
// 200 if there was one, 404 if not (PurgeResponseFilter may change the answer).
func (c *conn[C]) purge(ctx contextT, ex *exchange[C], cc C) error {
	s, sess, cs := c.svc, &ex.sess, &ex.cache
	sess.cacheStatus = CachePurge
	found, err := cs.c.Purge(cs.primary)
	if err != nil {
		return &Error{Type: InternalError, Source: Internal, Cause: err}
	}
	resp := &ex.resp
	resp.Reset()
	resp.Status = 404
	if found {
		resp.Status = 200
	}
	resp.Header.Set("Content-Type", "text/plain; charset=utf-8")
	if err := s.app.PurgeResponseFilter(ctx, sess, cc, found, resp); err != nil {
		return err
	}
	if sess.respStarted {
		return nil
	}
	body := "purged\n"
	if !found {
		body = "not found\n"
	}
	return sess.writeWhole(resp, nil, body)
}

// serveStored answers the request from the stored response in ex.cache.obj, through
// the response phases (ResponseFilter and the body filters; not the upstream ones):
// the client's own conditional request answered from it (RFC 9111 §4.3.2), a Range
// served from it (one part or several, or 416), or the whole.
func (c *conn[C]) serveStored(ctx contextT, ex *exchange[C], cc C, now time.Time) error {
	sess, cs := &ex.sess, &ex.cache
	if !c.storedHead(ex, cs.obj.Meta(), cs.obj.Size(), now) {
		cs.src = cacheSource{}
	} else {
		cs.src = cacheSource{obj: cs.obj, size: cs.obj.Size()}
		if b, ok := cs.obj.(cache.BytesObject); ok {
			cs.src.body = b.Bytes()
		}
		cs.src.window(cs.rng)
		if cs.multi != nil {
			var buf bytes.Buffer
			buf.Grow(int(cs.multi.ContentLength()))
			if _, err := cs.multi.WriteBody(&buf, cs.obj); err != nil {
				return &Error{Type: InternalError, Source: Internal, Cause: err}
			}
			cs.src = cacheSource{body: buf.Bytes(), size: int64(buf.Len())}
		}
	}
	sess.timing.UpstreamResponse = now
	return c.respondCached(ctx, ex, cc)
}

// storedHead makes ex.resp the head that answers the request from the stored response
// m whose body is size bytes, and reports whether a body follows; ex.cache.rng is set
// to the one range to send, or ex.cache.multi to the parts of several.
func (c *conn[C]) storedHead(ex *exchange[C], m *cache.Meta, size int64, now time.Time) (body bool) {
	req, resp, cs := &ex.sess.req, &ex.resp, &ex.cache
	cs.rng, cs.multi = cache.ByteRange{Length: -1}, nil
	switch cache.EvaluateConditional(req, m) {
	case cache.SendNotModified:
		cache.NotModified(resp, m, now)
		return false
	case cache.SendPreconditionFailed:
		cache.PreconditionFailed(resp, now)
		return false
	}
	if v, ok := req.Header.Lookup("Range"); ok && req.Method == "GET" && size >= 0 && cache.IfRangeMatches(req, m) {
		ranges, err := cs.c.Policy().ParseRange(cs.ranges[:0], v, size)
		cs.ranges = ranges
		switch {
		case errors.Is(err, cache.ErrRangeUnsatisfiable):
			cache.Unsatisfiable(resp, m, size, now)
			return false
		case err == nil && len(ranges) == 1:
			cache.Partial(resp, m, ranges[0], size, now)
			cs.rng = ranges[0]
			return true
		case err == nil:
			cs.multi = cache.NewMultipart(ranges, size, m.Response.Header.Get("Content-Type"), "")
			cs.multi.Header(resp, m, now)
			return true
		}
	}
	cache.ServeHeader(resp, m, now)
	return true
}

// respondCached runs the response phases on ex.resp with ex.cache.src as the body.
func (c *conn[C]) respondCached(ctx contextT, ex *exchange[C], cc C) error {
	cs := &ex.cache
	ex.known = knownFields(ex.known, &ex.resp.Header)
	cs.src.head = ex.known
	if e := c.respond(ctx, ex, cc, &cs.src); e != nil {
		return e
	}
	return nil
}

// serveFill answers the request from another request's fill of its key, as the fill
// grows. done false (and no error) means the fill cannot serve it (given up, too large,
// another variant, or the lock's wait ran out): the request goes upstream itself.
func (c *conn[C]) serveFill(ctx contextT, ex *exchange[C], cc C, f *cache.Fill) (done bool, _ error) {
	s, sess, cs := c.svc, &ex.sess, &ex.cache
	m, vary, variance, err := f.Head(ctx.Done())
	if err != nil {
		if ctx.Err() != nil {
			return true, shutdownError(nil)
		}
		s.log.Debug("cache: going upstream without the lock", "key", cs.primary, "err", err)
		return false, nil
	}
	if vary != "" {
		if mine, ok := s.app.CacheVaryFilter(ctx, sess, cc, &m.Response); !ok || mine != variance {
			return false, nil
		}
	}
	now := sess.clock()
	sess.cacheStatus = CacheCollapsed
	req := &sess.req
	switch {
	case cache.EvaluateConditional(req, m) != cache.SendFull:
		c.storedHead(ex, m, -1, now)
		cs.src = cacheSource{}
	default:
		// (A Range is not served from a fill: the whole response goes, which RFC 9110
		// §14.2 allows.)
		cache.ServeHeader(&ex.resp, m, now)
		cs.src = cacheSource{fill: f, size: -1, wait: durOr(s.opts.SendTimeout, 60*time.Second), done: ctx.Done()}
	}
	sess.timing.UpstreamResponse = now
	return true, c.respondCached(ctx, ex, cc)
}

// cacheResponse runs ResponseCacheFilter on the peer's response (after
// UpstreamResponseFilter) and starts or gives up the request's fill. revalidated
// reports a 304 that validated the stored response: it was refreshed, and answers the
// request. A successful unsafe request invalidates what it changed.
func (c *conn[C]) cacheResponse(ctx contextT, ex *exchange[C], cc C) (revalidated bool, _ *Error) {
	s, sess, cs := c.svc, &ex.sess, &ex.cache
	resp := &ex.resp
	f := cs.fill
	if f == nil {
		c.invalidate(ctx, ex, cc) // (for an unsafe method only)
		return false, nil
	}
	if resp.Status == 304 && cs.obj != nil && cs.validating {
		return true, c.revalidated(ex)
	}
	if resp.Status == 200 && cs.obj != nil && sess.req.Method == "HEAD" {
		c.freshenFromHEAD(ex) // (then the fill is given up below: HEAD is not stored)
	}
	if cs.obj != nil && staleIfErrorStatus(resp.Status) {
		e := &Error{Type: HTTPStatus, Source: Upstream, Status: resp.Status,
			Cause: errors.New("proxy: the peer answered the validation of a stored response with " + strconv.Itoa(resp.Status))}
		if c.staleOnError(ctx, ex, cc, e) {
			return true, nil
		}
	}
	dec, err := s.app.ResponseCacheFilter(ctx, sess, cc, resp)
	if err != nil {
		return false, asError(err, InternalError, Internal)
	}
	if !dec.Store {
		cs.fill = nil
		f.Abandon(errors.New("proxy: not cacheable: " + dec.Reason))
		return false, nil
	}
	vary, variance := "", ""
	if cache.HasVary(resp) {
		v, ok := s.app.CacheVaryFilter(ctx, sess, cc, resp)
		if !ok {
			cs.fill = nil
			f.Abandon(errors.New("proxy: not cacheable: Vary lists too many fields, or *"))
			return false, nil
		}
		vary, variance = resp.Header.Get("Vary"), v
	}
	m := storedMeta(resp, cs.reqTime, sess.timing.UpstreamResponse)
	if err := f.Start(m, vary, variance); err != nil {
		cs.fill = nil
		s.log.Debug("cache: not stored", "key", cs.primary, "err", err)
	}
	return false, nil
}

// revalidated refreshes the stored response in ex.cache.obj with the peer's 304 in
// ex.resp (RFC 9111 §4.3.4), and gives the fill up: the stored body stays.
func (c *conn[C]) revalidated(ex *exchange[C]) *Error {
	sess, cs := &ex.sess, &ex.cache
	m := cs.obj.Meta().Clone()
	cache.Update304(m, &ex.resp, cs.reqTime, sess.timing.UpstreamResponse)
	m = storedMeta(&m.Response, m.RequestTime, m.ResponseTime)
	m.Size = cs.obj.Size()
	if err := cs.c.Storage().UpdateMeta(cs.key, m); err != nil {
		c.svc.log.Warn("cache: refreshing a stored response failed", "key", cs.primary, "err", err)
	}
	cs.fill.Abandon(errors.New("proxy: validated (304): the stored body stays"))
	cs.fill = nil
	if obj, _, err := cs.c.Lookup(cs.primary, func(*message.ResponseHeader) (string, bool) { return cs.variance, true }); err == nil {
		cs.obj.Close()
		cs.obj = obj
	}
	sess.cacheStatus = CacheRevalidated
	return nil
}

// freshenFromHEAD applies the peer's 200 to a HEAD request, in ex.resp, to the stale
// stored GET response that would have answered it, ex.cache.obj (RFC 9111 §4.3.5): it
// refreshes the stored head as a 304 would when the two agree on ETag, Last-Modified and
// Content-Length, and removes the stored response when they do not (it describes a
// response the peer no longer sends). The client's HEAD is answered by the peer's
// response either way.
func (c *conn[C]) freshenFromHEAD(ex *exchange[C]) {
	sess, cs := &ex.sess, &ex.cache
	m := cs.obj.Meta().Clone()
	switch cache.FreshenFromHEAD(m, &ex.resp, cs.reqTime, sess.timing.UpstreamResponse) {
	case cache.HEADUpdated:
		m = storedMeta(&m.Response, m.RequestTime, m.ResponseTime)
		m.Size = cs.obj.Size()
		if err := cs.c.Storage().UpdateMeta(cs.key, m); err != nil {
			c.svc.log.Warn("cache: refreshing a stored response from HEAD failed", "key", cs.primary, "err", err)
		}
	case cache.HEADStale:
		if _, err := cs.c.Storage().Purge(cs.key); err != nil {
			c.svc.log.Warn("cache: removing a stored response HEAD showed changed failed", "key", cs.primary, "err", err)
		}
	}
}

// refreshed reports whether a revalidated response needs no serving: a background
// refresh has no client.
func (cs *cacheState) refreshed() bool { return cs.background }

// staleIfErrorStatus reports whether a peer's status counts as an error for
// stale-if-error (RFC 5861 §4).
func staleIfErrorStatus(st int) bool { return st == 500 || st == 502 || st == 503 || st == 504 }

// staleOnError reports whether the stale stored response (ex.cache.obj) is to answer a
// request whose validation or refetch failed with e, as ShouldServeStale decides; if
// so the fill is given up and the cache status is CacheStale. The caller serves it.
func (c *conn[C]) staleOnError(ctx contextT, ex *exchange[C], cc C, e *Error) bool {
	sess, cs := &ex.sess, &ex.cache
	if cs.obj == nil || sess.respStarted {
		return false
	}
	rcc := cache.ParseRequestCacheControl(&sess.req.Header)
	allowed := judge(cs.c.Policy(), &sess.req, &rcc, cs.obj.Meta(), sess.clock()).staleOnErr
	if !c.svc.app.ShouldServeStale(ctx, sess, cc, cs.obj.Meta(), e, allowed) {
		return false
	}
	if cs.fill != nil {
		cs.fill.Abandon(fmt.Errorf("proxy: a stale response was served instead: %w", e))
		cs.fill = nil
	}
	sess.cacheStatus = CacheStale
	return true
}

// serveStaleOnError answers a request that failed with e from its stale stored
// response, if ShouldServeStale agrees; it reports whether it did.
func (c *conn[C]) serveStaleOnError(ctx contextT, ex *exchange[C], cc C, e *Error) bool {
	if !c.staleOnError(ctx, ex, cc, e) {
		return false
	}
	if err := c.serveStored(ctx, ex, cc, ex.sess.clock()); err != nil {
		c.svc.log.Warn("cache: serving a stale response failed", "key", ex.cache.primary, "err", err)
		ex.sess.closeAfter = true
	}
	return true
}

// addCacheStatus adds the cache's member to the response's Cache-Status field
// (RFC 9211), if the cache is set to, before ResponseFilter runs.
func (c *conn[C]) addCacheStatus(ex *exchange[C]) {
	sess, cs := &ex.sess, &ex.cache
	st := cache.CacheStatus{Cache: cs.c.Name()}
	switch sess.cacheStatus {
	case CachePurge:
		return
	case CacheHit, CacheStale:
		st.Hit = sess.upstreamStatus == 0
		if !st.Hit { // (stale-if-error: the peer failed)
			st.Fwd, st.FwdStatus = cache.FwdStale, sess.upstreamStatus
		}
		if cs.obj != nil {
			m := cs.obj.Meta()
			st.HasTTL, st.TTL = true, cs.c.Policy().Freshness(m, m.CacheControl(), sess.clock()).TTL()
		}
	case CacheCollapsed:
		st.Fwd, st.Collapsed = cache.FwdMiss, true
	case CacheRevalidated:
		st.Fwd, st.FwdStatus = cache.FwdStale, 304
	case CacheExpired, CacheMiss:
		st.Fwd, st.FwdStatus, st.Stored = cache.FwdURIMiss, sess.upstreamStatus, cs.fill != nil
		if sess.cacheStatus == CacheExpired {
			st.Fwd = cache.FwdStale
		}
	case CacheBypass:
		st.Fwd, st.FwdStatus = cs.fwd, sess.upstreamStatus
	}
	st.AddTo(&ex.resp.Header)
}

// cacheRequest readies the upstream request of a request that fills the cache: the
// client's conditionals and Range go (the fill needs the whole response; the client's
// are answered from it), and a stale stored response's validators come in (RFC 9111
// §4.3.1).
func (c *conn[C]) cacheRequest(ex *exchange[C], up *message.RequestHeader) {
	cs := &ex.cache
	cs.reqTime = ex.sess.clock()
	for _, name := range [...]string{"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since", "If-Range", "Range"} {
		up.Header.Del(name)
	}
	cs.validating = cs.obj != nil && cache.AddConditionals(up, cs.obj.Meta())
	if t := cs.c.Policy().Surrogate; t != "" {
		addToList(&up.Header, "Surrogate-Capability", cache.SurrogateCapability(t))
	}
}

// addToList adds value to the list field name of h.
func addToList(h *message.Header, name, value string) {
	if prior, ok := h.Lookup(name); ok && prior != "" {
		h.Set(name, prior+", "+value)
		return
	}
	h.Set(name, value)
}

// teeFill writes a piece of the response body (as UpstreamResponseBodyFilter left it)
// to the request's fill, and commits it at the end.
func (c *conn[C]) teeFill(ex *exchange[C], chunk []byte, end bool) {
	cs := &ex.cache
	if err := cs.fill.Write(chunk); err != nil {
		cs.fill = nil
		return
	}
	if end {
		f := cs.fill
		cs.fill = nil
		if err := f.Commit(); err != nil {
			c.svc.log.Warn("cache: storing a response failed", "key", cs.primary, "err", err)
		}
	}
}

// invalidate drops the stored responses a successful unsafe request makes stale: the
// URIs cache.Invalidations names (RFC 9111 §4.4), by the keys CacheKey gives a GET of
// each (see getKey).
func (c *conn[C]) invalidate(ctx contextT, ex *exchange[C], cc C) {
	sess, cs := &ex.sess, &ex.cache
	for _, uri := range cache.Invalidations(sess.scheme(), &sess.req, &ex.resp) {
		u, err := url.Parse(uri) // (normalised by Invalidations: it parses)
		if err != nil {
			continue
		}
		key, err := c.getKey(ctx, ex, cc, u.RequestURI())
		if err != nil {
			c.svc.log.Warn("cache: CacheKey failed for an invalidation", "uri", uri, "err", err)
			continue
		}
		if _, err := cs.c.Purge(key); err != nil {
			c.svc.log.Warn("cache: purging an invalidated response failed", "key", key, "err", err)
		}
	}
}

// cacheSource is the body of a response from the cache: a stored object's, or a fill's
// as it grows. It implements upstream, so that respond runs the response phases for it
// as for a peer's response.
type cacheSource struct {
	head []message.Field // the head's lines valid as made (see validateChanged)
	obj  cache.Object    // a stored body (body set if it is in memory)
	body []byte
	fill *cache.Fill // a fill's body
	wait time.Duration
	done <-chan struct{}
	size int64 // the body's length; -1 for a fill
	off  int64 // what was read
	buf  []byte
}

// window narrows the source to the range r (Length -1: the whole body).
func (s *cacheSource) window(r cache.ByteRange) {
	if r.Length < 0 {
		return
	}
	s.off, s.size = r.Start, r.Start+r.Length
	if s.body != nil {
		s.body = s.body[:s.size]
	}
}

// cacheChunk is the size of the pieces a stored body on disk is read in.
const cacheChunk = 32 << 10

func (s *cacheSource) known() []message.Field { return s.head }

func (s *cacheSource) readBody() ([]byte, error) {
	switch {
	case s.fill != nil:
		b, err := s.fill.Read(int(s.off), s.wait, s.done)
		s.off += int64(len(b))
		return b, err
	case s.body != nil:
		b := s.body[s.off:]
		s.off = int64(len(s.body))
		return b, io.EOF
	case s.obj != nil:
		if s.off >= s.size {
			return nil, io.EOF
		}
		if s.buf == nil {
			s.buf = make([]byte, min(cacheChunk, s.size-s.off))
		}
		n, err := s.obj.ReadAt(s.buf[:min(int64(len(s.buf)), s.size-s.off)], s.off)
		s.off += int64(n)
		if err == io.EOF && s.off < s.size || err != nil && err != io.EOF {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return s.buf[:n], err
		}
		if s.off >= s.size {
			return s.buf[:n], io.EOF
		}
		return s.buf[:n], nil
	}
	return nil, io.EOF
}

func (s *cacheSource) buffered() int {
	if s.body != nil {
		return len(s.body) - int(s.off)
	}
	return 0
}

func (s *cacheSource) readTimeout(time.Time)                  {}
func (s *cacheSource) trailers(*message.Header, *arena.Arena) {}
func (s *cacheSource) skip()                                  {}
func (s *cacheSource) finish(*Session, bool, *Error)          {}

// fromCache reports whether src is the cache's rather than a peer's: the upstream
// response phases do not run for it.
func fromCache(src upstream) bool {
	_, ok := src.(*cacheSource)
	return ok
}

// getKey returns the key CacheKey gives a GET of target: the phase runs with the
// request's method and target read so, and they are put back after.
func (c *conn[C]) getKey(ctx contextT, ex *exchange[C], cc C, target string) (string, error) {
	req := &ex.sess.req
	method, orig := req.Method, req.Target
	defer func() { req.Method, req.Target = method, orig }()
	req.Method, req.Target = "GET", target
	return c.svc.app.CacheKey(ctx, &ex.sess, cc)
}
