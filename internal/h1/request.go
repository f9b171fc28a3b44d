package h1

import "bytes"

// BodyKind says how a message body is delimited (RFC 9112 §6.3).
type BodyKind uint8

// Body kinds.
const (
	BodyNone       BodyKind = iota // no body
	BodyLength                     // Content-Length delimited
	BodyChunked                    // chunked transfer coding
	BodyUntilClose                 // response read until the connection closes
)

// String returns the name of k.
func (k BodyKind) String() string {
	switch k {
	case BodyNone:
		return "none"
	case BodyLength:
		return "length"
	case BodyChunked:
		return "chunked"
	case BodyUntilClose:
		return "until-close"
	}
	return "invalid"
}

// RequestHead is a parsed request head. Its byte slices alias the parsed buffer.
type RequestHead struct {
	Method, Target []byte
	Minor          int     // 0 or 1 (HTTP/1.0 or HTTP/1.1)
	Fields         []Field // in wire order, name case preserved; reused between parses (reset to [:0])
	// Host is the value of the single Host field; nil if absent (allowed only for
	// HTTP/1.0), empty but non-nil if present and empty.
	Host []byte
	// Body is BodyNone, BodyLength or BodyChunked.
	Body BodyKind
	// ContentLength is the Content-Length value if the field is present, else 0. It
	// delimits the body when Body == BodyLength (a length of 0 gives BodyNone).
	ContentLength int64
	// ContentLengthPlain is true when the head has one Content-Length field and its
	// value is ContentLength written plainly (no list, no leading zero): a copy of the
	// fields then needs no rewriting of it.
	ContentLengthPlain bool
	// KeepAlive is true for HTTP/1.1 without "Connection: close" and for HTTP/1.0
	// with "Connection: keep-alive" (and without "close").
	KeepAlive bool
	// Expect100 is true if "Expect: 100-continue" (case-insensitive) is present.
	Expect100 bool
	// Upgrade is the value of the first Upgrade field if Connection lists "upgrade",
	// else nil.
	Upgrade []byte
}

// Reset clears h, keeping the capacity of Fields.
func (h *RequestHead) Reset() {
	*h = RequestHead{Fields: h.Fields[:0]}
}

// ParseRequestHead parses one request head from the start of b. It returns the number
// of bytes the head used (through the final empty line). If b holds no complete head
// yet it returns (0, ErrIncomplete), unless a limit is already exceeded or a complete
// line of the head is already invalid: then it returns the *[Error]. Leading empty lines
// before the request line are skipped (RFC 9112 §2.2) and counted in n.
//
// A nil lim means the default [Limits]. On success the byte slices of h alias b.
func ParseRequestHead(b []byte, h *RequestHead, lim *Limits) (n int, err error) {
	l := lim.withDefaults()
	h.Reset()
	pos := 0
	for pos < len(b) {
		if b[pos] == '\n' {
			pos++
			continue
		}
		if b[pos] == '\r' {
			if pos+1 == len(b) {
				return 0, ErrIncomplete
			}
			if b[pos+1] == '\n' {
				pos += 2
				continue
			}
		}
		break
	}
	if pos == len(b) {
		return 0, ErrIncomplete
	}
	start := pos
	truncated := false
	if len(b)-start > l.MaxHeadBytes {
		b = b[:start+l.MaxHeadBytes]
		truncated = true
	}
	n, err = parseRequest(b, start, h, &l)
	if err == ErrIncomplete && truncated {
		return 0, errAt(sideRequest, statusFieldsTooLarge, "head too large", len(b))
	}
	if err != nil {
		h.Fields = h.Fields[:0]
		return 0, err
	}
	return n, nil
}

// parseRequest parses the request line at b[pos:] and the fields after it.
func parseRequest(b []byte, pos int, h *RequestHead, l *Limits) (int, error) {
	// A method is a token: one longer than any method in use is refused before the
	// rest of the line is waited for (RFC 9112 §3: 501 for a method longer than any
	// the server implements), not taken for a long target (414).
	m := tokenLen(b[pos:min(len(b), pos+MaxMethodBytes+1)])
	if m > MaxMethodBytes {
		return 0, errAt(sideRequest, statusNotImplemented, "method too long", pos)
	}
	end, next, ok := nextLine(b, pos)
	if !ok {
		if partialLineTooLong(b, pos, l.MaxLineBytes) {
			return 0, errAt(sideRequest, statusURITooLong, "request line too long", pos)
		}
		return 0, ErrIncomplete
	}
	if end-pos > l.MaxLineBytes {
		return 0, errAt(sideRequest, statusURITooLong, "request line too long", pos)
	}
	// RFC 9112 §3: request-line = method SP request-target SP HTTP-version
	i := pos + m // (the token ends at the line's end at the latest: CR and LF are not in it)
	if i == pos || i == end || b[i] != ' ' {
		return 0, errAt(sideRequest, statusBadRequest, "invalid method", i)
	}
	h.Method = b[pos:i]
	i++
	j := i + vcharLen(b[i:end])
	if j == i || j == end || b[j] != ' ' {
		return 0, errAt(sideRequest, statusBadRequest, "invalid request target", j)
	}
	h.Target = b[i:j]
	minor, status := parseVersion(b[j+1 : end])
	if status != 0 {
		rest := b[j+1 : end]
		switch {
		case bytes.IndexByte(rest, ' ') >= 0:
			// "GET /a b HTTP/1.1": a space in the target, or a line in more than
			// three parts.
			return 0, errAt(sideRequest, statusBadRequest, "invalid request target", j+1)
		case bytes.IndexByte(rest, '/') < 0:
			// Not a version at all (nor "HTTP/..." mistyped): the bytes are likely
			// not HTTP/1.x (see [Error.NotHTTP]).
			return 0, errAt(sideRequest, statusBadRequest, reasonNotHTTP, j+1)
		}
		return 0, errAt(sideRequest, status, reasonBadVersion, j+1)
	}
	h.Minor = minor
	if !validTargetForm(h.Method, h.Target) {
		return 0, errAt(sideRequest, statusBadRequest, "invalid request target", i)
	}
	fields, n, err := parseFields(b, next, l, sideRequest, h.Fields)
	h.Fields = fields
	if err != nil {
		return 0, err
	}
	return n, h.finish(b)
}

// parseVersion parses HTTP-version (RFC 9112 §2.3). It returns the minor version of
// HTTP/1.0 and HTTP/1.1, status 505 for any other well-formed HTTP/d.d, else 400.
func parseVersion(v []byte) (minor, status int) {
	if len(v) != 8 || string(v[:5]) != "HTTP/" || v[6] != '.' ||
		v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9' {
		return 0, statusBadRequest
	}
	if v[5] != '1' || v[7] > '1' {
		return 0, statusVersionNotSupported
	}
	return int(v[7] - '0'), 0
}

// validTargetForm checks the request-target form against the method (RFC 9112 §3.2):
// authority-form only and always for CONNECT, asterisk-form only for OPTIONS, else
// origin-form ("/...") or absolute-form.
//
// An absolute-form target must be an http or https URI with a host ("http://host/p",
// RFC 9110 §4.2): that is what an HTTP proxy can act on. Anything else that has a
// colon, such as "host:80" (authority-form on a method other than CONNECT) or
// "mailto:x", is a 400, as nginx answers; RFC 9110 §4.2.4 makes userinfo ("http://u@h/")
// invalid too.
func validTargetForm(method, target []byte) bool {
	if string(method) == "CONNECT" {
		return validAuthority(target, true)
	}
	if target[0] == '/' {
		return true
	}
	if len(target) == 1 && target[0] == '*' {
		return string(method) == "OPTIONS"
	}
	var rest []byte
	switch {
	case len(target) > 7 && eqFold(target[:7], "http://"):
		rest = target[7:]
	case len(target) > 8 && eqFold(target[:8], "https://"):
		rest = target[8:]
	default:
		return false
	}
	end := bytes.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	return end > 0 && validAuthority(rest[:end], false)
}

// finish applies the semantics of the fields the codec acts on: Host, framing
// (RFC 9112 §6.3), Connection, Expect and Upgrade.
func (h *RequestHead) finish(b []byte) error {
	var (
		te      codings
		conn    connOpts
		cl      int64 = -1
		hosts   int
		upgrade []byte
	)
	for i := range h.Fields {
		f := &h.Fields[i]
		switch len(f.Name) {
		case 4:
			if eqFold(f.Name, "host") {
				hosts++
				if hosts > 1 {
					return errAt(sideRequest, statusBadRequest, "more than one Host field", offsetOf(b, f.Name))
				}
				if !validAuthority(f.Value, false) {
					return errAt(sideRequest, statusBadRequest, "invalid Host", offsetOf(b, f.Value))
				}
				h.Host = f.Value
			}
		case 6:
			if eqFold(f.Name, "expect") && eqFold(f.Value, "100-continue") {
				h.Expect100 = true
			}
		case 7:
			if upgrade == nil && eqFold(f.Name, "upgrade") {
				upgrade = f.Value
			}
		case 10:
			if eqFold(f.Name, "connection") {
				conn.add(f.Value)
			}
		case 14:
			if eqFold(f.Name, "content-length") {
				n, ok := parseContentLength(f.Value, cl)
				if !ok {
					return errAt(sideRequest, statusBadRequest, "invalid Content-Length", offsetOf(b, f.Value))
				}
				h.ContentLengthPlain = cl < 0 && plainLength(f.Value)
				cl = n
			}
		case 17:
			if eqFold(f.Name, "transfer-encoding") {
				if h.Minor == 0 {
					// RFC 9112 §6.1: a 1.0 recipient cannot be trusted to
					// have framed the message the same way.
					return errAt(sideRequest, statusBadRequest, "Transfer-Encoding in HTTP/1.0 request", offsetOf(b, f.Name))
				}
				if err := te.add(f.Value, sideRequest, offsetOf(b, f.Value)); err != nil {
					return err
				}
			}
		}
	}
	if h.Host == nil && h.Minor == 1 {
		// RFC 9112 §3.2: a client MUST send Host in HTTP/1.1.
		return errAt(sideRequest, statusBadRequest, "missing Host", 0)
	}
	switch {
	case te.present && cl >= 0:
		// RFC 9112 §6.3 item 3: the classic smuggling vector; reject outright.
		return errAt(sideRequest, statusBadRequest, "both Content-Length and Transfer-Encoding", 0)
	case te.present:
		h.Body = BodyChunked // add guarantees chunked is present and last
	case cl > 0:
		h.Body, h.ContentLength = BodyLength, cl
	}
	h.KeepAlive = !conn.close && (h.Minor == 1 || conn.keepAlive)
	if conn.upgrade {
		h.Upgrade = upgrade
	}
	return nil
}
