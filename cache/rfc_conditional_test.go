package cache

import (
	"testing"
	"time"
)

// TestEvaluateConditional: RFC 9111 §4.3.2 and RFC 9110 §13.1 (each precondition) and
// §13.2.2 (their order).
func TestEvaluateConditional(t *testing.T) {
	const h = time.Hour
	withTag := []string{"Date: " + date(0), `ETag: "v1"`, "Last-Modified: " + date(-2*h)}
	weakTag := []string{"Date: " + date(0), `ETag: W/"v1"`}
	noLM := []string{"Date: " + date(-h)}
	tests := []struct {
		name   string
		method string
		reqH   []string
		stored []string
		want   Precondition
	}{
		{"§13.2.2 no conditionals: full", "GET", nil, withTag, SendFull},
		{"§13.1.1 If-Match strong match: full", "GET", []string{`If-Match: "x", "v1"`}, withTag, SendFull},
		{"§13.1.1 If-Match no match: 412", "GET", []string{`If-Match: "x"`}, withTag, SendPreconditionFailed},
		{"§13.1.1 If-Match uses strong comparison: weak stored tag fails", "GET", []string{`If-Match: "v1"`}, weakTag, SendPreconditionFailed},
		{"§13.1.1 If-Match: * with a stored response: full", "GET", []string{"If-Match: *"}, noLM, SendFull},
		{"§13.1.1 If-Match without a stored ETag: 412", "GET", []string{`If-Match: "v1"`}, noLM, SendPreconditionFailed},
		{"§13.1.4 If-Unmodified-Since after Last-Modified: full", "GET", []string{"If-Unmodified-Since: " + date(-h)}, withTag, SendFull},
		{"§13.1.4 If-Unmodified-Since before Last-Modified: 412", "GET", []string{"If-Unmodified-Since: " + date(-3*h)}, withTag, SendPreconditionFailed},
		{"§13.1.4 invalid If-Unmodified-Since ignored", "GET", []string{"If-Unmodified-Since: soon"}, withTag, SendFull},
		{"§13.2.2 If-Unmodified-Since ignored when If-Match is present", "GET", []string{`If-Match: "v1"`, "If-Unmodified-Since: " + date(-3*h)}, withTag, SendFull},
		{"§13.1.2 If-None-Match match: 304", "GET", []string{`If-None-Match: "v1"`}, withTag, SendNotModified},
		{"§13.1.2 If-None-Match uses weak comparison", "GET", []string{`If-None-Match: W/"v1"`}, withTag, SendNotModified},
		{"§13.1.2 If-None-Match weak stored tag matches", "HEAD", []string{`If-None-Match: "v1"`}, weakTag, SendNotModified},
		{"§13.1.2 If-None-Match no match: full", "GET", []string{`If-None-Match: "v0", "v2"`}, withTag, SendFull},
		{"§13.1.2 If-None-Match: * : 304", "GET", []string{"If-None-Match: *"}, noLM, SendNotModified},
		{"§13.1.2 If-None-Match match on another method: 412", "DELETE", []string{`If-None-Match: "v1"`}, withTag, SendPreconditionFailed},
		{"§13.1.2 malformed If-None-Match matches nothing", "GET", []string{`If-None-Match: v1`}, withTag, SendFull},
		{"§13.1.2 entity-tags with commas inside", "GET", []string{`If-None-Match: "a,b", "v1"`}, withTag, SendNotModified},
		{"§13.1.3 If-Modified-Since at Last-Modified: 304", "GET", []string{"If-Modified-Since: " + date(-2*h)}, withTag, SendNotModified},
		{"§13.1.3 If-Modified-Since before Last-Modified: full", "GET", []string{"If-Modified-Since: " + date(-3*h)}, withTag, SendFull},
		{"§13.2.2 If-Modified-Since ignored with If-None-Match", "GET", []string{`If-None-Match: "v0"`, "If-Modified-Since: " + date(-h)}, withTag, SendFull},
		{"§13.1.3 If-Modified-Since only for GET and HEAD", "POST", []string{"If-Modified-Since: " + date(-h)}, withTag, SendFull},
		{"§13.1.3 If-Modified-Since repeated identically counts once", "GET", []string{"If-Modified-Since: " + date(-h), "If-Modified-Since: " + date(-h)}, withTag, SendNotModified},
		{"§13.1.3 If-Modified-Since with differing lines ignored", "GET", []string{"If-Modified-Since: " + date(-h), "If-Modified-Since: " + date(-3*h)}, withTag, SendFull},
		{"§13.1.3 invalid If-Modified-Since ignored", "GET", []string{"If-Modified-Since: 0"}, withTag, SendFull},
		{"RFC 9111 §4.3.2 If-Modified-Since without Last-Modified: Date used", "GET", []string{"If-Modified-Since: " + date(-h)}, noLM, SendNotModified},
		{"RFC 9111 §4.3.2 If-Modified-Since before Date: full", "GET", []string{"If-Modified-Since: " + date(-2*h)}, noLM, SendFull},
		{"§13.2.2 If-Match fails before If-None-Match is looked at", "GET", []string{`If-Match: "x"`, `If-None-Match: "v1"`}, withTag, SendPreconditionFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EvaluateConditional(newReq(t, tt.method, tt.reqH...), stored(t, 200, tt.stored...)); got != tt.want {
				t.Errorf("EvaluateConditional = %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("RFC 9111 §4.3.2 without Last-Modified or Date: the receipt time", func(t *testing.T) {
		m := stored(t, 200)
		if got := EvaluateConditional(newReq(t, "GET", "If-Modified-Since: "+date(0)), m); got != SendNotModified {
			t.Errorf("at receipt: %v", got)
		}
		if got := EvaluateConditional(newReq(t, "GET", "If-Modified-Since: "+date(-time.Second)), m); got != SendFull {
			t.Errorf("before receipt: %v", got)
		}
	})
}

// TestNotModified: RFC 9110 §15.4.5, the fields of a 304, and RFC 9111 §5.1, Age.
func TestNotModified(t *testing.T) {
	tests := []struct {
		name   string
		stored []string
		want   string
	}{
		{"§15.4.5 the required fields, no representation metadata",
			[]string{"Date: " + date(0), "Content-Type: text/html", "Content-Length: 100", "Cache-Control: max-age=60", `ETag: "a"`,
				"Expires: " + date(time.Minute), "Vary: Accept", "Content-Location: /a.html", "Last-Modified: " + date(-time.Hour), "X-Other: 1"},
			"Date: " + date(0) + "\r\nCache-Control: max-age=60\r\nETag: \"a\"\r\nExpires: " + date(time.Minute) +
				"\r\nVary: Accept\r\nContent-Location: /a.html\r\nAge: 5\r\n"},
		{"§15.4.5 Last-Modified when there is no ETag",
			[]string{"Date: " + date(0), "Last-Modified: " + date(-time.Hour)},
			"Date: " + date(0) + "\r\nLast-Modified: " + date(-time.Hour) + "\r\nAge: 5\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := stored(t, 200, tt.stored...)
			dst := newResp(t, 200, "X-Leftover: 1")
			NotModified(dst, m, t0.Add(5*time.Second))
			if dst.Status != 304 || dst.Header.String() != tt.want {
				t.Errorf("got %d\n%s\nwant\n%s", dst.Status, dst.Header.String(), tt.want)
			}
		})
	}
}

func TestPreconditionFailed(t *testing.T) {
	dst := newResp(t, 200, "X: 1")
	PreconditionFailed(dst, t0)
	if want := "Date: " + date(0) + "\r\nContent-Length: 0\r\n"; dst.Status != 412 || dst.Header.String() != want {
		t.Errorf("got %d\n%s", dst.Status, dst.Header.String())
	}
}
