package cache

import (
	"time"

	"github.com/gotthard-proxy/gotthard/message"
)

// Storability is the answer of [Storable]: [StoreOK] or the first rule that forbids
// storing the response.
type Storability uint8

// The answers of [Storable].
const (
	// StoreOK: the response may be stored.
	StoreOK Storability = iota
	// NotStorableMethod: the request method is not GET (RFC 9111 §3). HEAD responses
	// are not stored: they freshen a stored GET response instead (§4.3.5), and a stored
	// GET response answers HEAD requests.
	NotStorableMethod
	// NotStorableStatus: the status is not final, is 206 or 304 (this cache does not
	// combine partial responses, §3.3-3.4), or the response has must-understand and the
	// cache does not know the status's caching rules (§5.2.2.3).
	NotStorableStatus
	// NotStorableNoStore: no-store in the request or the response (§5.2.1.5, §5.2.2.5),
	// unless must-understand with an understood status overrides it (§5.2.2.3).
	NotStorableNoStore
	// NotStorablePrivate: private without field names (§5.2.2.7).
	NotStorablePrivate
	// NotStorableAuthorization: the request had Authorization and the response has none
	// of must-revalidate, public and s-maxage (§3.5).
	NotStorableAuthorization
	// NotStorableVaryStar: Vary: * can never be selected for a later request (§4.1), so
	// storing it would only cost space.
	NotStorableVaryStar
	// NotStorableNoFreshness: no public, Expires, max-age or s-maxage, and a status that
	// is not heuristically cacheable (§3, RFC 9110 §15.1).
	NotStorableNoFreshness
)

// String returns a short token for logs and Cache-Status's detail: "ok", "method",
// "status", "no-store", "private", "authorization", "vary-star", "no-freshness".
func (s Storability) String() string {
	switch s {
	case StoreOK:
		return "ok"
	case NotStorableMethod:
		return "method"
	case NotStorableStatus:
		return "status"
	case NotStorableNoStore:
		return "no-store"
	case NotStorablePrivate:
		return "private"
	case NotStorableAuthorization:
		return "authorization"
	case NotStorableVaryStar:
		return "vary-star"
	case NotStorableNoFreshness:
		return "no-freshness"
	}
	return "unknown"
}

// Storable applies RFC 9111 §3 for a shared cache to a request and the final response
// received for it, and returns [StoreOK] or why the response must not be stored.
// Authorization is judged by its presence in req: the proxy calls this with the
// request as it was sent upstream.
func Storable(req *message.RequestHeader, resp *message.ResponseHeader) Storability {
	if req.Method != "GET" {
		return NotStorableMethod
	}
	if resp.Status < 200 || resp.Status > 999 || resp.Status == 206 || resp.Status == 304 {
		return NotStorableStatus
	}
	if ParseRequestCacheControl(&req.Header).NoStore {
		return NotStorableNoStore
	}
	cc := ParseCacheControl(&resp.Header)
	if cc.MustUnderstand {
		if !understoodStatus(resp.Status) {
			return NotStorableStatus
		}
	} else if cc.NoStore {
		return NotStorableNoStore
	}
	if cc.Private {
		return NotStorablePrivate
	}
	if req.Header.Has("Authorization") && !cc.MustRevalidate && !cc.Public && !cc.SMaxAge.Set {
		return NotStorableAuthorization
	}
	if varyStar(&resp.Header) {
		return NotStorableVaryStar
	}
	if !cc.Public && !cc.MaxAge.Set && !cc.SMaxAge.Set && !resp.Header.Has("Expires") &&
		!heuristicStatus(resp.Status) {
		return NotStorableNoFreshness
	}
	return StoreOK
}

// NewMeta returns the [Meta] to store for a response that [Storable] accepted: a copy of
// resp without the fields a cache must not store (RFC 9111 §3.1: Connection and the
// fields it lists, the other hop-by-hop fields, Proxy-Authenticate,
// Proxy-Authentication-Info, and the fields named by a qualified no-cache or private),
// with a Date added when the response had none (RFC 9110 §6.6.1), the two times, and
// Size -1 (unknown until the write commits).
func NewMeta(resp *message.ResponseHeader, requestTime, responseTime time.Time) *Meta {
	m := &Meta{RequestTime: requestTime, ResponseTime: responseTime, Size: -1}
	m.Response.CopyFrom(resp)
	cc := ParseCacheControl(&m.Response.Header)
	stripUnstorable(&m.Response.Header, &cc)
	if !m.Response.Header.Has("Date") {
		m.Response.Header.Add("Date", formatHTTPDate(responseTime))
	}
	return m
}

// hopByHop reports whether a field is one a proxy never forwards nor stores
// (RFC 9110 §7.6.1, RFC 9111 §3.1): the hop-by-hop fields and the proxy-specific
// authentication fields.
func hopByHop(name string) bool {
	switch len(name) {
	case 2:
		return message.EqualFold(name, "TE")
	case 7:
		return message.EqualFold(name, "Upgrade")
	case 10:
		return message.EqualFold(name, "Connection") || message.EqualFold(name, "Keep-Alive")
	case 16:
		return message.EqualFold(name, "Proxy-Connection")
	case 17:
		return message.EqualFold(name, "Transfer-Encoding")
	case 18:
		return message.EqualFold(name, "Proxy-Authenticate")
	case 19:
		return message.EqualFold(name, "Proxy-Authorization")
	case 25:
		return message.EqualFold(name, "Proxy-Authentication-Info")
	}
	return false
}

// stripUnstorable removes from h the fields a shared cache must not store or send
// from storage: hop-by-hop fields, those Connection lists, and those a qualified
// no-cache or private in cc names. It allocates nothing unless there are several
// Connection lines.
func stripUnstorable(h *message.Header, cc *CacheControl) {
	if !needsStrip(h, cc) {
		return
	}
	conn := connectionList(h)
	noCache, private := cc.NoCacheFields, cc.PrivateFields
	h.DelFunc(func(name, _ string) bool {
		return hopByHop(name) || (conn != "" && listHas(conn, name)) ||
			(noCache != "" && listHas(noCache, name)) || (private != "" && listHas(private, name))
	})
}

// connectionList returns the members of h's Connection fields, joined.
func connectionList(h *message.Header) string {
	conn := ""
	for _, f := range h.Fields() {
		if message.EqualFold(f.Name, "Connection") {
			conn = joinFields(conn, f.Value)
		}
	}
	return conn
}

// needsStrip reports whether stripUnstorable would remove a field of h (whose parsed
// Cache-Control is cc).
func needsStrip(h *message.Header, cc *CacheControl) bool {
	conn := connectionList(h)
	noCache, private := cc.NoCacheFields, cc.PrivateFields
	for _, f := range h.Fields() {
		if hopByHop(f.Name) || (conn != "" && listHas(conn, f.Name)) ||
			(noCache != "" && listHas(noCache, f.Name)) || (private != "" && listHas(private, f.Name)) {
			return true
		}
	}
	return false
}

// varyStar reports whether a Vary field holds "*".
func varyStar(h *message.Header) bool { return h.HasToken("Vary", "*") }
