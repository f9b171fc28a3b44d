package cache

import (
	"time"

	"github.com/gotthard-proxy/gotthard/message"
)

// AddConditionals turns req, the request about to go upstream, into a validation
// request for the stored responses (RFC 9111 §4.3.1): If-None-Match lists the entity
// tags of those that have an ETag, and If-Modified-Since carries the Last-Modified of
// the stored response when exactly one is being validated. Any If-None-Match or
// If-Modified-Since the client sent is replaced: the cache answers the client's own
// conditionals from the validated response ([EvaluateConditional]). It reports whether
// it added a validator; if not, a validation request cannot succeed and the caller
// should send the request unconditionally.
func AddConditionals(req *message.RequestHeader, stored ...*Meta) bool {
	req.Header.Del("If-None-Match")
	req.Header.Del("If-Modified-Since")
	var tags []byte
	for _, m := range stored {
		if t, ok := ParseETag(m.Response.Header.Get("ETag")); ok {
			if len(tags) > 0 {
				tags = append(tags, ", "...)
			}
			if t.Weak {
				tags = append(tags, "W/"...)
			}
			tags = append(tags, '"')
			tags = append(tags, t.Opaque...)
			tags = append(tags, '"')
		}
	}
	added := false
	if len(tags) > 0 {
		req.Header.Add("If-None-Match", string(tags))
		added = true
	}
	if len(stored) == 1 {
		if lm, ok := stored[0].Response.Header.Lookup("Last-Modified"); ok {
			if _, valid := ParseHTTPDate(lm); valid {
				req.Header.Add("If-Modified-Since", lm)
				added = true
			}
		}
	}
	return added
}

// Select304 returns the index of the stored response a 304 (Not Modified) validates
// (RFC 9111 §4.3.4), or -1 if it validates none and must not update any:
//
//   - if the 304 has a strong ETag, the stored response with the same strong ETag (a
//     304 carrying an ETag no stored response has selects none);
//   - otherwise, if it has a weak ETag or a Last-Modified, the most recent stored
//     response (by ResponseTime) with the same weak ETag (weak comparison), or, when
//     the 304 has no ETag, the same Last-Modified;
//   - otherwise, if there is a single stored response and it has no validator, that
//     one.
//
// Last-Modified counts as a weak validator here; the "strong date" rule of RFC 9110
// §8.8.2.2 is not applied.
func Select304(resp *message.ResponseHeader, stored ...*Meta) int {
	etag, hasETag := ParseETag(resp.Header.Get("ETag"))
	lm, hasLM := resp.Header.Lookup("Last-Modified")
	switch {
	case hasETag && !etag.Weak:
		for i, m := range stored {
			if t, ok := ParseETag(m.Response.Header.Get("ETag")); ok && t.StrongMatch(etag) {
				return i
			}
		}
		return -1
	case hasETag || hasLM:
		best := -1
		for i, m := range stored {
			var match bool
			if hasETag {
				t, ok := ParseETag(m.Response.Header.Get("ETag"))
				match = ok && t.WeakMatch(etag)
			} else {
				match = sameDate(m.Response.Header.Get("Last-Modified"), lm)
			}
			if match && (best < 0 || m.ResponseTime.After(stored[best].ResponseTime)) {
				best = i
			}
		}
		return best
	case len(stored) == 1 && !stored[0].Response.Header.Has("ETag") &&
		!stored[0].Response.Header.Has("Last-Modified"):
		return 0
	}
	return -1
}

// Update304 updates the stored head meta with a 304 (Not Modified) that validated it
// (RFC 9111 §4.3.4, §3.2): every field of the 304 replaces all the stored fields of
// that name, except the fields a cache does not store (hop-by-hop and the ones
// Connection lists), Content-Length (the stored body keeps its length), and the fields
// that describe the stored bytes (Content-Encoding, Content-Range, Transfer-Encoding):
// the body was not sent again, so they still hold. A 304 without Age or Date makes
// the stored Age go and the Date become responseTime (RFC 9110 §6.6.1), so the age
// starts again from this exchange, whose times replace meta's. The fields a qualified
// no-cache or private of the updated Cache-Control names are then removed.
func Update304(meta *Meta, resp *message.ResponseHeader, requestTime, responseTime time.Time) {
	updateHead(meta, resp, requestTime, responseTime)
}

// HEADResult is the answer of [FreshenFromHEAD].
type HEADResult uint8

// The answers of [FreshenFromHEAD].
const (
	// HEADUpdated: the stored head was updated as from a 304.
	HEADUpdated HEADResult = iota + 1
	// HEADStale: the HEAD response does not describe the stored response (a validator
	// or Content-Length differs): the caller should treat the stored response as stale,
	// for example by purging it (RFC 9111 §4.3.5).
	HEADStale
	// HEADIgnored: the HEAD response is not a 200 and says nothing of the stored one.
	HEADIgnored
)

// FreshenFromHEAD applies RFC 9111 §4.3.5: a 200 response to a HEAD request the cache
// made for a stored GET response updates that response's head as a 304 would
// ([Update304]) when their ETag and Last-Modified agree (each compared only when the
// HEAD response has it; ETags weakly) and, if the HEAD response has Content-Length, it
// equals the stored body's size. Otherwise the stored response is to be considered
// stale.
func FreshenFromHEAD(meta *Meta, resp *message.ResponseHeader, requestTime, responseTime time.Time) HEADResult {
	if resp.Status != 200 {
		return HEADIgnored
	}
	if v, ok := resp.Header.Lookup("ETag"); ok {
		t, ok1 := ParseETag(v)
		s, ok2 := ParseETag(meta.Response.Header.Get("ETag"))
		if !ok1 || !ok2 || !t.WeakMatch(s) {
			return HEADStale
		}
	}
	if v, ok := resp.Header.Lookup("Last-Modified"); ok && !sameDate(meta.Response.Header.Get("Last-Modified"), v) {
		return HEADStale
	}
	if v, ok := resp.Header.Lookup("Content-Length"); ok {
		n, valid := parsePos(trimOWS(v))
		if !valid || meta.Size < 0 || n != meta.Size {
			return HEADStale
		}
	}
	updateHead(meta, resp, requestTime, responseTime)
	return HEADUpdated
}

// notUpdated reports whether a field of a validating response must not replace the
// stored one (§3.2).
func notUpdated(name string) bool {
	return hopByHop(name) || message.EqualFold(name, "Content-Length") ||
		message.EqualFold(name, "Content-Encoding") || message.EqualFold(name, "Content-Range") ||
		message.EqualFold(name, "Content-MD5") || message.EqualFold(name, "ETag")
}

func updateHead(meta *Meta, resp *message.ResponseHeader, requestTime, responseTime time.Time) {
	defer meta.memo.Store(nil) // (the head changes: what was derived from it goes)
	conn := ""
	for _, f := range resp.Header.Fields() {
		if message.EqualFold(f.Name, "Connection") {
			conn = joinFields(conn, f.Value)
		}
	}
	h := &meta.Response.Header
	upd := func(name string) bool { return !notUpdated(name) && !(conn != "" && listHas(conn, name)) }
	// Remove every stored field the response replaces, then append the response's.
	h.DelFunc(func(name, _ string) bool {
		for _, f := range resp.Header.Fields() {
			if message.EqualFold(f.Name, name) && upd(f.Name) {
				return true
			}
		}
		return false
	})
	for _, f := range resp.Header.Fields() {
		if upd(f.Name) {
			h.Add(f.Name, f.Value)
		}
	}
	if !resp.Header.Has("Age") {
		h.Del("Age")
	}
	if !resp.Header.Has("Date") {
		h.Set("Date", formatHTTPDate(responseTime))
	}
	cc := ParseCacheControl(h)
	stripUnstorable(h, &cc)
	meta.RequestTime, meta.ResponseTime = requestTime, responseTime
}

// sameDate reports whether two HTTP-dates name the same instant; both must be valid.
func sameDate(a, b string) bool {
	ta, ok1 := ParseHTTPDate(a)
	tb, ok2 := ParseHTTPDate(b)
	return ok1 && ok2 && ta.Equal(tb)
}

// lastModified is the stored response's modification time for a client's
// If-Modified-Since or If-Unmodified-Since (RFC 9111 §4.3.2): Last-Modified, else
// Date, else the time it was received.
func lastModified(meta *Meta) time.Time {
	if t, ok := ParseHTTPDate(meta.Response.Header.Get("Last-Modified")); ok {
		return t
	}
	return dateOr(&meta.Response.Header, meta.ResponseTime)
}

// isSafe reports whether a method is safe (RFC 9110 §9.2.1); methods are
// case-sensitive, and one it does not know counts as unsafe.
func isSafe(method string) bool {
	switch method {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	return false
}
