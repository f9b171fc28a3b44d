package cache

import (
	"testing"
	"time"
)

// TestSurrogateStorable: the Surrogate-Control directives addressed to the cache, or
// to no one, decide storage over Cache-Control; others are ignored, and a cache with no
// Surrogate token reads none.
func TestSurrogateStorable(t *testing.T) {
	p := Policy{Surrogate: "gotthard"}
	tests := []struct {
		name  string
		p     Policy
		lines []string
		want  Storability
	}{
		{"no-store refuses a fresh response", p, []string{"Cache-Control: max-age=600", "Surrogate-Control: no-store"}, NotStorableNoStore},
		{"max-age stores despite Cache-Control no-store", p, []string{"Cache-Control: no-store", "Surrogate-Control: max-age=600"}, StoreOK},
		{"max-age stores despite private", p, []string{"Cache-Control: private", "Surrogate-Control: max-age=600"}, StoreOK},
		{"targeted at the cache", p, []string{"Cache-Control: no-store", "Surrogate-Control: max-age=600;gotthard"}, StoreOK},
		{"targeted at the cache, another case", p, []string{"Cache-Control: no-store", "Surrogate-Control: max-age=600;GOTTHARD"}, StoreOK},
		{"targeted elsewhere: Cache-Control decides", p, []string{"Cache-Control: no-store", "Surrogate-Control: max-age=600;other"}, NotStorableNoStore},
		{"no-store elsewhere, max-age here", p, []string{"Surrogate-Control: no-store;other, max-age=60;gotthard"}, StoreOK},
		{"not a surrogate: Surrogate-Control ignored", Policy{}, []string{"Cache-Control: no-store", "Surrogate-Control: max-age=600"}, NotStorableNoStore},
		{"Vary: * still refused", p, []string{"Surrogate-Control: max-age=600", "Vary: *"}, NotStorableVaryStar},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newReq(t, "GET")
			if got := tt.p.Storable(req, newResp(t, 200, tt.lines...)); got != tt.want {
				t.Errorf("Storable = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestSurrogateLifetime: a Surrogate-Control max-age addressed to the cache is the
// lifetime, over s-maxage, max-age and Expires, long or short; an invalid one is 0.
func TestSurrogateLifetime(t *testing.T) {
	p := Policy{Surrogate: "gotthard"}
	tests := []struct {
		name  string
		lines []string
		want  time.Duration
	}{
		{"shorter than Cache-Control", []string{"Cache-Control: max-age=3600", "Surrogate-Control: max-age=1"}, time.Second},
		{"longer than Cache-Control", []string{"Cache-Control: max-age=1", "Surrogate-Control: max-age=3600"}, time.Hour},
		{"over s-maxage", []string{"Cache-Control: s-maxage=5", "Surrogate-Control: max-age=60"}, time.Minute},
		{"invalid: stale", []string{"Cache-Control: max-age=60", "Surrogate-Control: max-age =100"}, 0},
		{"repeated: stale", []string{"Surrogate-Control: max-age=60, max-age=120"}, 0},
		{"case-insensitive", []string{"Surrogate-Control: MaX-aGe=60"}, time.Minute},
		{"targeted elsewhere", []string{"Cache-Control: max-age=5", "Surrogate-Control: max-age=60;other"}, 5 * time.Second},
		{"other directives only", []string{"Cache-Control: max-age=5", `Surrogate-Control: content="ESI/1.0"`}, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := newResp(t, 200, tt.lines...)
			cc := ParseCacheControl(&resp.Header)
			if got, _ := p.Lifetime(resp, &cc, t0); got != tt.want {
				t.Errorf("Lifetime = %v, want %v", got, tt.want)
			}
		})
	}
}
