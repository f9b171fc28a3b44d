// Package message holds the HTTP message heads that proxy phases read and change:
// [RequestHeader], [ResponseHeader] and the ordered, case-preserving [Header].
//
// Unlike net/http's http.Header (a map with canonicalised keys), a [Header] keeps every
// field line in wire order with its name spelled as it arrived, so a proxy forwards what it
// received byte for byte unless a phase changes it. Lookups are case-insensitive
// (RFC 9110 §5.1). The types are plain values: cheap to reset and reuse, not safe for
// concurrent use.
//
// Use this package through the proxy's phases; it has no I/O of its own.
//
//	func (p *MyProxy) UpstreamRequestFilter(ctx context.Context, s *proxy.Session, c *Ctx, req *message.RequestHeader) error {
//		req.Header.Set("X-Request-Id", c.id)
//		req.Header.Del("Cookie")
//		return nil
//	}
package message
