package lb

import "context"

// Discovery finds a balancer's backends. Package lb/discovery has a static list, DNS
// (A/AAAA and SRV) and a file; implement it to take backends from anything else
// (Consul, Kubernetes endpoints, a control plane).
//
// Watch sends the whole current set to update each time it may have changed, the
// first time as soon as it knows one, until ctx ends; then it returns ctx.Err() or nil.
// It returns another error only when it cannot go on at all (the balancer's Run then
// fails); a passing failure (a lookup error, an unreadable file) should be logged and
// retried while the last set stays in use. update must not be called after Watch
// returns; it does not keep the slice.
type Discovery interface {
	Watch(ctx context.Context, update func([]Backend)) error
}
