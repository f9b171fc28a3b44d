package proxy

import (
	"context"

	"github.com/gotthard-proxy/gotthard/cache"
	"github.com/gotthard-proxy/gotthard/message"
)

// Result tells the framework whether a phase answered the client itself.
type Result uint8

const (
	// Continue lets the request go on to the next phase.
	Continue Result = iota
	// Handled means the phase wrote a whole response (with [Session.Respond] or
	// [Session.WriteResponse]); the framework stops proxying and goes to Logging.
	Handled
)

// String returns "Continue" or "Handled".
func (r Result) String() string {
	if r == Handled {
		return "Handled"
	}
	return "Continue"
}

// ProxyHTTP is the callback interface a user implements to make a proxy. C is the type of
// the per-request context that [ProxyHTTP.NewCtx] makes and every phase receives.
//
// Only NewCtx and UpstreamPeer must be written; every other phase has a default in
// [Phases], which the implementing type must embed. The phases run in the order of the
// chart in the package documentation. A ProxyHTTP is shared by every connection of a
// service, so its methods must be safe for concurrent use; per-request state belongs in C.
//
// Every phase receives the connection's context (canceled when the service is closed),
// the request's [Session] and the per-request context c. A phase that returns an error
// ends the request: the framework maps it to a status with [ErrorStatus] (500 for errors
// that are not [*Error]) and answers the client, unless a response was already sent.
// A panic in a phase ends that request only: it is recovered, logged with its stack and
// answered with 500 when nothing was sent yet.
type ProxyHTTP[C any] interface {
	// NewCtx returns the per-request context for a new request. It runs first, once per
	// request (not again on retries).
	NewCtx() C

	// UpstreamPeer returns the peer to send the request to. It runs after the request
	// filters and again for each retry. The returned Peer may be shared between requests
	// (see [Peer]). Returning an error ends the request (FailToProxy runs). A Peer that
	// fails [Peer.Validate] ends it at once with 500, without a retry.
	UpstreamPeer(ctx context.Context, s *Session, c C) (*Peer, error)

	// EarlyRequestFilter runs right after the request head was read and checked, before
	// any other phase. It may change the request. Default: nothing. Not run on retries.
	EarlyRequestFilter(ctx context.Context, s *Session, c C) error

	// RequestFilter runs after EarlyRequestFilter. It may change the request, or answer the
	// client itself (write a response, return [Handled]): authentication, rate limiting,
	// redirects. Default: [Continue]. Not run on retries.
	RequestFilter(ctx context.Context, s *Session, c C) (Result, error)

	// RequestBodyFilter sees each piece of the request body on its way upstream, and a last
	// call with end set (chunk may be empty then). It returns the bytes to send instead of
	// chunk; chunk aliases a buffer that is reused after the call returns, and so may the
	// returned slice. If it changes the body's length, the UpstreamRequestFilter must remove
	// Content-Length so the body is sent chunked. Default: chunk unchanged. It does not
	// run for a body buffered with [Session.BufferRequestBody] (the phase that buffered it
	// has it whole), nor when a retry resends such a body. Like every phase it runs on the
	// request's goroutine, never at the same time as another phase of the request; with
	// an HTTP/2 peer that answers before the body's end, the calls for the rest of the
	// body come between the response's phases, and stop once the peer takes no more.
	RequestBodyFilter(ctx context.Context, s *Session, c C, chunk []byte, end bool) ([]byte, error)

	// RequestCacheFilter decides whether the cache takes part in the request: it returns
	// the cache to use, or nil. It runs after RequestFilter, once per request. Default:
	// nil, no cache.
	RequestCacheFilter(ctx context.Context, s *Session, c C) (*cache.Cache, error)

	// CacheKey returns the request's primary cache key. It runs when RequestCacheFilter
	// returned a cache; again for a purge request, and after a successful unsafe request
	// (POST, PUT, DELETE...) once for each URI it invalidates (RFC 9111 §4.4), each time
	// with the request read as a GET of that URI, to name the key to purge. Default:
	// [cache.DefaultKey] of the method, scheme, Host and target.
	CacheKey(ctx context.Context, s *Session, c C) (string, error)

	// IsPurge reports whether the request asks to purge its target from the cache (a
	// PURGE method, for example; check who asks): the key CacheKey gives a GET of it is
	// purged. A purge request is answered by the cache: 200 if something was stored, 404
	// if not, after PurgeResponseFilter. Default: false.
	IsPurge(ctx context.Context, s *Session, c C) bool

	// PurgeResponseFilter may change the answer to a purge request (found tells
	// whether something was stored); it may also answer itself ([Session.Respond]).
	// Default: nothing.
	PurgeResponseFilter(ctx context.Context, s *Session, c C, found bool, resp *message.ResponseHeader) error

	// CacheVaryFilter returns the variance key of the request for a stored response
	// (or one about to be stored) whose head is stored: requests with equal keys share
	// the stored response. ok false means no request can share it. It runs only for
	// responses with a Vary field. Default: [cache.VarianceKey], RFC 9111 §4.1.
	CacheVaryFilter(ctx context.Context, s *Session, c C, stored *message.ResponseHeader) (variance string, ok bool)

	// CacheHitFilter runs when a stored response was found for the request, with the
	// cache's judgement of it (fresh: it may answer as it is). It may force an expiry
	// (HitExpire: the response is validated with the peer) or a miss (HitMiss).
	// Default: HitServe.
	CacheHitFilter(ctx context.Context, s *Session, c C, meta *cache.Meta, fresh bool) (HitAction, error)

	// ResponseCacheFilter decides whether the peer's response is stored, after
	// UpstreamResponseFilter; the head as it leaves is what is stored and served to
	// later requests (set Cache-Control: s-maxage=N here to choose the freshness).
	// Default: RFC 9111 §3 for a shared cache ([cache.Storable]).
	ResponseCacheFilter(ctx context.Context, s *Session, c C, resp *message.ResponseHeader) (CacheDecision, error)

	// ShouldServeStale reports whether the stale stored response meta answers the
	// request when its validation or refetch failed with err (the peer unreachable, or
	// a 500, 502, 503 or 504 in err's Status); allowed tells what the response's and
	// the request's stale-if-error allow (RFC 5861 §4). Default: allowed.
	ShouldServeStale(ctx context.Context, s *Session, c C, meta *cache.Meta, err *Error, allowed bool) bool

	// ProxyUpstreamFilter runs before UpstreamPeer and decides whether to proxy at all.
	// Returning [Handled] stops the request: the phase should have written a response;
	// if it did not, the client gets 502. Default: [Continue]. Not run on retries.
	ProxyUpstreamFilter(ctx context.Context, s *Session, c C) (Result, error)

	// ConnectedToUpstream runs once a connection to the peer is ready for this attempt,
	// new (reused false) or taken from the pool. Default: nothing. Runs on each retry.
	ConnectedToUpstream(ctx context.Context, s *Session, c C, peer *Peer, reused bool) error

	// UpstreamRequestFilter may change the request head about to be sent upstream (a copy
	// of [Session.Request] after the framework's own changes: hop-by-hop fields removed,
	// X-Forwarded-* set, Host added if the client sent none). The framing fields
	// (Content-Length, Transfer-Encoding) are written by the framework from the body it
	// sends; a Connection field the phase sets is sent as it is. Default: nothing. Runs on
	// each retry, on a fresh copy.
	UpstreamRequestFilter(ctx context.Context, s *Session, c C, req *message.RequestHeader) error

	// UpstreamResponseFilter may change the response head as it arrives from upstream,
	// after hop-by-hop fields were removed. Default: nothing. Not run on cache hits.
	UpstreamResponseFilter(ctx context.Context, s *Session, c C, resp *message.ResponseHeader) error

	// UpstreamResponseBodyFilter sees each piece of the response body as it arrives from
	// upstream, as RequestBodyFilter does for the request. Default: chunk unchanged.
	UpstreamResponseBodyFilter(ctx context.Context, s *Session, c C, chunk []byte, end bool) ([]byte, error)

	// ResponseFilter may change the response head just before it goes to the client
	// (after UpstreamResponseFilter; also for cache hits). Removing Content-Length makes
	// the framework send the body chunked (HTTP/1.1) or close-delimited (HTTP/1.0). It may
	// also answer the client itself with [Session.Respond] instead, which drops the
	// peer's response. Default: nothing.
	ResponseFilter(ctx context.Context, s *Session, c C, resp *message.ResponseHeader) error

	// ResponseBodyFilter sees each piece of the response body just before it goes to the
	// client. Default: chunk unchanged. An error from it (or from
	// UpstreamResponseBodyFilter) comes after the response head was handed to the
	// client's connection: the response is cut short (the HTTP/1.x connection closes, the
	// HTTP/2 stream is reset) rather than replaced by an error page, as in Pingora: its
	// status is on its way. To refuse a response for what its head says, use
	// ResponseFilter.
	ResponseBodyFilter(ctx context.Context, s *Session, c C, chunk []byte, end bool) ([]byte, error)

	// ResponseTrailerFilter may change the response trailers before they go to the client.
	// It runs only for responses that carry trailers. Default: nothing.
	ResponseTrailerFilter(ctx context.Context, s *Session, c C, trailers *message.Header) error

	// Logging runs once at the end of every request, whatever happened; err is the error
	// that ended it, or nil. It is the place for access logs and metrics. s.Status and
	// s.BytesSent say what the client got (0 when no response reached it), s.GRPCStatus
	// the grpc-status of a gRPC call. A request cut short by the service's closing ends
	// with an error that wraps [ErrShutdown]. Default: nothing.
	Logging(ctx context.Context, s *Session, c C, err error)

	// FailToConnect runs when connecting to peer failed. It returns the error to go on
	// with; setting its Retry field asks for another attempt (UpstreamPeer runs again),
	// within the service's retry limit. Connection errors come with Retry set, since
	// nothing was sent; a retry to the same peer waits first (10ms, doubling, see
	// ServiceOptions.MaxRetries). It does not run when the service's closing cut the
	// attempt ([ErrShutdown]). Default: err unchanged.
	FailToConnect(ctx context.Context, s *Session, c C, peer *Peer, err *Error) *Error

	// ErrorWhileProxy runs when an error happened after the connection to peer was made.
	// clientReused tells whether the client connection served earlier requests. Setting
	// Retry asks for another attempt, which the framework honours only when that is safe:
	// no response byte was sent to the client, the request body was not streamed upstream
	// (or was buffered whole), and a request that reached the peer has an idempotent
	// method or an Idempotency-Key field. It does not run when the service's closing cut
	// the attempt ([ErrShutdown]). Default: err unchanged.
	ErrorWhileProxy(ctx context.Context, s *Session, c C, peer *Peer, err *Error, clientReused bool) *Error

	// FailToProxy runs when the request failed and no response was sent to the client yet.
	// It may write its own response; otherwise the framework answers with the returned
	// status and a plain error page (0 means the default: [ErrorStatus] of err). It does
	// not run for a request the service's closing cut ([ErrShutdown]).
	FailToProxy(ctx context.Context, s *Session, c C, err *Error) int

	// SuppressErrorLog reports whether the framework should skip its error log line for
	// err. Default: false.
	SuppressErrorLog(s *Session, c C, err *Error) bool

	phases()
}

// Phases provides the default for every optional phase of [ProxyHTTP]. Embed it in the
// type that implements ProxyHTTP; its zero value is ready to use.
type Phases[C any] struct{}

func (Phases[C]) phases() {}

// EarlyRequestFilter does nothing.
func (Phases[C]) EarlyRequestFilter(context.Context, *Session, C) error { return nil }

// RequestFilter returns [Continue].
func (Phases[C]) RequestFilter(context.Context, *Session, C) (Result, error) { return Continue, nil }

// RequestBodyFilter returns chunk unchanged.
func (Phases[C]) RequestBodyFilter(_ context.Context, _ *Session, _ C, chunk []byte, _ bool) ([]byte, error) {
	return chunk, nil
}

// RequestCacheFilter returns nil: no cache.
func (Phases[C]) RequestCacheFilter(context.Context, *Session, C) (*cache.Cache, error) {
	return nil, nil
}

// CacheKey returns [cache.DefaultKey] of the request's method, scheme, Host and target.
func (Phases[C]) CacheKey(_ context.Context, s *Session, _ C) (string, error) {
	return cache.DefaultKey(s.req.Method, s.scheme(), s.req.Host(), s.req.Target), nil
}

// IsPurge returns false.
func (Phases[C]) IsPurge(context.Context, *Session, C) bool { return false }

// PurgeResponseFilter does nothing.
func (Phases[C]) PurgeResponseFilter(context.Context, *Session, C, bool, *message.ResponseHeader) error {
	return nil
}

// CacheVaryFilter returns [cache.VarianceKey] of the request for stored.
func (Phases[C]) CacheVaryFilter(_ context.Context, s *Session, _ C, stored *message.ResponseHeader) (string, bool) {
	return defaultVariance(&s.req, stored)
}

// CacheHitFilter returns HitServe.
func (Phases[C]) CacheHitFilter(context.Context, *Session, C, *cache.Meta, bool) (HitAction, error) {
	return HitServe, nil
}

// ResponseCacheFilter stores what RFC 9111 §3 lets a shared cache store (and
// Surrogate-Control, see [cache.Policy.Storable]).
func (Phases[C]) ResponseCacheFilter(_ context.Context, s *Session, _ C, resp *message.ResponseHeader) (CacheDecision, error) {
	return defaultCacheable(s.cachePolicy(), &s.req, resp), nil
}

// ShouldServeStale returns allowed: what stale-if-error allows.
func (Phases[C]) ShouldServeStale(_ context.Context, _ *Session, _ C, _ *cache.Meta, _ *Error, allowed bool) bool {
	return allowed
}

// ProxyUpstreamFilter returns [Continue].
func (Phases[C]) ProxyUpstreamFilter(context.Context, *Session, C) (Result, error) {
	return Continue, nil
}

// ConnectedToUpstream does nothing.
func (Phases[C]) ConnectedToUpstream(context.Context, *Session, C, *Peer, bool) error { return nil }

// UpstreamRequestFilter does nothing.
func (Phases[C]) UpstreamRequestFilter(context.Context, *Session, C, *message.RequestHeader) error {
	return nil
}

// UpstreamResponseFilter does nothing.
func (Phases[C]) UpstreamResponseFilter(context.Context, *Session, C, *message.ResponseHeader) error {
	return nil
}

// UpstreamResponseBodyFilter returns chunk unchanged.
func (Phases[C]) UpstreamResponseBodyFilter(_ context.Context, _ *Session, _ C, chunk []byte, _ bool) ([]byte, error) {
	return chunk, nil
}

// ResponseFilter does nothing.
func (Phases[C]) ResponseFilter(context.Context, *Session, C, *message.ResponseHeader) error {
	return nil
}

// ResponseBodyFilter returns chunk unchanged.
func (Phases[C]) ResponseBodyFilter(_ context.Context, _ *Session, _ C, chunk []byte, _ bool) ([]byte, error) {
	return chunk, nil
}

// ResponseTrailerFilter does nothing.
func (Phases[C]) ResponseTrailerFilter(context.Context, *Session, C, *message.Header) error {
	return nil
}

// Logging does nothing.
func (Phases[C]) Logging(context.Context, *Session, C, error) {}

// FailToConnect returns err unchanged.
func (Phases[C]) FailToConnect(_ context.Context, _ *Session, _ C, _ *Peer, err *Error) *Error {
	return err
}

// ErrorWhileProxy returns err unchanged.
func (Phases[C]) ErrorWhileProxy(_ context.Context, _ *Session, _ C, _ *Peer, err *Error, _ bool) *Error {
	return err
}

// FailToProxy returns 0: the framework answers with [ErrorStatus] of err.
func (Phases[C]) FailToProxy(context.Context, *Session, C, *Error) int { return 0 }

// SuppressErrorLog returns false.
func (Phases[C]) SuppressErrorLog(*Session, C, *Error) bool { return false }
