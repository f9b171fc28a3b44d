package cache

import "time"

// Policy holds the choices RFC 9111 leaves to a cache, for a shared cache. Its methods
// are the rules that depend on them; the zero value is ready to use with the defaults
// each field states. A Policy is a plain value, safe for concurrent use.
type Policy struct {
	// HeuristicCap caps a heuristic freshness lifetime (RFC 9111 §4.2.2), which is 10% of
	// the time between Last-Modified and Date. If zero, 24 hours; if negative, no
	// heuristic freshness is given: a response without explicit freshness is stale at
	// once and served only after validation.
	HeuristicCap time.Duration
	// MaxRanges is the most ranges a Range field may ask for before [Policy.ParseRange]
	// ignores it and the full response is sent (RFC 9110 §14.2, §17.15). If zero, 16;
	// if negative, every Range is ignored.
	MaxRanges int
	// Surrogate is the cache's device token as a surrogate (W3C Edge Architecture
	// 1.0): when set, the Surrogate-Control directives addressed to it (or to no one)
	// decide storage and freshness over Cache-Control. Empty: Surrogate-Control is not
	// read. See [Policy.Storable].
	Surrogate string
}

// heuristicCap returns the cap in force, or a negative duration when heuristics are off.
func (p Policy) heuristicCap() time.Duration {
	if p.HeuristicCap == 0 {
		return 24 * time.Hour
	}
	return p.HeuristicCap
}
