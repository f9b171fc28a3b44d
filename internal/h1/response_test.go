package h1

import (
	"fmt"
	"strings"
	"testing"
)

func (h *ResponseHead) summary() string {
	return fmt.Sprintf("1.%d %d %q body=%v cl=%d ka=%v n=%d",
		h.Minor, h.Status, h.Reason, h.Body, h.ContentLength, h.KeepAlive, len(h.Fields))
}

func TestParseResponseHead(t *testing.T) {
	tests := []struct {
		name   string
		method string
		in     string
		status int // 0 or 502
		want   string
	}{
		{"length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", 0, `1.1 200 "OK" body=length cl=12 ka=true n=1`},
		{"length zero", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0, `1.1 200 "OK" body=none cl=0 ka=true n=1`},
		{"chunked", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0, `1.1 200 "OK" body=chunked cl=0 ka=true n=1`},
		{"gzip, chunked", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 0, `1.1 200 "OK" body=chunked cl=0 ka=true n=1`},
		{"chunked, gzip", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 0, `1.1 200 "OK" body=until-close cl=0 ka=false n=1`},
		{"TE gzip", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 0, `1.1 200 "OK" body=until-close cl=0 ka=false n=1`},
		{"until close", "GET", "HTTP/1.1 200 OK\r\n\r\n", 0, `1.1 200 "OK" body=until-close cl=0 ka=false n=0`},
		{"head", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", 0, `1.1 200 "OK" body=none cl=12 ka=true n=1`},
		{"head chunked", "HEAD", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0, `1.1 200 "OK" body=none cl=0 ka=true n=1`},
		{"connect 200", "CONNECT", "HTTP/1.1 200 Connection established\r\n\r\n", 0, `1.1 200 "Connection established" body=none cl=0 ka=true n=0`},
		{"connect 407", "CONNECT", "HTTP/1.1 407 Auth\r\nContent-Length: 3\r\n\r\n", 0, `1.1 407 "Auth" body=length cl=3 ka=true n=1`},
		{"100", "GET", "HTTP/1.1 100 Continue\r\n\r\n", 0, `1.1 100 "Continue" body=none cl=0 ka=true n=0`},
		{"101", "GET", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", 0, `1.1 101 "Switching Protocols" body=none cl=0 ka=true n=2`},
		{"204", "GET", "HTTP/1.1 204 No Content\r\n\r\n", 0, `1.1 204 "No Content" body=none cl=0 ka=true n=0`},
		{"304 with CL", "GET", "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", 0, `1.1 304 "Not Modified" body=none cl=100 ka=true n=1`},
		{"no reason", "GET", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", 0, `1.1 200 "" body=none cl=0 ka=true n=1`},
		{"no reason with SP", "GET", "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", 0, `1.1 200 "" body=none cl=0 ka=true n=1`},
		{"reason obs-text", "GET", "HTTP/1.1 200 \xe4 ok\r\nContent-Length: 0\r\n\r\n", 0, "1.1 200 \"\\xe4 ok\" body=none cl=0 ka=true n=1"},
		{"http10", "GET", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", 0, `1.0 200 "OK" body=length cl=1 ka=false n=1`},
		{"http10 keep-alive", "GET", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n", 0, `1.0 200 "OK" body=length cl=1 ka=true n=2`},
		{"close", "GET", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n", 0, `1.1 200 "OK" body=length cl=1 ka=false n=2`},
		{"CL list same", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\n\r\n", 0, `1.1 200 "OK" body=length cl=7 ka=true n=1`},

		{"CL differing", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nContent-Length: 8\r\n\r\n", 502, ""},
		{"CL and TE", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n", 502, ""},
		{"CL and TE on HEAD", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n", 502, ""},
		{"CL bad", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 7a\r\n\r\n", 502, ""},
		{"TE chunked twice", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 502, ""},
		{"TE empty", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\n\r\n", 502, ""},
		{"status 99", "GET", "HTTP/1.1 099 X\r\n\r\n", 502, ""},
		{"status 600", "GET", "HTTP/1.1 600 X\r\n\r\n", 502, ""},
		{"status two digits", "GET", "HTTP/1.1 20 OK\r\n\r\n", 502, ""},
		{"status four digits", "GET", "HTTP/1.1 2000 OK\r\n\r\n", 502, ""},
		{"HTTP/2.0", "GET", "HTTP/2.0 200 OK\r\n\r\n", 502, ""},
		{"lower-case version", "GET", "http/1.1 200 OK\r\n\r\n", 502, ""},
		{"reason CTL", "GET", "HTTP/1.1 200 O\x01K\r\n\r\n", 502, ""},
		{"obs-fold", "GET", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n", 502, ""},
		{"space before colon", "GET", "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", 502, ""},
		{"bare CR", "GET", "HTTP/1.1 200 OK\r\nX: a\rContent-Length: 0\r\n\r\n", 502, ""},
		{"NUL", "GET", "HTTP/1.1 200 OK\r\nX: \x00\r\n\r\n", 502, ""},
		{"leading empty line", "GET", "\r\nHTTP/1.1 200 OK\r\n\r\n", 502, ""},
		{"too many fields", "GET", "HTTP/1.1 200 OK\r\n" + strings.Repeat("X: y\r\n", 101) + "\r\n", 502, ""},
		{"line too long", "GET", "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("y", 9000) + "\r\n\r\n", 502, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h ResponseHead
			n, err := ParseResponseHead([]byte(tt.in), []byte(tt.method), &h, nil)
			if got := statusOf(err); got != tt.status {
				t.Fatalf("status = %d (err %v), want %d", got, err, tt.status)
			}
			if err != nil {
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

func TestParseResponseHeadIncomplete(t *testing.T) {
	full := "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
	var h ResponseHead
	for i := 0; i < len(full); i++ {
		if _, err := ParseResponseHead([]byte(full[:i]), nil, &h, nil); err != ErrIncomplete {
			t.Fatalf("prefix %d: err = %v, want ErrIncomplete", i, err)
		}
	}
}

func TestStatusText(t *testing.T) {
	for code, want := range map[int]string{200: "OK", 404: "Not Found", 431: "Request Header Fields Too Large", 599: ""} {
		if got := StatusText(code); got != want {
			t.Errorf("StatusText(%d) = %q, want %q", code, got, want)
		}
	}
}
