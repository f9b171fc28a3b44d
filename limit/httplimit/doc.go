// Package httplimit answers the requests a [limit.Limiter] refuses with 429 Too Many
// Requests and a Retry-After field, from a proxy's RequestFilter or as a
// [proxy.Module]. The limiter can be local (package limit) or fleet-wide (limit/redis);
// the key is the client's IP address unless the user gives a key function.
//
// From a RequestFilter (an in-flight limit's release goes in Logging):
//
//	func (g *Gateway) RequestFilter(ctx context.Context, s *proxy.Session, c *Ctx) (proxy.Result, error) {
//		res, release, err := g.limits.Check(ctx, s)
//		c.release = release
//		return res, err
//	}
//
// As a module, which releases by itself:
//
//	f, err := httplimit.New(httplimit.Options{Limiter: tb})
//	svc, err := proxy.NewService("gw", app, proxy.ServiceOptions{Modules: []proxy.Module{f}})
//
// With a local limiter of package limit (a [limit.Checker]), a request the module
// allows costs no allocation: its state comes from a pool of the Filter's, and the
// client's address is written as the key in a buffer of that state.
//
// See docs/modules-limits.md.
package httplimit
