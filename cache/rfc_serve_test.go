package cache

import (
	"testing"
	"time"
)

// TestServeHeader: RFC 9111 §5.1 (Age on a response from cache) and §3.1 (fields not
// sent from storage).
func TestServeHeader(t *testing.T) {
	tests := []struct {
		name   string
		stored []string
		now    time.Duration
		want   string
	}{
		{"§5.1 Age added",
			[]string{"Date: " + date(0), "Cache-Control: max-age=60"}, 7 * time.Second,
			"Date: " + date(0) + "\r\nCache-Control: max-age=60\r\nAge: 7\r\nContent-Length: 100\r\n"},
		{"§5.1 stored Age replaced by the current age",
			[]string{"Date: " + date(0), "Age: 100", "Cache-Control: max-age=600"}, 30 * time.Second,
			"Date: " + date(0) + "\r\nAge: 130\r\nCache-Control: max-age=600\r\nContent-Length: 100\r\n"},
		{"§3.1 hop-by-hop and no-cache fields never sent from storage",
			[]string{"Date: " + date(0), "Connection: X-Hop", "X-Hop: 1", "Keep-Alive: 1", `Cache-Control: no-cache="Set-Cookie"`, "Set-Cookie: a"}, 0,
			"Date: " + date(0) + "\r\nCache-Control: no-cache=\"Set-Cookie\"\r\nAge: 0\r\nContent-Length: 100\r\n"},
		{"RFC 9110 §8.6 Content-Length from the stored size",
			[]string{"Date: " + date(0), "Content-Length: 99"}, 0,
			"Date: " + date(0) + "\r\nContent-Length: 100\r\nAge: 0\r\n"},
		{"RFC 9110 §8.6 Content-Length added for a body stored from a chunked response",
			[]string{"Date: " + date(0), "Transfer-Encoding: chunked"}, 0,
			"Date: " + date(0) + "\r\nAge: 0\r\nContent-Length: 100\r\n"},
		{"§5.1 Age rounds down to whole seconds",
			[]string{"Date: " + date(0)}, 1999 * time.Millisecond,
			"Date: " + date(0) + "\r\nAge: 1\r\nContent-Length: 100\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := stored(t, 200, tt.stored...)
			before := m.Response.Header.String()
			dst := newResp(t, 500, "X-Leftover: 1")
			ServeHeader(dst, m, t0.Add(tt.now))
			if dst.Status != 200 || dst.Header.String() != tt.want {
				t.Errorf("got %d\n%s\nwant\n%s", dst.Status, dst.Header.String(), tt.want)
			}
			if m.Response.Header.String() != before {
				t.Error("ServeHeader changed the stored head")
			}
		})
	}
}

// TestServeHeader204: RFC 9110 §8.6, no Content-Length on a 204.
func TestServeHeader204(t *testing.T) {
	m := stored(t, 204, "Date: "+date(0), "Cache-Control: max-age=60")
	m.Size = 0
	dst := newResp(t, 0)
	ServeHeader(dst, m, t0)
	if dst.Status != 204 || dst.Header.Has("Content-Length") {
		t.Errorf("got %d\n%s", dst.Status, dst.Header.String())
	}
}

func BenchmarkServeHeader(b *testing.B) {
	m := stored(b, 200, "Date: "+date(0), "Content-Type: text/html", "Content-Length: 1024",
		"Cache-Control: public, max-age=3600", "ETag: \"abc\"", "Last-Modified: "+date(-time.Hour), "Vary: Accept-Encoding")
	m.Size = 1024
	now := t0.Add(30 * time.Second)
	dst := newResp(b, 0)
	ServeHeader(dst, m, now)
	b.ReportAllocs()
	for b.Loop() {
		ServeHeader(dst, m, now)
	}
}
