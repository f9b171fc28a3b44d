package cache

import (
	"testing"
	"time"
)

// TestStorable: RFC 9111 §3 (the conditions for storing), §3.5 (Authorization),
// §5.2.2.3 (must-understand), §5.2.2.5 (no-store), §5.2.2.7 (private), §4.1 (Vary: *).
func TestStorable(t *testing.T) {
	tests := []struct {
		name   string
		method string
		reqH   []string
		status int
		resp   []string
		want   Storability
	}{
		{"§3 GET 200 with max-age", "GET", nil, 200, []string{"Cache-Control: max-age=60"}, StoreOK},
		{"§3 heuristically cacheable 200 without freshness", "GET", nil, 200, nil, StoreOK},
		{"§3 heuristically cacheable 404", "GET", nil, 404, nil, StoreOK},
		{"§3 heuristically cacheable 501", "GET", nil, 501, nil, StoreOK},
		{"§3 302 without explicit freshness not storable", "GET", nil, 302, nil, NotStorableNoFreshness},
		{"§3 500 without explicit freshness not storable", "GET", nil, 500, nil, NotStorableNoFreshness},
		{"§3 500 with max-age storable", "GET", nil, 500, []string{"Cache-Control: max-age=5"}, StoreOK},
		{"§3 302 with Expires storable", "GET", nil, 302, []string{"Expires: " + date(time.Hour)}, StoreOK},
		{"§3 an invalid Expires still makes it storable (stale)", "GET", nil, 302, []string{"Expires: 0"}, StoreOK},
		{"§3 public makes any final status storable", "GET", nil, 307, []string{"Cache-Control: public"}, StoreOK},
		{"§3 s-maxage makes it storable", "GET", nil, 303, []string{"Cache-Control: s-maxage=5"}, StoreOK},
		{"§3 method POST not stored", "POST", nil, 200, []string{"Cache-Control: max-age=60"}, NotStorableMethod},
		{"§3 method HEAD not stored (freshens GET, §4.3.5)", "HEAD", nil, 200, []string{"Cache-Control: max-age=60"}, NotStorableMethod},
		{"§3 non-final status", "GET", nil, 103, nil, NotStorableStatus},
		{"§3 206 not stored: no combining", "GET", nil, 206, []string{"Cache-Control: max-age=60"}, NotStorableStatus},
		{"§3 304 not stored", "GET", nil, 304, []string{"Cache-Control: max-age=60"}, NotStorableStatus},
		{"§5.2.2.5 response no-store", "GET", nil, 200, []string{"Cache-Control: max-age=60, no-store"}, NotStorableNoStore},
		{"§5.2.1.5 request no-store", "GET", []string{"Cache-Control: no-store"}, 200, []string{"Cache-Control: max-age=60"}, NotStorableNoStore},
		{"§5.2.2.3 must-understand with understood status overrides no-store", "GET", nil, 200, []string{"Cache-Control: must-understand, no-store, max-age=60"}, StoreOK},
		{"§5.2.2.3 must-understand with unknown status", "GET", nil, 299, []string{"Cache-Control: must-understand, no-store, max-age=60"}, NotStorableStatus},
		{"§5.2.2.7 private", "GET", nil, 200, []string{"Cache-Control: private, max-age=60"}, NotStorablePrivate},
		{"§5.2.2.7 qualified private is storable", "GET", nil, 200, []string{`Cache-Control: private="Set-Cookie", max-age=60`}, StoreOK},
		{"§3.5 Authorization without permission", "GET", []string{"Authorization: Basic x"}, 200, []string{"Cache-Control: max-age=60"}, NotStorableAuthorization},
		{"§3.5 Authorization with public", "GET", []string{"Authorization: Basic x"}, 200, []string{"Cache-Control: public, max-age=60"}, StoreOK},
		{"§3.5 Authorization with s-maxage", "GET", []string{"Authorization: Basic x"}, 200, []string{"Cache-Control: s-maxage=60"}, StoreOK},
		{"§3.5 Authorization with must-revalidate", "GET", []string{"Authorization: Basic x"}, 200, []string{"Cache-Control: must-revalidate, max-age=60"}, StoreOK},
		{"§4.1 Vary: * is never selected, not stored", "GET", nil, 200, []string{"Cache-Control: max-age=60", "Vary: Accept, *"}, NotStorableVaryStar},
		{"§5.2.2.4 no-cache is storable (validated on use)", "GET", nil, 200, []string{"Cache-Control: no-cache"}, StoreOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Storable(newReq(t, tt.method, tt.reqH...), newResp(t, tt.status, tt.resp...))
			if got != tt.want {
				t.Errorf("Storable = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestNewMeta: RFC 9111 §3.1, the fields not stored, and RFC 9110 §6.6.1, a Date added.
func TestNewMeta(t *testing.T) {
	tests := []struct {
		name string
		resp []string
		want string
	}{
		{"§3.1 hop-by-hop fields and Connection-listed ones dropped",
			[]string{"Date: " + date(0), "Connection: X-Hop, close", "Keep-Alive: timeout=5", "X-Hop: 1", "Transfer-Encoding: chunked", "TE: trailers", "Upgrade: h2c", "Proxy-Connection: keep-alive", "Content-Type: text/plain"},
			"Date: " + date(0) + "\r\nContent-Type: text/plain\r\n"},
		{"§3.1 proxy authentication fields dropped",
			[]string{"Date: " + date(0), "Proxy-Authenticate: Basic", "Proxy-Authentication-Info: x", "X-Keep: 1"},
			"Date: " + date(0) + "\r\nX-Keep: 1\r\n"},
		{"§5.2.2.4 no-cache=\"Set-Cookie\" stores without Set-Cookie",
			[]string{"Date: " + date(0), `Cache-Control: max-age=60, no-cache="Set-Cookie"`, "Set-Cookie: a=1", "set-cookie: b=2", "ETag: \"x\""},
			"Date: " + date(0) + "\r\nCache-Control: max-age=60, no-cache=\"Set-Cookie\"\r\nETag: \"x\"\r\n"},
		{"§5.2.2.7 private=\"X-User\" stores without X-User",
			[]string{"Date: " + date(0), `Cache-Control: private="X-User, X-Other"`, "X-User: bob", "X-Other: 1", "X-Public: 2"},
			"Date: " + date(0) + "\r\nCache-Control: private=\"X-User, X-Other\"\r\nX-Public: 2\r\n"},
		{"RFC 9110 §6.6.1 Date added when absent",
			[]string{"Cache-Control: max-age=60"},
			"Cache-Control: max-age=60\r\nDate: " + date(0) + "\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := newResp(t, 200, tt.resp...)
			before := resp.Header.String()
			m := NewMeta(resp, t0.Add(-time.Second), t0)
			if got := m.Response.Header.String(); got != tt.want {
				t.Errorf("stored\n%s\nwant\n%s", got, tt.want)
			}
			if m.Size != -1 || !m.RequestTime.Equal(t0.Add(-time.Second)) || !m.ResponseTime.Equal(t0) || m.Response.Status != 200 {
				t.Errorf("meta = %+v", m)
			}
			if resp.Header.String() != before {
				t.Error("NewMeta changed its argument")
			}
		})
	}
}
