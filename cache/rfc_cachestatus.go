package cache

import (
	"strconv"
	"time"

	"github.com/gotthard-proxy/gotthard/message"
)

// Fwd is the reason a request went upstream, Cache-Status's fwd parameter (RFC 9211
// §2.2).
type Fwd uint8

// The fwd reasons of RFC 9211 §2.2.
const (
	// FwdNone: not forwarded (no fwd parameter).
	FwdNone Fwd = iota
	// FwdBypass: the cache was configured not to handle this request.
	FwdBypass
	// FwdMethod: the request method is not cacheable.
	FwdMethod
	// FwdURIMiss: nothing was stored for the request's URI.
	FwdURIMiss
	// FwdVaryMiss: something was stored for the URI, but its Vary did not match.
	FwdVaryMiss
	// FwdMiss: the cache cannot tell between uri-miss and vary-miss.
	FwdMiss
	// FwdRequest: the request's own directives (no-cache, max-age ...) sent it upstream.
	FwdRequest
	// FwdStale: the stored response was stale and had to be validated.
	FwdStale
	// FwdPartial: only part of the response was stored.
	FwdPartial
)

// String returns the token RFC 9211 uses: "bypass", "method", "uri-miss", "vary-miss",
// "miss", "request", "stale", "partial"; "" for FwdNone.
func (f Fwd) String() string {
	switch f {
	case FwdBypass:
		return "bypass"
	case FwdMethod:
		return "method"
	case FwdURIMiss:
		return "uri-miss"
	case FwdVaryMiss:
		return "vary-miss"
	case FwdMiss:
		return "miss"
	case FwdRequest:
		return "request"
	case FwdStale:
		return "stale"
	case FwdPartial:
		return "partial"
	}
	return ""
}

// CacheStatus is one member of the Cache-Status response field (RFC 9211): how this
// cache handled the request. The zero value with a Cache name formats as the name
// alone. A CacheStatus is a plain value, not safe for concurrent change.
type CacheStatus struct {
	// Cache is the cache's name, written as a token when it is one and as a string
	// otherwise. It should be unique among the caches on the path.
	Cache string
	// Hit: the request was answered from the cache without going upstream. It is not
	// written when Fwd is set: a forwarded request is not a hit.
	Hit bool
	// Fwd: why the request was forwarded; FwdNone for none.
	Fwd Fwd
	// FwdStatus is the status of the response from upstream (fwd-status); 0 for none.
	FwdStatus int
	// HasTTL reports whether TTL is written.
	HasTTL bool
	// TTL is the response's remaining freshness (ttl), written in whole seconds,
	// rounded down; negative once stale. See [Freshness.TTL].
	TTL time.Duration
	// Stored: the upstream response was stored.
	Stored bool
	// Collapsed: the request was collapsed with another going upstream.
	Collapsed bool
	// Key is the cache key, written as a string; "" for none.
	Key string
	// Detail is free-form detail (for example a [Storability] or [Action] token);
	// written as a token when it is one and as a string otherwise; "" for none.
	Detail string
}

// Append appends the member, e.g. `gotthard; fwd=stale; fwd-status=304; ttl=60`, in
// the parameter order of RFC 9211 §2. Characters a structured-field string cannot hold
// (controls, non-ASCII) are written as '?'.
func (s *CacheStatus) Append(dst []byte) []byte {
	dst = appendTokenOrString(dst, s.Cache)
	switch {
	case s.Fwd != FwdNone:
		dst = append(dst, "; fwd="...)
		dst = append(dst, s.Fwd.String()...)
		if s.FwdStatus != 0 {
			dst = append(dst, "; fwd-status="...)
			dst = strconv.AppendInt(dst, int64(s.FwdStatus), 10)
		}
	case s.Hit:
		dst = append(dst, "; hit"...)
	}
	if s.HasTTL {
		secs := s.TTL / time.Second
		if s.TTL < 0 && s.TTL%time.Second != 0 {
			secs--
		}
		dst = append(dst, "; ttl="...)
		dst = strconv.AppendInt(dst, int64(secs), 10)
	}
	if s.Stored {
		dst = append(dst, "; stored"...)
	}
	if s.Collapsed {
		dst = append(dst, "; collapsed"...)
	}
	if s.Key != "" {
		dst = append(dst, "; key="...)
		dst = appendSFString(dst, s.Key)
	}
	if s.Detail != "" {
		dst = append(dst, "; detail="...)
		dst = appendTokenOrString(dst, s.Detail)
	}
	return dst
}

// String returns the member as [CacheStatus.Append] writes it.
func (s *CacheStatus) String() string { return string(s.Append(nil)) }

// AddTo adds the member to h's Cache-Status field as its last member: the field lists
// caches from the origin toward the client, and each keeps the members before it
// (RFC 9211 §2).
func (s *CacheStatus) AddTo(h *message.Header) {
	var buf []byte
	if prev, ok := h.Lookup("Cache-Status"); ok && trimOWS(prev) != "" {
		for _, f := range h.Fields() {
			if message.EqualFold(f.Name, "Cache-Status") && trimOWS(f.Value) != "" {
				if len(buf) > 0 {
					buf = append(buf, ", "...)
				}
				buf = append(buf, trimOWS(f.Value)...)
			}
		}
		buf = append(buf, ", "...)
	}
	h.Set("Cache-Status", string(s.Append(buf)))
}

// isSFToken reports whether s is a structured-field token (RFC 8941 §3.3.4).
func isSFToken(s string) bool {
	if s == "" || !(isAlpha(s[0]) || s[0] == '*') {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isTchar(c) && c != ':' && c != '/' {
			return false
		}
	}
	return true
}

func appendTokenOrString(dst []byte, s string) []byte {
	if isSFToken(s) {
		return append(dst, s...)
	}
	return appendSFString(dst, s)
}

// appendSFString appends s as a structured-field string (RFC 8941 §3.3.3).
func appendSFString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20 || c > 0x7e:
			dst = append(dst, '?')
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// isTchar reports whether c may appear in a token (RFC 9110 §5.6.2).
func isTchar(c byte) bool {
	if isAlpha(c) || '0' <= c && c <= '9' {
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}
