// Package lb balances requests over a set of backends: selection algorithms, active
// health checks, passive outlier detection, service discovery, and failover onto
// backends a request has not tried, within a retry budget.
//
// lb does not import the proxy: a proxy's UpstreamPeer phase asks the balancer for a
// backend, and the failure and Logging phases report how the attempt went.
// [Failover] does both, with retries on backends not tried yet within a retry budget;
// the balancer is generic over the value each backend carries (Options.Attach makes
// it), so UpstreamPeer gets a *proxy.Peer with no type assertion:
//
//	type Ctx struct {
//		failover lb.Failover[*proxy.Peer] // the backends tried, the current attempt
//	}
//
//	func (p *MyProxy) UpstreamPeer(ctx context.Context, s *proxy.Session, c *Ctx) (*proxy.Peer, error) {
//		return c.failover.Select(p.lb, s.Request().Path())
//	}
//
// (FailToConnect, ErrorWhileProxy and Logging call the methods of the same names; see
// [Failover].) For a policy of your own, [LoadBalancer.Select] returns a [Pick] that
// [Pick.Done] releases with the attempt's [Outcome].
//
// # The hot path
//
// The backend set is an immutable snapshot swapped with an atomic pointer when
// backends are added or removed; [LoadBalancer.Select] reads it without a lock and
// allocates nothing. Health state, in-flight counts and latency scores are atomics on
// each [Target]. Every selector skips unavailable backends (marked down by a health
// check, ejected by outlier detection, or already tried by this request) with a
// bounded walk; when no available backend is left it falls back to one that is down
// but not yet tried (fail open), since a request sent to a backend marked down may still
// succeed where one refused by the balancer never does.
//
// # Algorithms
//
// [RoundRobin] (nginx's smooth weighted round robin), [Random] (weighted),
// [LeastConn] (fewest in-flight requests per unit of weight), [PeakEWMA] (power of two
// choices on a peak-EWMA latency score), [Ketama] (consistent hashing compatible with
// nginx's "hash $key consistent") and [Maglev] (Google's Maglev hashing, table size
// 65537). docs/load-balancing.md says when to use each.
//
// # Background work
//
// A LoadBalancer is a background service by its method set (Name and Run): add it to a
// server.Server and it runs its discovery and active health checks for the life of
// the server. Without Run, a balancer with static backends still selects and still
// ejects outliers.
//
// # When not to use it
//
// For a single origin, return one peer from UpstreamPeer; a balancer adds nothing.
package lb
