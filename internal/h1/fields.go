package h1

import "bytes"

// Field is one field line; Name and Value alias the buffer they were parsed from.
// Value has leading and trailing optional whitespace (SP, HTAB) trimmed.
type Field struct{ Name, Value []byte }

// Character classes (RFC 9110 §5.6.2 token, §5.5 field-value, RFC 3986 reg-name).
const (
	cToken = 1 << iota // tchar
	cValue             // field-vchar, SP, HTAB (obs-text included)
	cVchar             // VCHAR 0x21-0x7E
	cHost              // reg-name: unreserved / sub-delims / "%"
	cHex               // HEXDIG
)

// charClass is a constant lookup table, filled once at package initialization and
// never written afterwards.
var charClass = func() (t [256]uint8) {
	for c := 0x21; c <= 0x7e; c++ {
		t[c] |= cVchar | cValue
	}
	for c := 0x80; c <= 0xff; c++ {
		t[c] |= cValue // obs-text
	}
	t[' '] |= cValue
	t['\t'] |= cValue
	for _, c := range []byte("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
		t[c] |= cToken
	}
	for _, c := range []byte("-._~!$&'()*+,;=%0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
		t[c] |= cHost
	}
	for _, c := range []byte("0123456789abcdefABCDEF") {
		t[c] |= cHex
	}
	return t
}()

func isToken(c byte) bool { return charClass[c]&cToken != 0 }
func isOWS(c byte) bool   { return c == ' ' || c == '\t' }

// ValidFieldName reports whether s is a valid field name: a non-empty token
// (RFC 9110 §5.1).
func ValidFieldName(s string) bool { return validToken(s) }

// ValidMethod reports whether s is a valid method: a non-empty token (RFC 9110 §9.1).
func ValidMethod(s string) bool { return validToken(s) }

func validToken[T string | []byte](s T) bool {
	return len(s) > 0 && tokenLen(s) == len(s)
}

// ValidFieldValue reports whether s can be written as a field value (RFC 9110 §5.5):
// no control characters other than HTAB (so no CR, LF or NUL) and no leading or
// trailing SP or HTAB, which a recipient would strip. obs-text (0x80-0xFF) is allowed.
// The empty value is valid.
func ValidFieldValue(s string) bool {
	if len(s) == 0 {
		return true
	}
	if isOWS(s[0]) || isOWS(s[len(s)-1]) {
		return false
	}
	return badValueByte(s) < 0
}

// ValidTarget reports whether s can be written as a request target: non-empty and only
// VCHAR (0x21-0x7E).
func ValidTarget(s string) bool {
	return len(s) > 0 && vcharLen(s) == len(s)
}

// nextLine finds the line that starts at pos. It returns the end of the line content
// (before CRLF or a bare LF, RFC 9112 §2.2) and the start of the next line; ok is false
// if b holds no LF after pos.
func nextLine(b []byte, pos int) (end, next int, ok bool) {
	i := bytes.IndexByte(b[pos:], '\n')
	if i < 0 {
		return 0, 0, false
	}
	end = pos + i
	next = end + 1
	if end > pos && b[end-1] == '\r' {
		end--
	}
	return end, next, true
}

// partialLineTooLong reports whether the unterminated line at b[pos:] is already longer
// than max (a trailing CR may still become part of the terminator).
func partialLineTooLong(b []byte, pos, max int) bool {
	n := len(b) - pos
	if n > 0 && b[len(b)-1] == '\r' {
		n--
	}
	return n > max
}

// parseFields parses field lines (RFC 9112 §5) from b[pos:] through the empty line that
// ends the section, appending them to fields. It returns the position after the empty
// line, or ErrIncomplete if b ends first. Bytes are validated as lines complete, so an
// invalid line is reported even if the section is not complete yet.
func parseFields(b []byte, pos int, lim *Limits, sd side, fields []Field) ([]Field, int, error) {
	base := len(fields)
	for {
		end, next, ok := nextLine(b, pos)
		if !ok {
			if partialLineTooLong(b, pos, lim.MaxLineBytes) {
				return fields, 0, errAt(sd, statusFieldsTooLarge, "field line too long", pos)
			}
			return fields, 0, ErrIncomplete
		}
		if end == pos {
			return fields, next, nil
		}
		if end-pos > lim.MaxLineBytes {
			return fields, 0, errAt(sd, statusFieldsTooLarge, "field line too long", pos)
		}
		if len(fields)-base >= lim.MaxFields {
			return fields, 0, errAt(sd, statusFieldsTooLarge, "too many fields", pos)
		}
		f, err := parseFieldLine(b, pos, end, sd)
		if err != nil {
			return fields, 0, err
		}
		fields = append(fields, f)
		pos = next
	}
}

// parseFieldLine parses the field line b[pos:end] (terminator removed).
func parseFieldLine(b []byte, pos, end int, sd side) (Field, error) {
	c := b[pos]
	if isOWS(c) {
		// RFC 9112 §5.2: obs-fold is rejected (and a first line starting with
		// whitespace is the same attack, RFC 9112 §2.2).
		return Field{}, errAt(sd, statusBadRequest, "obsolete line folding", pos)
	}
	line := b[pos:end]
	n := tokenLen(line)
	if n == len(line) {
		return Field{}, errAt(sd, statusBadRequest, "field line without colon", end)
	}
	if c := line[n]; c != ':' {
		if isOWS(c) {
			// RFC 9112 §5.1: no whitespace between field name and colon.
			return Field{}, errAt(sd, statusBadRequest, "whitespace before colon", pos+n)
		}
		return Field{}, errAt(sd, statusBadRequest, "invalid field name", pos+n)
	}
	if n == 0 {
		return Field{}, errAt(sd, statusBadRequest, "empty field name", pos)
	}
	// The value: every byte checked, then optional whitespace trimmed from both ends.
	v := line[n+1:]
	if k := badValueByte(v); k >= 0 {
		if v[k] == '\r' {
			return Field{}, errAt(sd, statusBadRequest, "bare CR", pos+n+1+k)
		}
		return Field{}, errAt(sd, statusBadRequest, "invalid field value", pos+n+1+k)
	}
	s, e := 0, len(v)
	for s < e && isOWS(v[s]) {
		s++
	}
	for e > s && isOWS(v[e-1]) {
		e--
	}
	return Field{Name: line[:n], Value: v[s:e]}, nil
}

// eqFold reports whether b equals the lower-case ASCII string s, ignoring ASCII case.
func eqFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// nextElem returns the next element of a comma-separated list (RFC 9110 §5.6.1) in
// v[i:], with OWS trimmed, and the position after its comma. Elements may be empty.
func nextElem(v []byte, i int) (elem []byte, next int) {
	j := bytes.IndexByte(v[i:], ',')
	if j < 0 {
		j = len(v)
	} else {
		j += i
	}
	s, e := i, j
	for s < e && isOWS(v[s]) {
		s++
	}
	for e > s && isOWS(v[e-1]) {
		e--
	}
	return v[s:e], j + 1
}

// parseContentLength parses a Content-Length value: 1*DIGIT, or a list of identical
// such values (RFC 9110 §8.6). At most 18 digits, so the value cannot overflow int64.
// prev is the value of an earlier Content-Length field, or -1.
func parseContentLength(v []byte, prev int64) (int64, bool) {
	n := prev
	for i := 0; i <= len(v); {
		elem, next := nextElem(v, i)
		if len(elem) == 0 || len(elem) > 18 {
			return 0, false
		}
		var x int64
		for _, c := range elem {
			if c < '0' || c > '9' {
				return 0, false
			}
			x = x*10 + int64(c-'0')
		}
		if n >= 0 && x != n {
			return 0, false
		}
		n = x
		i = next
	}
	return n, true
}

// plainLength reports whether a Content-Length value that parseContentLength accepted
// is one number written plainly: no list and no leading zero.
func plainLength(v []byte) bool {
	return (v[0] != '0' || len(v) == 1) && bytes.IndexByte(v, ',') < 0
}

// codings accumulates the transfer codings of all Transfer-Encoding fields of a
// message (RFC 9112 §6.1).
type codings struct {
	present     bool
	chunked     bool // chunked seen
	lastChunked bool // the last coding so far is chunked
}

// add adds the codings listed in one Transfer-Encoding field value. For a request, a
// coding other than chunked is 501 and chunked must be last and appear once; for a
// response, other codings are allowed (the body is then read until close) but chunked
// still must not appear twice.
func (c *codings) add(v []byte, sd side, off int) error {
	c.present = true
	seen := false
	for i := 0; i <= len(v); {
		elem, next := nextElem(v, i)
		i = next
		if len(elem) == 0 {
			continue // RFC 9110 §5.6.1: empty list elements are ignored
		}
		seen = true
		if !validToken(elem) {
			return errAt(sd, statusBadRequest, "invalid transfer coding", off)
		}
		isChunked := eqFold(elem, "chunked")
		if c.chunked {
			if isChunked {
				return errAt(sd, statusBadRequest, "chunked applied more than once", off)
			}
			if sd == sideRequest {
				return errAt(sd, statusBadRequest, "chunked is not the last transfer coding", off)
			}
		}
		if !isChunked && sd == sideRequest {
			return errAt(sd, statusNotImplemented, "unsupported transfer coding", off)
		}
		c.chunked = c.chunked || isChunked
		c.lastChunked = isChunked
	}
	if !seen {
		return errAt(sd, statusBadRequest, "empty Transfer-Encoding", off)
	}
	return nil
}

// connOpts are the Connection options the codec acts on (RFC 9110 §7.6.1).
type connOpts struct{ close, keepAlive, upgrade bool }

func (o *connOpts) add(v []byte) {
	for i := 0; i <= len(v); {
		elem, next := nextElem(v, i)
		i = next
		switch {
		case eqFold(elem, "close"):
			o.close = true
		case eqFold(elem, "keep-alive"):
			o.keepAlive = true
		case eqFold(elem, "upgrade"):
			o.upgrade = true
		}
	}
}

// validAuthority reports whether v is a plausible uri-host [":" port] (RFC 3986 §3.2):
// a reg-name or IPv4 address, or an IP literal in brackets, then an optional port of
// digits. The empty value is allowed unless needPort. With needPort (CONNECT's
// authority-form, RFC 9112 §3.2.3) both host and port must be non-empty.
func validAuthority(v []byte, needPort bool) bool {
	if len(v) == 0 {
		return !needPort
	}
	i := 0
	if v[0] == '[' {
		j := bytes.IndexByte(v, ']')
		if j < 2 {
			return false
		}
		for _, c := range v[1:j] {
			if charClass[c]&cHex == 0 && c != ':' && c != '.' {
				return false
			}
		}
		i = j + 1
	} else {
		for i < len(v) && charClass[v[i]]&cHost != 0 {
			i++
		}
		if i == 0 {
			return false
		}
	}
	if i == len(v) {
		return !needPort
	}
	if v[i] != ':' {
		return false
	}
	i++
	if needPort && i == len(v) {
		return false
	}
	for ; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}

// offsetOf returns the offset of sub in b, where sub is a subslice of b made by
// slicing (so it shares b's backing array and end of capacity).
func offsetOf(b, sub []byte) int { return cap(b) - cap(sub) }
