package message

import "strings"

// Version is an HTTP protocol version.
type Version uint8

// HTTP versions.
const (
	HTTP10 Version = 10
	HTTP11 Version = 11
	HTTP2  Version = 20
)

// String returns "HTTP/1.0", "HTTP/1.1" or "HTTP/2".
func (v Version) String() string {
	switch v {
	case HTTP10:
		return "HTTP/1.0"
	case HTTP11:
		return "HTTP/1.1"
	case HTTP2:
		return "HTTP/2"
	}
	return "HTTP/?"
}

// RequestHeader is a request's start line and header fields.
type RequestHeader struct {
	// Method is the request method, e.g. "GET".
	Method string
	// Target is the request-target as sent (RFC 9112 §3.2), usually a path and query
	// ("/a/b?c=d"); "*" for OPTIONS; absolute-form for proxy requests.
	Target string
	// Version is the protocol version the client spoke.
	Version Version
	// Header holds the field lines in order.
	Header Header
}

// Reset clears r for reuse, keeping storage.
func (r *RequestHeader) Reset() {
	r.Method, r.Target, r.Version = "", "", 0
	r.Header.Reset()
}

// CopyFrom makes r a copy of src, reusing r's storage.
func (r *RequestHeader) CopyFrom(src *RequestHeader) {
	r.Method, r.Target, r.Version = src.Method, src.Target, src.Version
	r.Header.CopyFrom(&src.Header)
}

// Host returns the Host field's value.
func (r *RequestHeader) Host() string { return r.Header.Get("Host") }

// Path returns the target without its query.
func (r *RequestHeader) Path() string {
	p, _, _ := strings.Cut(r.Target, "?")
	return p
}

// RawQuery returns the target's query, without the '?'.
func (r *RequestHeader) RawQuery() string {
	_, q, _ := strings.Cut(r.Target, "?")
	return q
}

// ResponseHeader is a response's status line and header fields.
type ResponseHeader struct {
	// Status is the status code, e.g. 200.
	Status int
	// Reason is the reason phrase; empty means the standard one for Status.
	Reason string
	// Version is the protocol version of the message as received.
	Version Version
	// Header holds the field lines in order.
	Header Header
}

// Reset clears r for reuse, keeping storage.
func (r *ResponseHeader) Reset() {
	r.Status, r.Reason, r.Version = 0, "", 0
	r.Header.Reset()
}

// CopyFrom makes r a copy of src, reusing r's storage.
func (r *ResponseHeader) CopyFrom(src *ResponseHeader) {
	r.Status, r.Reason, r.Version = src.Status, src.Reason, src.Version
	r.Header.CopyFrom(&src.Header)
}
