package cache

import (
	"testing"
	"time"
)

// TestAddConditionals: RFC 9111 §4.3.1, the validators a cache sends.
func TestAddConditionals(t *testing.T) {
	tests := []struct {
		name      string
		reqH      []string
		stored    [][]string
		wantINM   string
		wantIMS   string
		wantAdded bool
	}{
		{"§4.3.1 ETag becomes If-None-Match, Last-Modified If-Modified-Since", nil,
			[][]string{{`ETag: "v1"`, "Last-Modified: " + date(-time.Hour)}}, `"v1"`, date(-time.Hour), true},
		{"§4.3.1 weak ETag sent as is", nil, [][]string{{`ETag: W/"v1"`}}, `W/"v1"`, "", true},
		{"§4.3.1 only Last-Modified", nil, [][]string{{"Last-Modified: " + date(-time.Hour)}}, "", date(-time.Hour), true},
		{"§4.3.1 several stored responses: all ETags, no If-Modified-Since", nil,
			[][]string{{`ETag: "a"`, "Last-Modified: " + date(-time.Hour)}, {`ETag: "b"`}, {"Last-Modified: " + date(-time.Hour)}}, `"a", "b"`, "", true},
		{"§4.3.1 no validator: nothing to add", nil, [][]string{{"Content-Type: text/plain"}}, "", "", false},
		{"§4.3.1 invalid Last-Modified not sent", nil, [][]string{{"Last-Modified: yesterday"}}, "", "", false},
		{"§4.3.2 the client's own conditionals are replaced", []string{`If-None-Match: "client"`, "If-Modified-Since: " + date(-2*time.Hour)},
			[][]string{{`ETag: "v1"`}}, `"v1"`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newReq(t, "GET", tt.reqH...)
			var metas []*Meta
			for _, s := range tt.stored {
				metas = append(metas, stored(t, 200, s...))
			}
			added := AddConditionals(req, metas...)
			if added != tt.wantAdded || req.Header.Get("If-None-Match") != tt.wantINM || req.Header.Get("If-Modified-Since") != tt.wantIMS {
				t.Errorf("AddConditionals = %v; header\n%s", added, req.Header.String())
			}
			if len(req.Header.Values("If-None-Match")) > 1 {
				t.Errorf("several If-None-Match lines:\n%s", req.Header.String())
			}
		})
	}
}

// TestSelect304: RFC 9111 §4.3.4, which stored response a 304 selects.
func TestSelect304(t *testing.T) {
	lm, lm2 := "Last-Modified: "+date(-time.Hour), "Last-Modified: "+date(-2*time.Hour)
	tests := []struct {
		name   string
		resp   []string
		stored [][]string
		times  []time.Duration // ResponseTime of each stored response, relative to t0
		want   int
	}{
		{"§4.3.4 strong ETag selects the same strong ETag", []string{`ETag: "b"`}, [][]string{{`ETag: "a"`}, {`ETag: "b"`}}, nil, 1},
		{"§4.3.4 a 304 carrying a new ETag selects nothing", []string{`ETag: "v2"`}, [][]string{{`ETag: "v1"`}}, nil, -1},
		{"§4.3.4 strong ETag never selects a weak one", []string{`ETag: "a"`}, [][]string{{`ETag: W/"a"`}}, nil, -1},
		{"§4.3.4 weak ETag: the most recent weak match", []string{`ETag: W/"a"`}, [][]string{{`ETag: "a"`}, {`ETag: W/"a"`}, {`ETag: "b"`}}, []time.Duration{-time.Minute, 0, time.Minute}, 1},
		{"§4.3.4 weak ETag: most recent of several", []string{`ETag: W/"a"`}, [][]string{{`ETag: W/"a"`}, {`ETag: W/"a"`}}, []time.Duration{time.Minute, 0}, 0},
		{"§4.3.4 Last-Modified only: the same date", []string{lm}, [][]string{{lm2}, {lm}}, nil, 1},
		{"§4.3.4 Last-Modified only: no same date", []string{lm}, [][]string{{lm2}}, nil, -1},
		{"§4.3.4 no validator, one stored response without one", nil, [][]string{{"Content-Type: a"}}, nil, 0},
		{"§4.3.4 no validator, stored response has one", nil, [][]string{{`ETag: "a"`}}, nil, -1},
		{"§4.3.4 no validator, several stored responses", nil, [][]string{{"X: 1"}, {"X: 2"}}, nil, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var metas []*Meta
			for i, s := range tt.stored {
				m := stored(t, 200, s...)
				if tt.times != nil {
					m.ResponseTime = t0.Add(tt.times[i])
				}
				metas = append(metas, m)
			}
			if got := Select304(newResp(t, 304, tt.resp...), metas...); got != tt.want {
				t.Errorf("Select304 = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestUpdate304: RFC 9111 §4.3.4 and §3.2, updating a stored head from a 304.
func TestUpdate304(t *testing.T) {
	tests := []struct {
		name   string
		stored []string
		resp   []string
		want   string
	}{
		{"§3.2 fields replaced, others kept, new ones added",
			[]string{"Date: " + date(-time.Hour), "Cache-Control: max-age=60", "Content-Type: text/plain", `ETag: "a"`, "X-Old: 1", "X-Old: 2"},
			[]string{"Date: " + date(0), "Cache-Control: max-age=600", `ETag: "a"`, "X-Old: 3", "X-New: 4"},
			"Content-Type: text/plain\r\nETag: \"a\"\r\nDate: " + date(0) + "\r\nCache-Control: max-age=600\r\nX-Old: 3\r\nX-New: 4\r\n"},
		{"§3.2 ETag and Content-MD5 describe the stored body: not updated",
			[]string{"Date: " + date(-time.Hour), `ETag: "a"`, "Content-MD5: AAAA"},
			[]string{"Date: " + date(0), `ETag: "b"`, "Content-MD5: BBBB"},
			"ETag: \"a\"\r\nContent-MD5: AAAA\r\nDate: " + date(0) + "\r\n"},
		{"§3.2 Content-Length, Content-Encoding, Content-Range and hop-by-hop fields not updated",
			[]string{"Date: " + date(-time.Hour), "Content-Length: 100", "Content-Encoding: gzip"},
			[]string{"Date: " + date(0), "Content-Length: 0", "Content-Encoding: br", "Content-Range: bytes 0-1/2", "Connection: X-Hop", "X-Hop: 1", "Keep-Alive: 5", "Transfer-Encoding: chunked"},
			"Content-Length: 100\r\nContent-Encoding: gzip\r\nDate: " + date(0) + "\r\n"},
		{"§4.2.3 a 304 without Age removes the stored Age, without Date dates it now",
			[]string{"Date: " + date(-time.Hour), "Age: 500", "Cache-Control: max-age=60"},
			[]string{"Cache-Control: max-age=60"},
			"Date: " + date(0) + "\r\nCache-Control: max-age=60\r\n"},
		{"§5.2.2.4 the updated no-cache field names are not stored",
			[]string{"Date: " + date(-time.Hour), "Set-Cookie: a=1"},
			[]string{"Date: " + date(0), `Cache-Control: no-cache="Set-Cookie"`, "Set-Cookie: b=2"},
			"Date: " + date(0) + "\r\nCache-Control: no-cache=\"Set-Cookie\"\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := stored(t, 200, tt.stored...)
			m.RequestTime, m.ResponseTime = t0.Add(-2*time.Hour), t0.Add(-time.Hour)
			Update304(m, newResp(t, 304, tt.resp...), t0.Add(-time.Second), t0)
			if got := m.Response.Header.String(); got != tt.want {
				t.Errorf("updated\n%s\nwant\n%s", got, tt.want)
			}
			if m.Response.Status != 200 || m.Size != 100 || !m.ResponseTime.Equal(t0) || !m.RequestTime.Equal(t0.Add(-time.Second)) {
				t.Errorf("meta = status %d size %d times %v %v", m.Response.Status, m.Size, m.RequestTime, m.ResponseTime)
			}
		})
	}
	t.Run("§4.3.4 the updated response is fresh again", func(t *testing.T) {
		m := stored(t, 200, "Date: "+date(-time.Hour), "Cache-Control: max-age=60", `ETag: "a"`)
		m.RequestTime, m.ResponseTime = t0.Add(-time.Hour), t0.Add(-time.Hour)
		req := newReq(t, "GET")
		if a := (Policy{}).Decide(req, m, t0).Action; a != ActionValidate {
			t.Fatalf("before: %v", a)
		}
		Update304(m, newResp(t, 304, "Date: "+date(0), `ETag: "a"`), t0, t0)
		if a := (Policy{}).Decide(req, m, t0.Add(time.Second)).Action; a != ActionFresh {
			t.Fatalf("after: %v", a)
		}
	})
}

// TestFreshenFromHEAD: RFC 9111 §4.3.5.
func TestFreshenFromHEAD(t *testing.T) {
	base := []string{"Date: " + date(-time.Hour), `ETag: "a"`, "Last-Modified: " + date(-2*time.Hour), "Cache-Control: max-age=60"}
	tests := []struct {
		name   string
		status int
		resp   []string
		want   HEADResult
	}{
		{"§4.3.5 matching validators and length: updated", 200, []string{"Date: " + date(0), `ETag: "a"`, "Content-Length: 100", "Cache-Control: max-age=120"}, HEADUpdated},
		{"§4.3.5 no validators in the HEAD response: updated", 200, []string{"Date: " + date(0)}, HEADUpdated},
		{"§4.3.5 different ETag: stale", 200, []string{`ETag: "b"`}, HEADStale},
		{"§4.3.5 different Last-Modified: stale", 200, []string{"Last-Modified: " + date(-time.Minute)}, HEADStale},
		{"§4.3.5 different Content-Length: stale", 200, []string{`ETag: "a"`, "Content-Length: 99"}, HEADStale},
		{"§4.3.5 not a 200: ignored", 404, []string{`ETag: "a"`}, HEADIgnored},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := stored(t, 200, base...)
			before := m.Response.Header.String()
			got := FreshenFromHEAD(m, newResp(t, tt.status, tt.resp...), t0, t0)
			if got != tt.want {
				t.Fatalf("FreshenFromHEAD = %v, want %v", got, tt.want)
			}
			changed := m.Response.Header.String() != before
			if changed != (got == HEADUpdated) {
				t.Errorf("head changed = %v for %v:\n%s", changed, got, m.Response.Header.String())
			}
		})
	}
	t.Run("§4.3.5 Content-Length of the HEAD response is not stored", func(t *testing.T) {
		m := stored(t, 200, append(base, "Content-Length: 100")...)
		FreshenFromHEAD(m, newResp(t, 200, `ETag: "a"`, "Content-Length: 100", "Cache-Control: max-age=5"), t0, t0)
		if got := m.Response.Header.Values("Content-Length"); len(got) != 1 || m.Response.Header.Get("Cache-Control") != "max-age=5" {
			t.Errorf("head:\n%s", m.Response.Header.String())
		}
	})
}
