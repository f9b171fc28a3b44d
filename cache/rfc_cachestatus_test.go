package cache

import (
	"testing"
	"time"
)

// TestCacheStatus: RFC 9211 §2 (the field and its parameters).
func TestCacheStatus(t *testing.T) {
	tests := []struct {
		name string
		s    CacheStatus
		want string
	}{
		{"§2 name alone", CacheStatus{Cache: "gotthard"}, "gotthard"},
		{"§2.1 hit with ttl", CacheStatus{Cache: "gotthard", Hit: true, HasTTL: true, TTL: 376 * time.Second}, "gotthard; hit; ttl=376"},
		{"§2.2 fwd=uri-miss, fwd-status, stored", CacheStatus{Cache: "gotthard", Fwd: FwdURIMiss, FwdStatus: 200, Stored: true}, "gotthard; fwd=uri-miss; fwd-status=200; stored"},
		{"§2.2 fwd wins over hit", CacheStatus{Cache: "c", Hit: true, Fwd: FwdStale, FwdStatus: 304}, "c; fwd=stale; fwd-status=304"},
		{"§2.2 every fwd token", CacheStatus{Cache: "c", Fwd: FwdVaryMiss}, "c; fwd=vary-miss"},
		{"§2.2 bypass", CacheStatus{Cache: "c", Fwd: FwdBypass}, "c; fwd=bypass"},
		{"§2.2 request", CacheStatus{Cache: "c", Fwd: FwdRequest}, "c; fwd=request"},
		{"§2.2 miss", CacheStatus{Cache: "c", Fwd: FwdMiss}, "c; fwd=miss"},
		{"§2.2 method", CacheStatus{Cache: "c", Fwd: FwdMethod, FwdStatus: 201}, "c; fwd=method; fwd-status=201"},
		{"§2.2 partial", CacheStatus{Cache: "c", Fwd: FwdPartial}, "c; fwd=partial"},
		{"§2.5 negative ttl rounds down", CacheStatus{Cache: "c", HasTTL: true, TTL: -1500 * time.Millisecond}, "c; ttl=-2"},
		{"§2.5 zero ttl written when set", CacheStatus{Cache: "c", HasTTL: true}, "c; ttl=0"},
		{"§2.6 collapsed", CacheStatus{Cache: "c", Fwd: FwdMiss, Collapsed: true}, "c; fwd=miss; collapsed"},
		{"§2.7 key is a string, escaped", CacheStatus{Cache: "c", Hit: true, Key: `GET https://a/"x"\y`}, `c; hit; key="GET https://a/\"x\"\\y"`},
		{"§2.8 detail as token", CacheStatus{Cache: "c", Fwd: FwdMiss, Detail: "no-store"}, "c; fwd=miss; detail=no-store"},
		{"§2.8 detail as string", CacheStatus{Cache: "c", Fwd: FwdMiss, Detail: "too big"}, `c; fwd=miss; detail="too big"`},
		{"§2 a name that is not a token is a string", CacheStatus{Cache: "My Cache 1", Hit: true}, `"My Cache 1"; hit`},
		{"§2 non-ASCII replaced", CacheStatus{Cache: "caché"}, `"cach??"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.String(); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// TestCacheStatusAddTo: RFC 9211 §2, a cache appends its member after the ones
// closer to the origin.
func TestCacheStatusAddTo(t *testing.T) {
	tests := []struct {
		name string
		resp []string
		want string
	}{
		{"§2 first member", nil, "edge; hit"},
		{"§2 appended after the origin-side caches", []string{"Cache-Status: origin-cache; fwd=miss", "Cache-Status: mid; hit"}, "origin-cache; fwd=miss, mid; hit, edge; hit"},
		{"§2 empty field ignored", []string{"Cache-Status: "}, "edge; hit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := newResp(t, 200, tt.resp...)
			s := CacheStatus{Cache: "edge", Hit: true}
			s.AddTo(&resp.Header)
			if got := resp.Header.Values("Cache-Status"); len(got) != 1 || got[0] != tt.want {
				t.Errorf("Cache-Status = %q, want %q", got, tt.want)
			}
		})
	}
}
