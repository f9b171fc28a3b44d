package h1

// ResponseHead is a parsed response head. Its byte slices alias the parsed buffer.
type ResponseHead struct {
	Minor  int // 0 or 1
	Status int // 100-599
	Reason []byte
	Fields []Field // in wire order, name case preserved; reused between parses
	// Body is the framing of the body; see [ParseResponseHead].
	Body BodyKind
	// ContentLength is the Content-Length value if the field is present, else 0. It
	// delimits the body when Body == BodyLength.
	ContentLength int64
	// ContentLengthPlain is true when the head has one Content-Length field and its
	// value is ContentLength written plainly, as in [RequestHead].
	ContentLengthPlain bool
	// KeepAlive is true if the connection may carry another request after this
	// response: HTTP/1.1 without "Connection: close", or HTTP/1.0 with
	// "Connection: keep-alive", and a body that is not delimited by the close.
	KeepAlive bool
}

// Reset clears h, keeping the capacity of Fields.
func (h *ResponseHead) Reset() {
	*h = ResponseHead{Fields: h.Fields[:0]}
}

// ParseResponseHead parses a status line and fields from the start of b, like
// [ParseRequestHead]; every *[Error] it returns has Status 502.
//
// reqMethod is the method of the request this answers; it decides the framing
// (RFC 9112 §6.3): a response to HEAD, a 2xx response to CONNECT (a tunnel), and 1xx,
// 204 and 304 responses have no body (BodyNone). Otherwise a Transfer-Encoding whose
// last coding is chunked gives BodyChunked, a Transfer-Encoding with another last
// coding gives BodyUntilClose, a Content-Length gives BodyLength (BodyNone if 0), and
// neither gives BodyUntilClose (with KeepAlive false). Content-Length together with
// Transfer-Encoding, or differing Content-Length values, are errors.
func ParseResponseHead(b []byte, reqMethod []byte, h *ResponseHead, lim *Limits) (n int, err error) {
	l := lim.withDefaults()
	h.Reset()
	if len(b) == 0 {
		return 0, ErrIncomplete
	}
	truncated := false
	if len(b) > l.MaxHeadBytes {
		b = b[:l.MaxHeadBytes]
		truncated = true
	}
	n, err = parseResponse(b, reqMethod, h, &l)
	if err == ErrIncomplete && truncated {
		return 0, errAt(sideResponse, statusFieldsTooLarge, "head too large", len(b))
	}
	if err != nil {
		h.Fields = h.Fields[:0]
		return 0, err
	}
	return n, nil
}

func parseResponse(b []byte, reqMethod []byte, h *ResponseHead, l *Limits) (int, error) {
	end, next, ok := nextLine(b, 0)
	if !ok {
		if partialLineTooLong(b, 0, l.MaxLineBytes) {
			return 0, errAt(sideResponse, 0, "status line too long", 0)
		}
		return 0, ErrIncomplete
	}
	if end > l.MaxLineBytes {
		return 0, errAt(sideResponse, 0, "status line too long", 0)
	}
	// RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]
	// A missing reason with or without its SP is tolerated.
	if end < 12 || string(b[:7]) != "HTTP/1." || (b[7] != '0' && b[7] != '1') || b[8] != ' ' {
		return 0, errAt(sideResponse, 0, "invalid status line", 0)
	}
	h.Minor = int(b[7] - '0')
	status := 0
	for _, c := range b[9:12] {
		if c < '0' || c > '9' {
			return 0, errAt(sideResponse, 0, "invalid status code", 9)
		}
		status = status*10 + int(c-'0')
	}
	if status < 100 || status > 599 {
		return 0, errAt(sideResponse, 0, "invalid status code", 9)
	}
	h.Status = status
	h.Reason = b[12:12]
	if end > 12 {
		if b[12] != ' ' {
			return 0, errAt(sideResponse, 0, "invalid status line", 12)
		}
		if k := badValueByte(b[13:end]); k >= 0 {
			return 0, errAt(sideResponse, 0, "invalid reason phrase", 13+k)
		}
		h.Reason = b[13:end]
	}
	fields, n, err := parseFields(b, next, l, sideResponse, h.Fields)
	h.Fields = fields
	if err != nil {
		return 0, err
	}
	return n, h.finish(b, reqMethod)
}

func (h *ResponseHead) finish(b []byte, reqMethod []byte) error {
	var (
		te   codings
		conn connOpts
		cl   int64 = -1
	)
	for i := range h.Fields {
		f := &h.Fields[i]
		switch len(f.Name) {
		case 10:
			if eqFold(f.Name, "connection") {
				conn.add(f.Value)
			}
		case 14:
			if eqFold(f.Name, "content-length") {
				n, ok := parseContentLength(f.Value, cl)
				if !ok {
					return errAt(sideResponse, 0, "invalid Content-Length", offsetOf(b, f.Value))
				}
				h.ContentLengthPlain = cl < 0 && plainLength(f.Value)
				cl = n
			}
		case 17:
			if eqFold(f.Name, "transfer-encoding") {
				if err := te.add(f.Value, sideResponse, offsetOf(b, f.Value)); err != nil {
					return err
				}
			}
		}
	}
	if te.present && cl >= 0 {
		return errAt(sideResponse, 0, "both Content-Length and Transfer-Encoding", 0)
	}
	if cl >= 0 {
		h.ContentLength = cl
	}
	h.KeepAlive = !conn.close && (h.Minor == 1 || conn.keepAlive)
	switch {
	case h.Status < 200 || h.Status == 204 || h.Status == 304,
		string(reqMethod) == "HEAD",
		string(reqMethod) == "CONNECT" && h.Status < 300:
		h.Body = BodyNone
	case te.present && te.lastChunked:
		h.Body = BodyChunked
	case te.present:
		h.Body, h.KeepAlive = BodyUntilClose, false
	case cl > 0:
		h.Body = BodyLength
	case cl == 0:
		h.Body = BodyNone
	default:
		h.Body, h.KeepAlive = BodyUntilClose, false
	}
	return nil
}

// StatusText returns the standard reason phrase for code (RFC 9110 §15), or "" if the
// code is unknown. It does not allocate.
func StatusText(code int) string {
	switch code {
	case 100:
		return "Continue"
	case 101:
		return "Switching Protocols"
	case 102:
		return "Processing"
	case 103:
		return "Early Hints"
	case 200:
		return "OK"
	case 201:
		return "Created"
	case 202:
		return "Accepted"
	case 203:
		return "Non-Authoritative Information"
	case 204:
		return "No Content"
	case 205:
		return "Reset Content"
	case 206:
		return "Partial Content"
	case 207:
		return "Multi-Status"
	case 208:
		return "Already Reported"
	case 226:
		return "IM Used"
	case 300:
		return "Multiple Choices"
	case 301:
		return "Moved Permanently"
	case 302:
		return "Found"
	case 303:
		return "See Other"
	case 304:
		return "Not Modified"
	case 305:
		return "Use Proxy"
	case 307:
		return "Temporary Redirect"
	case 308:
		return "Permanent Redirect"
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 402:
		return "Payment Required"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 406:
		return "Not Acceptable"
	case 407:
		return "Proxy Authentication Required"
	case 408:
		return "Request Timeout"
	case 409:
		return "Conflict"
	case 410:
		return "Gone"
	case 411:
		return "Length Required"
	case 412:
		return "Precondition Failed"
	case 413:
		return "Content Too Large"
	case 414:
		return "URI Too Long"
	case 415:
		return "Unsupported Media Type"
	case 416:
		return "Range Not Satisfiable"
	case 417:
		return "Expectation Failed"
	case 418:
		return "I'm a teapot"
	case 421:
		return "Misdirected Request"
	case 422:
		return "Unprocessable Content"
	case 423:
		return "Locked"
	case 424:
		return "Failed Dependency"
	case 425:
		return "Too Early"
	case 426:
		return "Upgrade Required"
	case 428:
		return "Precondition Required"
	case 429:
		return "Too Many Requests"
	case 431:
		return "Request Header Fields Too Large"
	case 451:
		return "Unavailable For Legal Reasons"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	case 505:
		return "HTTP Version Not Supported"
	case 506:
		return "Variant Also Negotiates"
	case 507:
		return "Insufficient Storage"
	case 508:
		return "Loop Detected"
	case 510:
		return "Not Extended"
	case 511:
		return "Network Authentication Required"
	}
	return ""
}
