package cache

import (
	"testing"
	"time"
)

// TestHitPathAllocs checks the promise the hit path rests on: the functions a cache
// calls for every request served from storage allocate nothing.
func TestHitPathAllocs(t *testing.T) {
	req := newReq(t, "GET", "User-Agent: curl/8", "Accept-Encoding: gzip, br", `If-None-Match: "x"`,
		"If-Modified-Since: "+date(-2*time.Hour), "Range: bytes=0-9, 50-", "Cache-Control: max-age=600", "Pragma: no-cache")
	m := stored(t, 200, "Date: "+date(0), "Content-Type: text/html", "Content-Length: 100",
		`Cache-Control: public, max-age=3600, no-cache="Set-Cookie", stale-if-error=60`, `ETag: "abc"`,
		"Last-Modified: "+date(-time.Hour), "Vary: Accept-Encoding", "Age: 5")
	now := t0.Add(30 * time.Second)
	dst := newResp(t, 0)
	ServeHeader(dst, m, now)
	key := make([]byte, 0, 256)
	ranges := make([]ByteRange, 0, 4)
	p := Policy{}
	tests := []struct {
		name string
		f    func()
	}{
		{"ParseRequestCacheControl", func() { _ = ParseRequestCacheControl(&req.Header) }},
		{"Policy.Decide", func() {
			if p.Decide(req, m, now).Action != ActionFresh {
				t.Fatal("not fresh")
			}
		}},
		{"CurrentAge", func() { _ = CurrentAge(m, now) }},
		{"VarianceKey", func() { _, _ = VarianceKey(key[:0], req, &m.Response) }},
		{"HasVary", func() { _ = HasVary(&m.Response) }},
		{"EvaluateConditional", func() { _ = EvaluateConditional(req, m) }},
		{"IfRangeMatches", func() { _ = IfRangeMatches(req, m) }},
		{"Policy.ParseRange", func() { _, _ = p.ParseRange(ranges[:0], req.Header.Get("Range"), 100) }},
		{"ServeHeader", func() { ServeHeader(dst, m, now) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, tt.f); n != 0 {
				t.Errorf("%v allocations per call", n)
			}
		})
	}
}
