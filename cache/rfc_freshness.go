package cache

import (
	"time"

	"github.com/gotthard-proxy/gotthard/message"
)

// heuristicFraction is the share of the time since Last-Modified given as heuristic
// freshness: §4.2.2 suggests "no more than some fraction", typically 10%.
const heuristicFraction = 10

// Freshness is the state of a stored response at one instant (RFC 9111 §4.2).
type Freshness struct {
	// Lifetime is the freshness lifetime (§4.2.1).
	Lifetime time.Duration
	// Age is the current age (§4.2.3).
	Age time.Duration
	// Heuristic reports that Lifetime is a heuristic one (§4.2.2).
	Heuristic bool
}

// Fresh reports whether the response is fresh: its lifetime exceeds its age (§4.2).
func (f Freshness) Fresh() bool { return f.Lifetime > f.Age }

// TTL is the time left until the response goes stale; negative once it is stale. It is
// Cache-Status's ttl (RFC 9211 §2.5).
func (f Freshness) TTL() time.Duration { return f.Lifetime - f.Age }

// Freshness computes meta's freshness at now: the lifetime from cc (the parsed
// Cache-Control of meta.Response, which the caller usually has already) and the age.
func (p Policy) Freshness(meta *Meta, cc *CacheControl, now time.Time) Freshness {
	lifetime, heuristic := p.Lifetime(&meta.Response, cc, meta.ResponseTime)
	return Freshness{Lifetime: lifetime, Age: CurrentAge(meta, now), Heuristic: heuristic}
}

// Lifetime is a response's freshness lifetime for a shared cache (RFC 9111 §4.2.1),
// from the first of:
//
//   - a Surrogate-Control max-age addressed to p.Surrogate (see [Policy.Storable]);
//   - s-maxage;
//   - max-age;
//   - Expires minus Date (Date absent or invalid: responseTime, the time the response
//     was received, RFC 9110 §6.6.1); an invalid Expires, such as "0", or several
//     different Expires lines give 0: already expired (§5.3, §4.2.1);
//   - heuristic freshness (§4.2.2), for a status that is heuristically cacheable
//     (RFC 9110 §15.1) or a response marked public: 10% of Date minus Last-Modified,
//     at most [Policy.HeuristicCap]; heuristic is then true.
//
// A directive with an invalid argument counts as 0 (see [Delta]). Lifetime allocates
// nothing.
func (p Policy) Lifetime(resp *message.ResponseHeader, cc *CacheControl, responseTime time.Time) (lifetime time.Duration, heuristic bool) {
	if sc, ok := p.surrogate(&resp.Header); ok && sc.maxAge.Set {
		return seconds(sc.maxAge.Seconds), false // (0 when invalid)
	}
	switch {
	case cc.SMaxAge.Set:
		return seconds(cc.SMaxAge.Seconds), false
	case cc.MaxAge.Set:
		return seconds(cc.MaxAge.Seconds), false
	}
	if exp, ok := singleField(&resp.Header, "Expires"); ok {
		expires, valid := ParseHTTPDate(exp)
		if !valid {
			return 0, false
		}
		return max(0, expires.Sub(dateOr(&resp.Header, responseTime))), false
	}
	limit := p.heuristicCap()
	if limit < 0 || !(heuristicStatus(resp.Status) || cc.Public) {
		return 0, false
	}
	lm, ok := ParseHTTPDate(resp.Header.Get("Last-Modified"))
	if !ok {
		return 0, false
	}
	since := dateOr(&resp.Header, responseTime).Sub(lm)
	if since <= 0 {
		return 0, false
	}
	return min(since/heuristicFraction, limit), true
}

// CurrentAge is a stored response's current_age at now (RFC 9111 §4.2.3):
//
//	apparent_age          = max(0, response_time - date_value)
//	response_delay        = response_time - request_time
//	corrected_age_value   = age_value + response_delay
//	corrected_initial_age = max(apparent_age, corrected_age_value)
//	resident_time         = now - response_time
//	current_age           = corrected_initial_age + resident_time
//
// with response_time and request_time from meta, age_value the first member of the Age
// field (0 when absent or invalid, §5.1), and date_value the Date field (when absent or
// invalid, response_time: no apparent age). Negative intervals (clock steps, a zero
// RequestTime) count as 0.
func CurrentAge(meta *Meta, now time.Time) time.Duration {
	d := meta.derived()
	ageValue := d.age
	apparent := max(0, meta.ResponseTime.Sub(d.date))
	var delay time.Duration
	if !meta.RequestTime.IsZero() {
		delay = max(0, meta.ResponseTime.Sub(meta.RequestTime))
	}
	corrected := max(apparent, ageValue+delay)
	return corrected + max(0, now.Sub(meta.ResponseTime))
}

// invalidAge is the age an invalid Age field gives: older than any lifetime, so the
// response is stale (the conservative reading, as the suites that test caches expect).
const invalidAge = time.Duration(1<<31) * time.Second

// ageField returns the Age field's value (0 when absent). An Age that is not one field
// line holding one delta-seconds (a list, several lines, a sign, a fraction, a
// parameter) is invalid, and gives invalidAge.
func ageField(h *message.Header) time.Duration {
	var v string
	n := 0
	for _, f := range h.Fields() {
		if message.EqualFold(f.Name, "Age") {
			v = f.Value
			n++
		}
	}
	if n == 0 {
		return 0
	}
	if n > 1 {
		return invalidAge
	}
	secs, ok := parseDeltaSeconds(trimOWS(v))
	if !ok {
		return invalidAge
	}
	return seconds(secs)
}

// seconds converts delta-seconds to a Duration; the values are capped at 2^31, so it
// does not overflow.
func seconds(n int64) time.Duration { return time.Duration(n) * time.Second }

// dateOr returns the Date field's time, or def when it is absent or invalid.
func dateOr(h *message.Header, def time.Time) time.Time {
	if v, ok := h.Lookup("Date"); ok {
		if t, ok := ParseHTTPDate(v); ok {
			return t
		}
	}
	return def
}

// singleField returns the value of a field that must be a singleton. Several lines
// with the same value count as one; several different values read as "" (invalid).
func singleField(h *message.Header, name string) (string, bool) {
	v, found := "", false
	for _, f := range h.Fields() {
		if !message.EqualFold(f.Name, name) {
			continue
		}
		if found && f.Value != v {
			return "", true
		}
		v, found = f.Value, true
	}
	return v, found
}

// heuristicStatus reports whether a status code is heuristically cacheable
// (RFC 9110 §15.1).
func heuristicStatus(code int) bool {
	switch code {
	case 200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501:
		return true
	}
	return false
}

// understoodStatus reports whether the cache knows the caching requirements of a
// status code, as a must-understand response requires (RFC 9111 §5.2.2.3): the
// heuristically cacheable codes this cache stores, the redirects, and 451.
func understoodStatus(code int) bool {
	switch code {
	case 200, 203, 204, 300, 301, 302, 303, 307, 308, 404, 405, 410, 414, 451, 501:
		return true
	}
	return false
}
