package cache

import (
	"time"

	"github.com/gotthard-proxy/gotthard/message"
)

// Action is what a cache does with a stored response for a request: the verdict of
// [Policy.Decide].
type Action uint8

// The actions of [Policy.Decide].
const (
	// ActionFresh: serve the stored response; it is fresh enough for the request.
	ActionFresh Action = iota + 1
	// ActionStale: serve the stored response although it is stale, as the request's
	// max-stale or the response's stale-while-revalidate allows (RFC 9111 §4.2.4).
	ActionStale
	// ActionValidate: send a conditional request upstream ([AddConditionals]) and serve
	// the stored response only if a 304 validates it (RFC 9111 §4.3).
	ActionValidate
	// ActionForward: the stored response cannot answer this request at all (its method
	// is not GET or HEAD); forward the request as a miss.
	ActionForward
	// ActionGatewayTimeout: the request has only-if-cached and the stored response
	// cannot answer it without going upstream; answer 504 (RFC 9111 §5.2.1.7).
	ActionGatewayTimeout
)

// String returns "fresh", "stale", "validate", "forward" or "gateway-timeout".
func (a Action) String() string {
	switch a {
	case ActionFresh:
		return "fresh"
	case ActionStale:
		return "stale"
	case ActionValidate:
		return "validate"
	case ActionForward:
		return "forward"
	case ActionGatewayTimeout:
		return "gateway-timeout"
	}
	return "unknown"
}

// Decision is the verdict of [Policy.Decide] for one request against one stored
// response, with the freshness it was computed from.
type Decision struct {
	// Action is what to do.
	Action Action
	// Freshness is the stored response's lifetime and age at the time of the decision.
	Freshness
	// BackgroundRevalidate is set with ActionStale when only stale-while-revalidate
	// allowed serving: the cache serves the stored response and should validate it in
	// the background (RFC 5861 §3).
	BackgroundRevalidate bool
	// StaleIfError tells the error path: if the upstream exchange this decision leads
	// to fails (no response, or a 500, 502, 503 or 504), the stored response may be
	// served instead (RFC 5861 §4, RFC 9111 §4.2.4), because the response's or the
	// request's stale-if-error, or the request's max-stale, covers its staleness, and
	// nothing forbids serving it stale.
	StaleIfError bool
}

// Decide applies RFC 9111 §4, §4.2.4 and §5.2 for a shared cache: whether the stored
// response meta may answer req at now, and how. The caller has already selected meta
// by the request's cache key and variance ([VarianceKey]).
//
// In order:
//   - a method other than GET and HEAD: [ActionForward];
//   - the response's no-cache (unqualified), the request's no-cache (or Pragma:
//     no-cache), or an age over the request's max-age: [ActionValidate]; a fresh
//     immutable response (RFC 8246) is served despite the request's max-age, as a
//     client reload sends max-age=0, but not despite its no-cache;
//   - fresh, and fresh for at least the request's min-fresh: [ActionFresh];
//   - stale, when nothing forbids serving it stale (must-revalidate, proxy-revalidate,
//     s-maxage, no-cache, or a min-fresh in the request): [ActionStale] within the
//     request's max-stale, or within the response's stale-while-revalidate (with
//     BackgroundRevalidate);
//   - otherwise [ActionValidate];
//   - and with only-if-cached, [ActionValidate] and [ActionForward] become
//     [ActionGatewayTimeout].
//
// Decide allocates nothing.
func (p Policy) Decide(req *message.RequestHeader, meta *Meta, now time.Time) Decision {
	rcc := ParseRequestCacheControl(&req.Header)
	return p.decide(req.Method, &rcc, meta, &meta.derived().cc, now)
}

// DecideParsed is [Policy.Decide] for a caller that has already parsed the request's
// and the stored response's Cache-Control.
func (p Policy) DecideParsed(method string, rcc *CacheControl, meta *Meta, scc *CacheControl, now time.Time) Decision {
	return p.decide(method, rcc, meta, scc, now)
}

func (p Policy) decide(method string, rcc *CacheControl, meta *Meta, scc *CacheControl, now time.Time) Decision {
	d := Decision{Freshness: p.Freshness(meta, scc, now)}
	if method != "GET" && method != "HEAD" {
		d.Action = ActionForward
		return d.onlyIfCached(rcc)
	}
	fresh := d.Fresh()
	staleness := max(0, d.Age-d.Lifetime)

	// §4.2.4: a stale response must not be served when a directive forbids it; for a
	// shared cache s-maxage implies proxy-revalidate (§5.2.2.10).
	noStale := scc.NoCache || scc.MustRevalidate || scc.ProxyRevalidate || scc.SMaxAge.Set
	d.StaleIfError = !noStale && (within(staleness, scc.StaleIfError) ||
		within(staleness, rcc.StaleIfError) || within(staleness, rcc.MaxStale))

	validate := scc.NoCache || rcc.NoCache
	if rcc.MaxAge.Set && d.Age > seconds(rcc.MaxAge.Seconds) && !(fresh && scc.Immutable) {
		validate = true
	}
	if fresh && rcc.MinFresh.Set && d.TTL() < seconds(rcc.MinFresh.Seconds) {
		// Fresh, but not for as long as the client asks: not acceptable, and since the
		// client wants freshness, no stale serving either.
		fresh, noStale = false, true
	}
	switch {
	case validate:
		d.Action = ActionValidate
	case fresh:
		d.Action = ActionFresh
	case noStale:
		d.Action = ActionValidate
	case within(staleness, rcc.MaxStale):
		d.Action = ActionStale
	case within(staleness, scc.StaleWhileRevalidate):
		d.Action = ActionStale
		d.BackgroundRevalidate = true
	default:
		d.Action = ActionValidate
	}
	return d.onlyIfCached(rcc)
}

// onlyIfCached turns any action that would go upstream into a 504 when the request has
// only-if-cached (§5.2.1.7).
func (d Decision) onlyIfCached(rcc *CacheControl) Decision {
	if rcc.OnlyIfCached && (d.Action == ActionValidate || d.Action == ActionForward) {
		d.Action = ActionGatewayTimeout
	}
	return d
}

// within reports whether a directive is present and its argument covers staleness.
func within(staleness time.Duration, d Delta) bool {
	return d.Set && staleness <= seconds(d.Seconds)
}
