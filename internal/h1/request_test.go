package h1

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// summary renders the parsed request for table comparisons.
func (h *RequestHead) summary() string {
	host := "<nil>"
	if h.Host != nil {
		host = string(h.Host)
	}
	up := "<nil>"
	if h.Upgrade != nil {
		up = string(h.Upgrade)
	}
	return fmt.Sprintf("%s %s 1.%d host=%s body=%v cl=%d ka=%v exp=%v up=%s n=%d",
		h.Method, h.Target, h.Minor, host, h.Body, h.ContentLength, h.KeepAlive, h.Expect100, up, len(h.Fields))
}

// statusOf returns the Status of an *Error, 0 for nil, -1 for other errors.
func statusOf(err error) int {
	var e *Error
	switch {
	case err == nil:
		return 0
	case errors.As(err, &e):
		return e.Status
	}
	return -1
}

func TestParseRequestHead(t *testing.T) {
	long := strings.Repeat("a", 9000)
	manyFields := strings.Repeat("X-A: b\r\n", 101)
	tests := []struct {
		name   string
		in     string
		status int    // expected *Error status, 0 for success
		want   string // summary on success
	}{
		{"simple", "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", 0, "GET / 1.1 host=example.com body=none cl=0 ka=true exp=false up=<nil> n=1"},
		{"http10 no host", "GET /x HTTP/1.0\r\n\r\n", 0, "GET /x 1.0 host=<nil> body=none cl=0 ka=false exp=false up=<nil> n=0"},
		{"http10 keep-alive", "GET /x HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 0, "GET /x 1.0 host=<nil> body=none cl=0 ka=true exp=false up=<nil> n=1"},
		{"connection close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, CLOSE\r\n\r\n", 0, "GET / 1.1 host=a body=none cl=0 ka=false exp=false up=<nil> n=2"},
		{"bare LF", "GET / HTTP/1.1\nHost: a\n\n", 0, "GET / 1.1 host=a body=none cl=0 ka=true exp=false up=<nil> n=1"},
		{"leading empty lines", "\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 0, "GET / 1.1 host=a body=none cl=0 ka=true exp=false up=<nil> n=1"},
		{"content-length", "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", 0, "POST /p 1.1 host=a body=length cl=5 ka=true exp=false up=<nil> n=2"},
		{"content-length zero", "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 0, "POST /p 1.1 host=a body=none cl=0 ka=true exp=false up=<nil> n=2"},
		{"content-length list same", "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", 0, "POST /p 1.1 host=a body=length cl=5 ka=true exp=false up=<nil> n=2"},
		{"content-length repeated same", "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n", 0, "POST /p 1.1 host=a body=length cl=5 ka=true exp=false up=<nil> n=3"},
		{"content-length 18 digits", "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 999999999999999999\r\n\r\n", 0, "POST /p 1.1 host=a body=length cl=999999999999999999 ka=true exp=false up=<nil> n=2"},
		{"chunked", "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 0, "POST /p 1.1 host=a body=chunked cl=0 ka=true exp=false up=<nil> n=2"},
		{"chunked HTAB OWS", "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\r\n\r\n", 0, "POST /p 1.1 host=a body=chunked cl=0 ka=true exp=false up=<nil> n=2"},
		{"chunked upper case", "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n", 0, "POST /p 1.1 host=a body=chunked cl=0 ka=true exp=false up=<nil> n=2"},
		{"chunked empty elements", "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked ,\r\n\r\n", 0, "POST /p 1.1 host=a body=chunked cl=0 ka=true exp=false up=<nil> n=2"},
		{"expect", "PUT /p HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n", 0, "PUT /p 1.1 host=a body=length cl=3 ka=true exp=true up=<nil> n=3"},
		{"upgrade", "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 0, "GET /ws 1.1 host=a body=none cl=0 ka=true exp=false up=websocket n=3"},
		{"upgrade without connection", "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n", 0, "GET /ws 1.1 host=a body=none cl=0 ka=true exp=false up=<nil> n=2"},
		{"absolute form", "GET http://b/x?y HTTP/1.1\r\nHost: a\r\n\r\n", 0, "GET http://b/x?y 1.1 host=a body=none cl=0 ka=true exp=false up=<nil> n=1"},
		{"absolute form https port", "GET HTTPS://b:8443 HTTP/1.1\r\nHost: a\r\n\r\n", 0, "GET HTTPS://b:8443 1.1 host=a body=none cl=0 ka=true exp=false up=<nil> n=1"},
		{"connect", "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", 0, "CONNECT a.example:443 1.1 host=a.example:443 body=none cl=0 ka=true exp=false up=<nil> n=1"},
		{"options star", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 0, "OPTIONS * 1.1 host=a body=none cl=0 ka=true exp=false up=<nil> n=1"},
		{"host ipv6 port", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", 0, "GET / 1.1 host=[::1]:8080 body=none cl=0 ka=true exp=false up=<nil> n=1"},
		{"host empty", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 0, "GET / 1.1 host= body=none cl=0 ka=true exp=false up=<nil> n=1"},
		{"value OWS trimmed and obs-text", "GET / HTTP/1.1\r\nHost: a\r\nX: \t v\xff v \t\r\n\r\n", 0, "GET / 1.1 host=a body=none cl=0 ka=true exp=false up=<nil> n=2"},

		// request line
		{"lower-case method ok", "get / HTTP/1.1\r\nHost: a\r\n\r\n", 0, "get / 1.1 host=a body=none cl=0 ka=true exp=false up=<nil> n=1"},
		{"empty method", " / HTTP/1.1\r\nHost: a\r\n\r\n", 400, ""},
		{"method bad char", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, ""},
		{"two spaces", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400, ""},
		{"tab separator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, ""},
		{"trailing space", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400, ""},
		{"missing version", "GET /\r\nHost: a\r\n\r\n", 400, ""},
		{"target non-vchar", "GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 400, ""},
		{"target obs-text", "GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n", 400, ""},
		{"target relative", "GET x HTTP/1.1\r\nHost: a\r\n\r\n", 400, ""},
		{"star not options", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400, ""},
		{"connect without port", "CONNECT a.example HTTP/1.1\r\nHost: a\r\n\r\n", 400, ""},
		{"connect origin form", "CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", 400, ""},
		{"HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, ""},
		{"HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505, ""},
		{"HTTP/0.9", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505, ""},
		{"lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n", 400, ""},
		{"version junk", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400, ""},
		{"bare CR in request line", "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", 400, ""},
		{"bare CR line end", "GET / HTTP/1.1\rHost: a\r\n\r\n", 400, ""},
		{"authority form not CONNECT", "GET host:80 HTTP/1.1\r\nHost: a\r\n\r\n", 400, ""},
		{"other scheme", "GET mailto:x HTTP/1.1\r\nHost: a\r\n\r\n", 400, ""},
		{"absolute no host", "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", 400, ""},
		{"absolute userinfo", "GET http://u@b/x HTTP/1.1\r\nHost: a\r\n\r\n", 400, ""},
		{"absolute bad port", "GET http://b:x/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, ""},
		{"mistyped version", "GET / HTTX/1.1\r\nHost: a\r\n\r\n", 400, ""},
		{"space in target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400, ""},
		{"method too long", strings.Repeat("M", 9000) + " / HTTP/1.1\r\nHost: a\r\n\r\n", 501, ""},
		{"method too long incomplete", strings.Repeat("M", MaxMethodBytes+1), 501, ""},
		{"method at limit", strings.Repeat("M", MaxMethodBytes) + " / HTTP/1.1\r\nHost: a\r\n\r\n", 0, strings.Repeat("M", MaxMethodBytes) + " / 1.1 host=a body=none cl=0 ka=true exp=false up=<nil> n=1"},

		// field lines
		{"bare CR in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400, ""},
		{"bare CR before CRLF", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\r\n\r\n", 400, ""},
		{"bare CR as last line", "GET / HTTP/1.1\r\nHost: a\r\n\r\r\n", 400, ""},
		{"NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400, ""},
		{"NUL in name", "GET / HTTP/1.1\r\nHost: a\r\nX\x00: b\r\n\r\n", 400, ""},
		{"CTL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n", 400, ""},
		{"DEL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n", 400, ""},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400, ""},
		{"obs-fold tab", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n", 400, ""},
		{"first field starts with SP", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400, ""},
		{"no colon", "GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400, ""},
		{"empty name", "GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n", 400, ""},
		{"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400, ""},
		{"TE space before colon", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", 400, ""},
		{"name bad char", "GET / HTTP/1.1\r\nHost: a\r\nX(y): b\r\n\r\n", 400, ""},

		// Host
		{"missing host 1.1", "GET / HTTP/1.1\r\nX: a\r\n\r\n", 400, ""},
		{"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400, ""},
		{"host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, ""},
		{"host with at", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400, ""},
		{"host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, ""},
		{"host bad port", "GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", 400, ""},
		{"host bad ipv6", "GET / HTTP/1.1\r\nHost: [::g]\r\n\r\n", 400, ""},

		// Content-Length
		{"CL differing list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", 400, ""},
		{"CL differing fields", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400, ""},
		{"CL plus", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 400, ""},
		{"CL minus", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n", 400, ""},
		{"CL empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400, ""},
		{"CL empty element", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,,5\r\n\r\n", 400, ""},
		{"CL hex", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", 400, ""},
		{"CL inner space", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n", 400, ""},
		{"CL 19 digits", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000000000000000\r\n\r\n", 400, ""},
		{"CL overflow", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400, ""},

		// Transfer-Encoding and smuggling
		{"CL.TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n", 400, ""},
		{"TE.CL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n", 400, ""},
		{"TE chunked, identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 400, ""},
		{"TE identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 501, ""},
		{"TE xchunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", 501, ""},
		{"TE gzip, chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, ""},
		{"TE chunked twice in list", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400, ""},
		{"TE duplicated fields", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400, ""},
		{"TE second field other", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", 400, ""},
		{"TE empty", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", 400, ""},
		{"TE only commas", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , ,\r\n\r\n", 400, ""},
		{"TE invalid token", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=1\r\n\r\n", 400, ""},
		{"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, ""},
		{"TE vertical tab", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0bchunked\r\n\r\n", 400, ""},

		// limits
		{"request line too long", "GET /" + long + " HTTP/1.1\r\nHost: a\r\n\r\n", 414, ""},
		{"request line too long incomplete", "GET /" + long, 414, ""},
		{"field line too long", "GET / HTTP/1.1\r\nHost: a\r\nX: " + long + "\r\n\r\n", 431, ""},
		{"field line too long incomplete", "GET / HTTP/1.1\r\nHost: a\r\nX: " + long, 431, ""},
		{"too many fields", "GET / HTTP/1.1\r\nHost: a\r\n" + manyFields + "\r\n", 431, ""},
		{"head too large", "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X: "+strings.Repeat("v", 8000)+"\r\n", 5) + "\r\n", 431, ""},
		{"head too large incomplete", "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X: "+strings.Repeat("v", 8000)+"\r\n", 5), 431, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h RequestHead
			n, err := ParseRequestHead([]byte(tt.in), &h, nil)
			if got := statusOf(err); got != tt.status {
				t.Fatalf("status = %d (err %v), want %d", got, err, tt.status)
			}
			if err != nil {
				if n != 0 {
					t.Errorf("n = %d on error", n)
				}
				return
			}
			if n != len(tt.in) {
				t.Errorf("n = %d, want %d", n, len(tt.in))
			}
			if got := h.summary(); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestParseRequestHeadFields(t *testing.T) {
	in := "GET / HTTP/1.1\r\nHost: a\r\nX-Case:  v1 \r\nx-case:v2\r\nEmpty:\r\n\r\nNEXT"
	var h RequestHead
	n, err := ParseRequestHead([]byte(in), &h, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(in)-4 {
		t.Errorf("n = %d, want %d", n, len(in)-4)
	}
	want := [][2]string{{"Host", "a"}, {"X-Case", "v1"}, {"x-case", "v2"}, {"Empty", ""}}
	if len(h.Fields) != len(want) {
		t.Fatalf("got %d fields, want %d", len(h.Fields), len(want))
	}
	for i, w := range want {
		if string(h.Fields[i].Name) != w[0] || string(h.Fields[i].Value) != w[1] {
			t.Errorf("field %d = %q: %q, want %q: %q", i, h.Fields[i].Name, h.Fields[i].Value, w[0], w[1])
		}
	}
}

func TestParseRequestHeadIncomplete(t *testing.T) {
	full := "\r\nPOST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"
	var h RequestHead
	for i := 0; i < len(full); i++ {
		if _, err := ParseRequestHead([]byte(full[:i]), &h, nil); err != ErrIncomplete {
			t.Fatalf("prefix %d: err = %v, want ErrIncomplete", i, err)
		}
	}
	if n, err := ParseRequestHead([]byte(full), &h, nil); err != nil || n != len(full) {
		t.Fatalf("full: n=%d err=%v", n, err)
	}
}

func TestParseRequestHeadLimits(t *testing.T) {
	fields := &Limits{MaxFields: 2}
	lines := &Limits{MaxLineBytes: 32}
	head := &Limits{MaxHeadBytes: 64}
	// "GET / HTTP/1.1\r\n" + "Host: a\r\n" is 25 bytes, "X: " + n + "\r\n" is n+5,
	// the final CRLF 2: a head of 32+n bytes.
	x := func(n int) string { return "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("b", n) + "\r\n\r\n" }
	tests := []struct {
		name   string
		lim    *Limits
		in     string
		status int
	}{
		{"two fields", fields, "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\r\n", 0},
		{"three fields", fields, "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\nY: c\r\n\r\n", 431},
		{"line 32", lines, x(29), 0},
		{"line 33", lines, x(30), 431},
		{"request line 32", lines, "GET /" + strings.Repeat("b", 18) + " HTTP/1.1\r\nHost: a\r\n\r\n", 0},
		{"request line 33", lines, "GET /" + strings.Repeat("b", 19) + " HTTP/1.1\r\nHost: a\r\n\r\n", 414},
		{"head 64", head, x(32), 0},
		{"head 65", head, x(33), 431},
		{"head 65 with leading CRLF", head, "\r\n" + x(32), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h RequestHead
			_, err := ParseRequestHead([]byte(tt.in), &h, tt.lim)
			if got := statusOf(err); got != tt.status {
				t.Fatalf("status = %d (err %v), want %d", got, err, tt.status)
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	var h RequestHead
	_, err := ParseRequestHead([]byte("GET / HTTP/1.1\r\nHost: a\r\nX: secret\x00\r\n\r\n"), &h, nil)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(e.Error(), "secret") || e.Offset != 34 {
		t.Errorf("Error() = %q, offset %d", e.Error(), e.Offset)
	}
}

// TestNotHTTP checks which bad request lines count as not HTTP/1.x at all (closed
// without an answer) and which are mistyped HTTP (answered with 400).
func TestNotHTTP(t *testing.T) {
	for in, want := range map[string]bool{
		"INVALID CONNECTION PREFACE\r\n\r\n":   true,
		"GET / HTTX/1.1\r\nHost: a\r\n\r\n":    false,
		"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n": false,
		"GET / http/1.1\r\nHost: a\r\n\r\n":    false,
	} {
		var h RequestHead
		_, err := ParseRequestHead([]byte(in), &h, nil)
		var e *Error
		if !errors.As(err, &e) || e.NotHTTP() != want {
			t.Errorf("%q: err %v, NotHTTP want %v", in, err, want)
		}
	}
}

func TestValidators(t *testing.T) {
	tests := []struct {
		name string
		fn   func(string) bool
		in   string
		want bool
	}{
		{"name ok", ValidFieldName, "X-Forwarded-For", true},
		{"name empty", ValidFieldName, "", false},
		{"name space", ValidFieldName, "X A", false},
		{"name colon", ValidFieldName, "X:", false},
		{"name CR", ValidFieldName, "X\r", false},
		{"value ok", ValidFieldValue, "a b\tc\xff", true},
		{"value empty", ValidFieldValue, "", true},
		{"value CR", ValidFieldValue, "a\rb", false},
		{"value LF", ValidFieldValue, "a\nb", false},
		{"value NUL", ValidFieldValue, "a\x00", false},
		{"value leading SP", ValidFieldValue, " a", false},
		{"value trailing tab", ValidFieldValue, "a\t", false},
		{"method ok", ValidMethod, "PATCH", true},
		{"method space", ValidMethod, "GE T", false},
		{"method empty", ValidMethod, "", false},
		{"target ok", ValidTarget, "/a?b=c#d", true},
		{"target empty", ValidTarget, "", false},
		{"target space", ValidTarget, "/a b", false},
		{"target CRLF", ValidTarget, "/a\r\nX: y", false},
		{"target obs-text", ValidTarget, "/\xff", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.fn(tt.in); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestContentLengthPlain(t *testing.T) {
	tests := []struct {
		fields string
		plain  bool
	}{
		{"Content-Length: 5\r\n", true},
		{"Content-Length: 0\r\n", true},
		{"content-length:  1024 \r\n", true},
		{"Content-Length: 05\r\n", false},
		{"Content-Length: 5, 5\r\n", false},
		{"Content-Length: 5\r\nContent-Length: 5\r\n", false},
		{"X-A: b\r\n", false},
	}
	for _, tt := range tests {
		var req RequestHead
		if _, err := ParseRequestHead([]byte("POST / HTTP/1.1\r\nHost: a\r\n"+tt.fields+"\r\n"), &req, nil); err != nil {
			t.Fatalf("request with %q: %v", tt.fields, err)
		}
		var resp ResponseHead
		if _, err := ParseResponseHead([]byte("HTTP/1.1 200 OK\r\n"+tt.fields+"\r\n"), []byte("GET"), &resp, nil); err != nil {
			t.Fatalf("response with %q: %v", tt.fields, err)
		}
		if req.ContentLengthPlain != tt.plain || resp.ContentLengthPlain != tt.plain {
			t.Errorf("%q: request %v, response %v, want %v", tt.fields, req.ContentLengthPlain, resp.ContentLengthPlain, tt.plain)
		}
		req.Reset()
		resp.Reset()
		if req.ContentLengthPlain || resp.ContentLengthPlain {
			t.Errorf("%q: Reset kept ContentLengthPlain", tt.fields)
		}
	}
}
