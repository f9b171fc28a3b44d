package proxy

import (
	"bytes"
	"errors"
	"net/netip"
	"strconv"
	"unsafe"

	"github.com/gotthard-proxy/gotthard/internal/arena"
	"github.com/gotthard-proxy/gotthard/internal/ascii"
	"github.com/gotthard-proxy/gotthard/internal/h1"
	"github.com/gotthard-proxy/gotthard/internal/hop"
	"github.com/gotthard-proxy/gotthard/message"
)

// commonNames are field names interned as constants, so copying them costs nothing.
var commonNames = [...]string{
	"Host", "host", "User-Agent", "user-agent", "Accept", "accept", "Accept-Encoding",
	"accept-encoding", "Accept-Language", "accept-language", "Content-Type", "content-type",
	"Content-Length", "content-length", "Connection", "connection", "Cookie", "cookie",
	"Date", "date", "Server", "server", "Cache-Control", "cache-control", "ETag", "etag",
	"Last-Modified", "last-modified", "Authorization", "authorization", "Referer",
	"Set-Cookie", "set-cookie", "Vary", "vary", "X-Forwarded-For", "x-forwarded-for",
	"X-Forwarded-Proto", "X-Request-Id", "Content-Encoding", "content-encoding", "Expires",
	"Location", "Origin", "Pragma", "If-None-Match", "If-Modified-Since", "Range",
	"Accept-Ranges", "Age", "Transfer-Encoding", "Keep-Alive",
}

var commonMethods = [...]string{"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE"}

// commonByLen lists commonNames by length, so that intern compares a name with the few
// of its length only. It is never changed after it is made.
var commonByLen = func() (t [18][]string) {
	for _, s := range commonNames {
		t[len(s)] = append(t[len(s)], s)
	}
	return t
}()

func intern(b []byte, a *arena.Arena) string {
	if len(b) < len(commonByLen) {
		for _, s := range commonByLen[len(b)] {
			if string(b) == s {
				return s
			}
		}
	}
	return a.String(b)
}

func internMethod(b []byte, a *arena.Arena) string {
	for _, s := range commonMethods {
		if string(b) == s {
			return s
		}
	}
	return a.String(b)
}

// isHopByHop reports whether name is a field that describes one connection only (RFC
// 9110 §7.6.1), TE included, which the proxy never forwards as it came.
func isHopByHop(name []byte) bool { return hop.Field(name) || hop.TE(name) }

func isFramingField(name string) bool {
	switch len(name) { // by length first: it runs for every response field
	case 10:
		return message.EqualFold(name, "Connection") || message.EqualFold(name, "Keep-Alive")
	case 14:
		return message.EqualFold(name, "Content-Length")
	case 17:
		return message.EqualFold(name, "Transfer-Encoding")
	}
	return false
}

// connectionListed reports whether name is one of the tokens of the Connection fields.
func connectionListed(fields []h1.Field, name []byte) bool {
	return fieldListHas(fields, "connection", func(tok []byte) bool { return bytes.EqualFold(tok, name) })
}

// fieldListHas reports whether a field named name (in lower case) holds, in its
// comma-separated list, an element for which match is true. Elements are trimmed of
// spaces and tabs.
func fieldListHas(fields []h1.Field, name string, match func(elem []byte) bool) bool {
	for i := range fields {
		if !ascii.EqualFoldLower(fields[i].Name, name) {
			continue
		}
		for elem := range bytes.SplitSeq(fields[i].Value, []byte(",")) {
			if match(bytes.Trim(elem, " \t")) {
				return true
			}
		}
	}
	return false
}

func hasConnectionField(fields []h1.Field) bool {
	for i := range fields {
		if ascii.EqualFoldLower(fields[i].Name, "connection") {
			return true
		}
	}
	return false
}

// copyFields copies fields into h, dropping hop-by-hop ones and those named by
// Connection, and, when dropForwarded, the X-Forwarded-* fields.
func copyFields(h *message.Header, fields []h1.Field, a *arena.Arena, dropForwarded bool, dropExpect bool) {
	conn := hasConnectionField(fields)
	for i := range fields {
		name := fields[i].Name
		if isHopByHop(name) {
			continue
		}
		if conn && connectionListed(fields, name) {
			continue
		}
		if dropForwarded && len(name) > 12 && ascii.EqualFoldLower(name[:12], "x-forwarded-") {
			continue
		}
		if dropExpect && ascii.EqualFoldLower(name, "expect") {
			continue
		}
		h.Add(intern(name, a), a.String(fields[i].Value))
	}
}

// validateHeader checks every field of h, so that no phase can inject a line break or
// an invalid name into a message.
func validateHeader(h *message.Header) error { return validateChanged(h, nil) }

// validateChanged is validateHeader for a header whose lines in known are valid
// already (see knownFields): a line the same as the known one at its index, the same
// strings and not only equal ones, is not checked again.
func validateChanged(h *message.Header, known []message.Field) error {
	for i, f := range h.Fields() {
		if i < len(known) && sameField(f, known[i]) {
			continue
		}
		if !h1.ValidFieldName(f.Name) || !h1.ValidFieldValue(f.Value) {
			return &Error{Type: InternalError, Source: Internal,
				Cause: errors.New("proxy: invalid header field " + quoteName(f.Name))}
		}
	}
	return nil
}

// knownFields records in dst all the lines of h, for validateChanged, when they are
// known to be valid: they come from the codec, which rejects invalid ones, or the
// framework made them from such lines and checked options, with no phase run since.
func knownFields(dst []message.Field, h *message.Header) []message.Field {
	return append(dst[:0], h.Fields()...)
}

// unchangedFields records in dst, for validateChanged, the lines of h that are still the
// ones in prev (a record knownFields made) at the same index; the others are recorded as
// the empty field, which never matches.
func unchangedFields(dst []message.Field, h *message.Header, prev []message.Field) []message.Field {
	dst = dst[:0]
	for i, f := range h.Fields() {
		if i < len(prev) && sameField(f, prev[i]) {
			dst = append(dst, f)
		} else {
			dst = append(dst, message.Field{})
		}
	}
	return dst
}

// sameField reports whether a and b are made of the same strings (the same bytes in
// memory), and a has a name: a line a phase set or added is a different string even when
// it is equal, unless it is the very line it read. (Strings cannot change, so the same
// string is still valid.)
func sameField(a, b message.Field) bool {
	return len(a.Name) > 0 && sameString(a.Name, b.Name) && sameString(a.Value, b.Value)
}

func sameString(a, b string) bool {
	return len(a) == len(b) && unsafe.StringData(a) == unsafe.StringData(b)
}

func quoteName(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	b := make([]byte, 0, len(s)+2)
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' {
			c = '?'
		}
		b = append(b, c)
	}
	return string(append(b, '"'))
}

// trusted reports whether addr is in one of the prefixes.
func trusted(addr netip.Addr, prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// splitAbsolute splits an absolute-form target "http://authority/path?q" into its
// authority and the rest, which may be empty or start with '?'; ok is false for other
// forms.
func splitAbsolute(t []byte) (authority, rest []byte, ok bool) {
	if len(t) == 0 || t[0] == '/' {
		return nil, nil, false
	}
	// The scheme ends at the first ':' (bytes.Index with a []byte("://") would do,
	// but once inlined under profile-guided optimization that []byte escapes and costs
	// an allocation per request).
	i := bytes.IndexByte(t, ':')
	if i <= 0 || string(t[i:min(i+3, len(t))]) != "://" {
		return nil, nil, false
	}
	scheme := t[:i]
	if !ascii.EqualFoldLower(scheme, "http") && !ascii.EqualFoldLower(scheme, "https") {
		return nil, nil, false
	}
	after := t[i+3:]
	j := bytes.IndexAny(after, "/?")
	if j < 0 {
		return after, nil, len(after) > 0
	}
	return after[:j], after[j:], j > 0
}

// normalizeContentLength leaves one Content-Length field holding n, in the place of the
// first, when the fields are not already exactly that.
func normalizeContentLength(h *message.Header, n int64, a *arena.Arena) {
	count, plain := 0, true
	var buf [20]byte
	want := strconv.AppendInt(buf[:0], n, 10)
	for _, f := range h.Fields() {
		if message.EqualFold(f.Name, "Content-Length") {
			count++
			if f.Value != string(want) {
				plain = false
			}
		}
	}
	if count == 1 && plain || count == 0 {
		return
	}
	h.Set("Content-Length", a.String(want))
}
