package proxy

import (
	"context"
	"errors"
	"runtime/debug"

	"github.com/gotthard-proxy/gotthard/message"
)

// Module is a piece of request handling that runs around a service's phases: response
// compression, rate limits, token checks. Modules are registered in
// [ServiceOptions.Modules] and run in the order of that slice, on every request of the
// service:
//
//   - on the request side after EarlyRequestFilter and before the user's RequestFilter
//     (head), and before the user's RequestBodyFilter (body);
//   - on the response side after the user's ResponseFilter (head), ResponseBodyFilter
//     (body) and ResponseTrailerFilter (trailers), for responses from a peer or from the
//     cache, as the user's response phases are. A response a phase or module writes
//     itself (Respond, WriteResponse, an error page) does not go through them.
//
// A Module is shared by every connection of the service, so it must be safe for
// concurrent use; what it keeps per request belongs in the [ModuleRequest] it returns
// from NewRequest. A service without modules pays nothing for them.
type Module interface {
	// Name names the module in logs and errors. It should be short and constant.
	Name() string
	// NewRequest returns the module's state for one request, or nil when the module has
	// nothing to do for it (it then costs nothing more on that request). It runs once per
	// request, after EarlyRequestFilter, on the request's goroutine.
	NewRequest(s *Session) ModuleRequest
}

// ModuleRequest is a module's state and filters for one request. Its methods run one at
// a time on the request's goroutine, never concurrently, as the user's phases do; Done
// runs last, once, however the request ended. Embed [ModuleFilters] for no-op defaults.
//
// A filter that returns an error ends the request as a phase's error does (see
// [ProxyHTTP]). A request filter may also answer the client itself (with
// [Session.Respond] or [Session.WriteResponse]) and return [Handled]: the later modules'
// and the user's request filters are then skipped, and the request goes to Logging.
type ModuleRequest interface {
	// RequestFilter sees the request head. Not run again on retries.
	RequestFilter(ctx context.Context, s *Session) (Result, error)
	// RequestBodyFilter sees each piece of the request body as it goes to the peer, and
	// returns what goes on (it may be chunk itself, changed in place, or another slice).
	// end is true for the last call, whose chunk may be empty.
	RequestBodyFilter(ctx context.Context, s *Session, chunk []byte, end bool) ([]byte, error)
	// ResponseFilter sees the response head before it is sent. Changing the body's
	// length means deleting Content-Length here; the framework then frames the body
	// itself (chunked for HTTP/1.1, or closing the connection for HTTP/1.0).
	ResponseFilter(ctx context.Context, s *Session, resp *message.ResponseHeader) error
	// ResponseBodyFilter sees each piece of the response body as it arrived from the
	// source (one call per read from the peer or the cache, so a module that holds bytes
	// back holds back a stream), and returns what goes to the client. end is true for the
	// last call, whose chunk may be empty: a module that buffers must return the rest then.
	ResponseBodyFilter(ctx context.Context, s *Session, chunk []byte, end bool) ([]byte, error)
	// ResponseTrailerFilter sees the response's trailers, when it has some.
	ResponseTrailerFilter(ctx context.Context, s *Session, trailers *message.Header) error
	// Done ends the request for the module: it may give back pooled state. It runs after
	// the response (or the failure) and before Logging, whatever happened.
	Done(s *Session)
}

// ModuleFilters implements every [ModuleRequest] method as a no-op that lets the request
// through unchanged. Embed it and write only the filters a module needs.
type ModuleFilters struct{}

// RequestFilter returns [Continue].
func (ModuleFilters) RequestFilter(context.Context, *Session) (Result, error) {
	return Continue, nil
}

// RequestBodyFilter returns chunk.
func (ModuleFilters) RequestBodyFilter(_ context.Context, _ *Session, chunk []byte, _ bool) ([]byte, error) {
	return chunk, nil
}

// ResponseFilter does nothing.
func (ModuleFilters) ResponseFilter(context.Context, *Session, *message.ResponseHeader) error {
	return nil
}

// ResponseBodyFilter returns chunk.
func (ModuleFilters) ResponseBodyFilter(_ context.Context, _ *Session, chunk []byte, _ bool) ([]byte, error) {
	return chunk, nil
}

// ResponseTrailerFilter does nothing.
func (ModuleFilters) ResponseTrailerFilter(context.Context, *Session, *message.Header) error {
	return nil
}

// Done does nothing.
func (ModuleFilters) Done(*Session) {}

// modRequest is one module's state for a request, with the module it came from.
type modRequest struct {
	m Module
	r ModuleRequest
}

// moduleRequestFilters makes the modules' states for the request and runs their request
// filters, in order. done reports that one answered the client itself.
func (c *conn[C]) moduleRequestFilters(ctx contextT, ex *exchange[C]) (done bool, _ error) {
	sess := &ex.sess
	for _, m := range c.svc.opts.Modules {
		if r := m.NewRequest(sess); r != nil {
			ex.mods = append(ex.mods, modRequest{m, r})
		}
	}
	for _, m := range ex.mods {
		res, err := m.r.RequestFilter(ctx, sess)
		if err != nil {
			return true, err
		}
		if res == Handled {
			if !sess.respStarted {
				return true, &Error{Type: InternalError, Source: Internal,
					Cause: errors.New("proxy: module " + m.m.Name() + ": RequestFilter returned Handled without a response")}
			}
			return true, nil
		}
	}
	return false, nil
}

// requestBodyFilters passes a piece of the request body through the modules' request
// body filters, then the user's RequestBodyFilter.
func (c *conn[C]) requestBodyFilters(ctx contextT, ex *exchange[C], cc C, chunk []byte, end bool) ([]byte, error) {
	if len(ex.mods) > 0 {
		var err error
		if chunk, err = throughModules(ctx, ex, ModuleRequest.RequestBodyFilter, chunk, end); err != nil {
			return nil, err
		}
	}
	return c.svc.app.RequestBodyFilter(ctx, &ex.sess, cc, chunk, end)
}

// throughModules passes a piece of a body through filter f of each module, in order. A
// module that holds everything back (returns nothing before the end) leaves the later
// ones nothing to see until it gives bytes.
func throughModules[C any](ctx contextT, ex *exchange[C],
	f func(ModuleRequest, context.Context, *Session, []byte, bool) ([]byte, error), chunk []byte, end bool) ([]byte, error) {
	var err error
	for _, m := range ex.mods {
		if len(chunk) == 0 && !end {
			break
		}
		if chunk, err = f(m.r, ctx, &ex.sess, chunk, end); err != nil {
			return nil, err
		}
	}
	return chunk, nil
}

// modulesDone runs each module's Done for the request, each guarded against a panic,
// which is logged.
func (c *conn[C]) modulesDone(ex *exchange[C]) {
	for _, m := range ex.mods {
		c.moduleDone(ex, m)
	}
}

func (c *conn[C]) moduleDone(ex *exchange[C], m modRequest) {
	defer func() {
		if p := recover(); p != nil {
			c.svc.log.Error("panic in a module's Done", "module", m.m.Name(), "err", p,
				"stack", string(debug.Stack()))
		}
	}()
	m.r.Done(&ex.sess)
}
