package cache

import (
	"strconv"
	"time"

	"github.com/gotthard-proxy/gotthard/message"
)

// Precondition is the answer of [EvaluateConditional].
type Precondition uint8

// The answers of [EvaluateConditional].
const (
	// SendFull: no precondition stops the request; send the stored response (or the
	// part a Range asks for).
	SendFull Precondition = iota + 1
	// SendNotModified: answer 304 (Not Modified), built by [NotModified].
	SendNotModified
	// SendPreconditionFailed: answer 412 (Precondition Failed), built by
	// [PreconditionFailed].
	SendPreconditionFailed
)

// String returns "full", "not-modified" or "precondition-failed".
func (p Precondition) String() string {
	switch p {
	case SendFull:
		return "full"
	case SendNotModified:
		return "not-modified"
	case SendPreconditionFailed:
		return "precondition-failed"
	}
	return "unknown"
}

// EvaluateConditional evaluates a client's conditional request against the stored
// response that would answer it (RFC 9111 §4.3.2), in the order of RFC 9110 §13.2.2:
//
//  1. If-Match: no stored ETag matches by strong comparison ("*" matches any):
//     412;
//  2. else If-Unmodified-Since (a valid date): Last-Modified is later: 412;
//  3. If-None-Match: a stored ETag matches by weak comparison ("*" matches any): 304
//     for GET and HEAD, 412 otherwise;
//  4. else, for GET and HEAD, If-Modified-Since (a single valid date): the response was
//     last modified at or before it (Last-Modified, else Date, else the time it was
//     received, §4.3.2): 304;
//  5. otherwise the full response.
//
// Range and If-Range come after this ([ParseRange], [IfRangeMatches]). It allocates
// nothing.
func EvaluateConditional(req *message.RequestHeader, meta *Meta) Precondition {
	h := &req.Header
	stored := &meta.Response.Header
	etag, hasETag := ParseETag(stored.Get("ETag"))
	if v, ok := h.Lookup("If-Match"); ok {
		if !etagListMatch(v, etag, hasETag, false) {
			return SendPreconditionFailed
		}
	} else if v, ok := h.Lookup("If-Unmodified-Since"); ok {
		if since, valid := ParseHTTPDate(v); valid {
			if lm, ok := ParseHTTPDate(stored.Get("Last-Modified")); ok && lm.After(since) {
				return SendPreconditionFailed
			}
		}
	}
	getOrHead := req.Method == "GET" || req.Method == "HEAD"
	if v, ok := h.Lookup("If-None-Match"); ok {
		if etagListMatch(v, etag, hasETag, true) {
			if getOrHead {
				return SendNotModified
			}
			return SendPreconditionFailed
		}
	} else if v, ok := singleField(h, "If-Modified-Since"); ok && getOrHead {
		if since, valid := ParseHTTPDate(v); valid && !lastModified(meta).After(since) {
			return SendNotModified
		}
	}
	return SendFull
}

// notModifiedField reports whether a field is one RFC 9110 §15.4.5 has a 304 carry when
// a 200 would have had it.
func notModifiedField(name string) bool {
	for _, n := range [...]string{"Cache-Control", "Content-Location", "Date", "ETag", "Expires", "Vary"} {
		if message.EqualFold(name, n) {
			return true
		}
	}
	return false
}

// NotModified makes dst the 304 (Not Modified) that answers a client's conditional
// request from the stored response meta at now: the fields RFC 9110 §15.4.5 requires
// (Cache-Control, Content-Location, Date, ETag, Expires, Vary, as stored),
// Last-Modified when there is no ETag (to guide the client's cache), and Age
// (RFC 9111 §5.1).
func NotModified(dst *message.ResponseHeader, meta *Meta, now time.Time) {
	dst.Reset()
	dst.Status, dst.Version = 304, meta.Response.Version
	src := &meta.Response.Header
	for _, f := range src.Fields() {
		if notModifiedField(f.Name) {
			dst.Header.Add(f.Name, f.Value)
		}
	}
	if !src.Has("ETag") {
		if v, ok := src.Lookup("Last-Modified"); ok {
			dst.Header.Add("Last-Modified", v)
		}
	}
	dst.Header.Set("Age", ageValue(CurrentAge(meta, now)))
}

// PreconditionFailed makes dst a 412 (Precondition Failed) with an empty body, dated
// now.
func PreconditionFailed(dst *message.ResponseHeader, now time.Time) {
	dst.Reset()
	dst.Status = 412
	dst.Header.Add("Date", formatHTTPDate(now))
	dst.Header.Add("Content-Length", "0")
}

// ageValue formats an age as the Age field's delta-seconds, capped at 2^31. Values under
// 100 are formatted without allocating.
func ageValue(age time.Duration) string {
	return strconv.FormatInt(min(int64(max(0, age)/time.Second), maxDelta), 10)
}
