package cache

import (
	"github.com/gotthard-proxy/gotthard/message"
)

// maxVaryNames bounds the distinct field names a Vary may list for [VarianceKey] to
// key a request; a response listing more is treated like Vary: * (never matched). Real
// responses list one to three.
const maxVaryNames = 32

// HasVary reports whether resp has a Vary field with at least one member: whether its
// requests must be told apart by [VarianceKey] (RFC 9111 §4.1).
func HasVary(resp *message.ResponseHeader) bool {
	for _, f := range resp.Header.Fields() {
		if message.EqualFold(f.Name, "Vary") && !emptyList(f.Value) {
			return true
		}
	}
	return false
}

// VarianceKey appends to dst the variance key of req for a stored response whose
// header is resp (RFC 9111 §4.1): for each field name resp's Vary lists, the name and
// the request's value for it. Two requests match for that response exactly when their
// keys are equal, so a cache stores the response under its primary key plus the key
// of the request that produced it, and looks a new request up with the key of that
// request for the stored Vary.
//
// The key is normalised so that requests differing only in ways §4.1 allows to be
// ignored match: field names are lowercased, deduplicated and sorted (so "Vary: Accept,
// Accept-Encoding" and "Vary: accept-encoding , accept" give the same key); the values
// of all of a field's lines are combined into one comma-separated list, with the
// whitespace around commas and at the ends removed, runs of whitespace collapsed to
// one space, and empty members dropped (outside quoted strings); a field absent from
// the request differs from one present and empty. Values are otherwise compared
// byte for byte, case included.
//
// VarianceKey reports false, and appends nothing, when Vary holds "*" or more than 32
// names: no request matches. A response without Vary gives an empty key. It allocates
// only if dst must grow.
func VarianceKey(dst []byte, req *message.RequestHeader, resp *message.ResponseHeader) ([]byte, bool) {
	var names [maxVaryNames]string
	n := 0
	for _, f := range resp.Header.Fields() {
		if !message.EqualFold(f.Name, "Vary") {
			continue
		}
		for list := f.Value; list != ""; {
			var name string
			name, list = cutComma(list)
			name = trimOWS(name)
			if name == "" {
				continue
			}
			if name == "*" {
				return dst, false
			}
			dup := false
			for _, have := range names[:n] {
				if message.EqualFold(have, name) {
					dup = true
					break
				}
			}
			if dup {
				continue
			}
			if n == len(names) {
				return dst, false
			}
			names[n] = name
			n++
		}
	}
	sortFold(names[:n])
	for _, name := range names[:n] {
		dst = appendLower(dst, name)
		first := true
		for _, f := range req.Header.Fields() {
			if !message.EqualFold(f.Name, name) {
				continue
			}
			if first {
				dst = append(dst, ':')
			}
			dst, first = appendNormalized(dst, f.Value, first), false
		}
		dst = append(dst, '\n')
	}
	return dst, true
}

// appendNormalized appends a field line's value as list members, after earlier ones
// of the same field unless first.
func appendNormalized(dst []byte, v string, first bool) []byte {
	for v != "" {
		var m string
		m, v = cutComma(v)
		m = trimOWS(m)
		if m == "" {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		quoted, space := false, false
		for i := 0; i < len(m); i++ {
			c := m[i]
			switch {
			case quoted:
				dst = append(dst, c)
				if c == '\\' && i+1 < len(m) {
					i++
					dst = append(dst, m[i])
				} else if c == '"' {
					quoted = false
				}
			case isOWS(c):
				space = true
			default:
				if space {
					dst = append(dst, ' ')
					space = false
				}
				dst = append(dst, c)
				quoted = c == '"'
			}
		}
	}
	return dst
}

// cutComma splits a list at its first comma outside a quoted string.
func cutComma(s string) (elem, rest string) {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

// emptyList reports whether a list field value has no non-empty member.
func emptyList(v string) bool {
	for v != "" {
		var m string
		m, v = cutComma(v)
		if trimOWS(m) != "" {
			return false
		}
	}
	return true
}

// sortFold sorts field names by their lowercase form (an insertion sort: Vary lists
// are short).
func sortFold(names []string) {
	for i := 1; i < len(names); i++ {
		for j := i; j > 0 && lessFold(names[j], names[j-1]); j-- {
			names[j], names[j-1] = names[j-1], names[j]
		}
	}
}

func lessFold(a, b string) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		ca, cb := lower(a[i]), lower(b[i])
		if ca != cb {
			return ca < cb
		}
	}
	return len(a) < len(b)
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func appendLower(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		dst = append(dst, lower(s[i]))
	}
	return dst
}
