package cache

import (
	"strings"

	"github.com/gotthard-proxy/gotthard/message"
)

// maxDelta is the largest delta-seconds value the cache represents: RFC 9111 §1.2.2 has a
// cache treat any greater value, and any overflow, as 2^31.
const maxDelta = 1 << 31

// Delta is the argument of a Cache-Control directive that takes delta-seconds
// (RFC 9111 §1.2.2). Its zero value means the directive is absent.
type Delta struct {
	// Set reports whether the directive is present.
	Set bool
	// Invalid reports that the directive was present with a missing or malformed
	// argument, or more than once with different arguments (RFC 9111 §4.2.1). Seconds is
	// then 0, the most restrictive reading: a max-age or s-maxage makes the response
	// stale, a max-stale, stale-while-revalidate or stale-if-error allows no staleness.
	Invalid bool
	// Seconds is the argument, capped at 2^31. A max-stale without an argument (any
	// staleness) has Seconds 2^31.
	Seconds int64
}

// CacheControl is a parsed Cache-Control field (RFC 9111 §5.2): the request directives
// (§5.2.1), the response directives (§5.2.2) and those of RFC 5861
// (stale-while-revalidate, stale-if-error) and RFC 8246 (immutable). Every field line
// named Cache-Control counts, in order, as one comma-separated list. Directive names are
// compared case-insensitively; unknown directives (extensions) are ignored; arguments
// are accepted in token and quoted-string form alike, as §5.2 asks of recipients.
//
// Parsing allocates nothing: the field-name lists of a qualified no-cache or private
// are substrings of the field value (unless the quoted-string uses backslash escapes).
// The zero value is an empty Cache-Control.
type CacheControl struct {
	// NoStore: no-store (§5.2.1.5, §5.2.2.5).
	NoStore bool
	// NoCache: no-cache without field names (§5.2.1.4, §5.2.2.4). In a request, also
	// set by Pragma: no-cache when there is no Cache-Control field (§5.4).
	NoCache bool
	// NoCacheFields is the field-name list of a qualified no-cache (§5.2.2.4), as sent
	// ("Set-Cookie, Set-Cookie2"): those fields are not stored. Several qualified
	// no-cache directives are joined with commas.
	NoCacheFields string
	// Private: private without field names (§5.2.2.7); a shared cache stores nothing.
	Private bool
	// PrivateFields is the field-name list of a qualified private (§5.2.2.7): a shared
	// cache does not store those fields.
	PrivateFields string
	// Public: public (§5.2.2.9).
	Public bool
	// MustRevalidate: must-revalidate (§5.2.2.2).
	MustRevalidate bool
	// ProxyRevalidate: proxy-revalidate (§5.2.2.8).
	ProxyRevalidate bool
	// MustUnderstand: must-understand (§5.2.2.3).
	MustUnderstand bool
	// NoTransform: no-transform (§5.2.1.6, §5.2.2.6).
	NoTransform bool
	// Immutable: immutable (RFC 8246).
	Immutable bool
	// OnlyIfCached: only-if-cached (§5.2.1.7).
	OnlyIfCached bool

	// MaxAge: max-age (§5.2.1.1, §5.2.2.1).
	MaxAge Delta
	// SMaxAge: s-maxage (§5.2.2.10).
	SMaxAge Delta
	// MaxStale: max-stale, with or without an argument (§5.2.1.2).
	MaxStale Delta
	// MinFresh: min-fresh (§5.2.1.3).
	MinFresh Delta
	// StaleWhileRevalidate: stale-while-revalidate (RFC 5861 §3).
	StaleWhileRevalidate Delta
	// StaleIfError: stale-if-error (RFC 5861 §4).
	StaleIfError Delta
}

// ParseCacheControl parses the Cache-Control field lines of h. Use it for responses; for
// requests use [ParseRequestCacheControl], which also honours Pragma.
func ParseCacheControl(h *message.Header) CacheControl {
	var cc CacheControl
	for _, f := range h.Fields() {
		if message.EqualFold(f.Name, "Cache-Control") {
			cc.parse(f.Value)
		}
	}
	return cc
}

// ParseRequestCacheControl parses a request's Cache-Control field lines. A request
// without any Cache-Control field but with Pragma: no-cache is read as
// Cache-Control: no-cache (RFC 9111 §5.4).
func ParseRequestCacheControl(h *message.Header) CacheControl {
	var cc CacheControl
	seen := false
	for _, f := range h.Fields() {
		if message.EqualFold(f.Name, "Cache-Control") {
			seen = true
			cc.parse(f.Value)
		}
	}
	if !seen && h.HasToken("Pragma", "no-cache") {
		cc.NoCache = true
	}
	return cc
}

// parse adds the directives of one field line to cc.
func (cc *CacheControl) parse(v string) {
	for v != "" {
		var name, arg string
		var hasArg, quoted bool
		name, arg, hasArg, quoted, v = nextDirective(v)
		if name == "" {
			continue
		}
		switch {
		case message.EqualFold(name, "max-age"):
			cc.MaxAge.add(arg, hasArg, false)
		case message.EqualFold(name, "s-maxage"):
			cc.SMaxAge.add(arg, hasArg, false)
		case message.EqualFold(name, "no-cache"):
			if hasArg {
				cc.NoCacheFields = joinFields(cc.NoCacheFields, unquote(arg, quoted))
			} else {
				cc.NoCache = true
			}
		case message.EqualFold(name, "no-store"):
			cc.NoStore = true
		case message.EqualFold(name, "private"):
			if hasArg {
				cc.PrivateFields = joinFields(cc.PrivateFields, unquote(arg, quoted))
			} else {
				cc.Private = true
			}
		case message.EqualFold(name, "public"):
			cc.Public = true
		case message.EqualFold(name, "must-revalidate"):
			cc.MustRevalidate = true
		case message.EqualFold(name, "proxy-revalidate"):
			cc.ProxyRevalidate = true
		case message.EqualFold(name, "must-understand"):
			cc.MustUnderstand = true
		case message.EqualFold(name, "no-transform"):
			cc.NoTransform = true
		case message.EqualFold(name, "immutable"):
			cc.Immutable = true
		case message.EqualFold(name, "only-if-cached"):
			cc.OnlyIfCached = true
		case message.EqualFold(name, "max-stale"):
			cc.MaxStale.add(arg, hasArg, true)
		case message.EqualFold(name, "min-fresh"):
			cc.MinFresh.add(arg, hasArg, false)
		case message.EqualFold(name, "stale-while-revalidate"):
			cc.StaleWhileRevalidate.add(arg, hasArg, false)
		case message.EqualFold(name, "stale-if-error"):
			cc.StaleIfError.add(arg, hasArg, false)
		}
	}
}

// add records one occurrence of a delta-seconds directive. optional is true for
// max-stale, whose argument may be absent (meaning any staleness).
func (d *Delta) add(arg string, hasArg, optional bool) {
	var n int64
	ok := true
	switch {
	case !hasArg && optional:
		n = maxDelta
	case !hasArg:
		ok = false
	default:
		n, ok = parseDeltaSeconds(arg)
	}
	switch {
	case !ok:
		d.Set, d.Invalid, d.Seconds = true, true, 0
	case !d.Set:
		d.Set, d.Seconds = true, n
	case d.Invalid:
		// An earlier invalid occurrence keeps the directive invalid.
	case d.Seconds != n:
		// A duplicate with a different argument: §4.2.1 lets a cache use the first or
		// treat the response as stale; the stricter reading is taken.
		d.Invalid, d.Seconds = true, 0
	}
}

// parseDeltaSeconds parses 1*DIGIT, capping at 2^31 (RFC 9111 §1.2.2).
func parseDeltaSeconds(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n < maxDelta {
			n = n*10 + int64(c-'0')
		}
	}
	return min(n, maxDelta), true
}

// nextDirective splits the first directive off a Cache-Control list: its name, its
// argument (unquoted quoted-string content, escapes still in place), whether it had an
// argument and whether that was quoted, and the rest of the list.
func nextDirective(v string) (name, arg string, hasArg, quoted bool, rest string) {
	v = trimOWS(v)
	i := 0
	for i < len(v) && v[i] != ',' && v[i] != '=' {
		i++
	}
	name = trimOWS(v[:i])
	if i == len(v) {
		return name, "", false, false, ""
	}
	if v[i] == ',' {
		return name, "", false, false, v[i+1:]
	}
	// An argument follows '='.
	v = trimLeftOWS(v[i+1:])
	if v != "" && v[0] == '"' {
		j := 1
		for j < len(v) && v[j] != '"' {
			if v[j] == '\\' {
				j++
			}
			j++
		}
		if j >= len(v) {
			// An unterminated quoted-string runs to the end of the line.
			return name, v[1:], true, true, ""
		}
		arg, v = v[1:j], v[j+1:]
		// Anything between the closing quote and the next comma is malformed; skip it.
		if k := strings.IndexByte(v, ','); k >= 0 {
			return name, arg, true, true, v[k+1:]
		}
		return name, arg, true, true, ""
	}
	j := strings.IndexByte(v, ',')
	if j < 0 {
		return name, trimOWS(v), true, false, ""
	}
	return name, trimOWS(v[:j]), true, false, v[j+1:]
}

// unquote removes the backslash escapes of a quoted-string's content. It allocates only
// when there is an escape.
func unquote(s string, quoted bool) string {
	if !quoted || strings.IndexByte(s, '\\') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b = append(b, s[i])
	}
	return string(b)
}

// joinFields appends a field-name list to another.
func joinFields(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	return a + ", " + b
}

// listHas reports whether the comma-separated list holds name, ignoring case and
// whitespace.
func listHas(list, name string) bool {
	for list != "" {
		var elem string
		elem, list, _ = strings.Cut(list, ",")
		if message.EqualFold(trimOWS(elem), name) {
			return true
		}
	}
	return false
}

func isOWS(c byte) bool { return c == ' ' || c == '\t' }

func trimLeftOWS(s string) string {
	for s != "" && isOWS(s[0]) {
		s = s[1:]
	}
	return s
}

func trimOWS(s string) string {
	s = trimLeftOWS(s)
	for s != "" && isOWS(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}
