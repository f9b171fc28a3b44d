package cache

import (
	"testing"
	"time"
)

// TestDecide: RFC 9111 §4 (constructing responses from caches), §4.2.4 (serving
// stale), §5.2.1 (request directives), §5.2.2 (response directives), RFC 5861 and
// RFC 8246.
func TestDecide(t *testing.T) {
	const s = time.Second
	base := []string{"Date: " + date(0)}
	resp := func(cc string) []string { return append(base[:1:1], "Cache-Control: "+cc) }
	tests := []struct {
		name      string
		method    string
		reqH      []string
		resp      []string
		now       time.Duration
		want      Action
		wantBG    bool
		wantOnErr bool
	}{
		{"§4.2 fresh response served", "GET", nil, resp("max-age=60"), 10 * s, ActionFresh, false, false},
		{"§4 a stored GET response answers HEAD", "HEAD", nil, resp("max-age=60"), 10 * s, ActionFresh, false, false},
		{"§4 other methods are forwarded", "POST", nil, resp("max-age=60"), 10 * s, ActionForward, false, false},
		{"§4.2.4 stale response validated", "GET", nil, resp("max-age=60"), 61 * s, ActionValidate, false, false},
		{"§4.2.3 Age larger than max-age: validated", "GET", nil, append(resp("max-age=60"), "Age: 120"), 0, ActionValidate, false, false},
		{"§5.2.2.10 s-maxage overrides max-age for a shared cache (fresh)", "GET", nil, resp("max-age=1, s-maxage=60"), 30 * s, ActionFresh, false, false},
		{"§5.2.2.10 s-maxage overrides max-age for a shared cache (stale)", "GET", nil, resp("max-age=600, s-maxage=60"), 61 * s, ActionValidate, false, false},
		{"§5.2.2.4 response no-cache: validate even when fresh", "GET", nil, resp("no-cache, max-age=60"), 0, ActionValidate, false, false},
		{"§5.2.2.4 qualified no-cache does not force validation", "GET", nil, resp(`no-cache="Set-Cookie", max-age=60`), 0, ActionFresh, false, false},
		{"§5.2.1.4 request no-cache: validate", "GET", []string{"Cache-Control: no-cache"}, resp("max-age=60"), 0, ActionValidate, false, false},
		{"§5.4 request Pragma: no-cache: validate", "GET", []string{"Pragma: no-cache"}, resp("max-age=60"), 0, ActionValidate, false, false},
		{"§5.2.1.1 request max-age=0 on a fresh response: validate", "GET", []string{"Cache-Control: max-age=0"}, resp("max-age=60"), s, ActionValidate, false, false},
		{"§5.2.1.1 request max-age above the age: fresh", "GET", []string{"Cache-Control: max-age=30"}, resp("max-age=60"), 20 * s, ActionFresh, false, false},
		{"§5.2.1.1 request max-age below the age: validate", "GET", []string{"Cache-Control: max-age=10"}, resp("max-age=60"), 20 * s, ActionValidate, false, false},
		{"§5.2.1.3 min-fresh satisfied", "GET", []string{"Cache-Control: min-fresh=30"}, resp("max-age=60"), 20 * s, ActionFresh, false, false},
		{"§5.2.1.3 min-fresh not satisfied: validate", "GET", []string{"Cache-Control: min-fresh=30"}, resp("max-age=60"), 40 * s, ActionValidate, false, false},
		{"§5.2.1.3 min-fresh also refuses stale-while-revalidate", "GET", []string{"Cache-Control: min-fresh=30"}, resp("max-age=60, stale-while-revalidate=100"), 40 * s, ActionValidate, false, false},
		{"§5.2.1.2 max-stale without value: any staleness", "GET", []string{"Cache-Control: max-stale"}, resp("max-age=60"), 100000 * s, ActionStale, false, true},
		{"§5.2.1.2 max-stale within its value", "GET", []string{"Cache-Control: max-stale=30"}, resp("max-age=60"), 80 * s, ActionStale, false, true},
		{"§5.2.1.2 max-stale exceeded", "GET", []string{"Cache-Control: max-stale=30"}, resp("max-age=60"), 100 * s, ActionValidate, false, false},
		{"§5.2.2.2 must-revalidate forbids max-stale", "GET", []string{"Cache-Control: max-stale"}, resp("max-age=60, must-revalidate"), 61 * s, ActionValidate, false, false},
		{"§5.2.2.8 proxy-revalidate forbids max-stale in a shared cache", "GET", []string{"Cache-Control: max-stale"}, resp("max-age=60, proxy-revalidate"), 61 * s, ActionValidate, false, false},
		{"§5.2.2.10 s-maxage implies proxy-revalidate", "GET", []string{"Cache-Control: max-stale"}, resp("s-maxage=60"), 61 * s, ActionValidate, false, false},
		{"§5.2.2.4 no-cache forbids max-stale", "GET", []string{"Cache-Control: max-stale"}, resp("no-cache"), 61 * s, ActionValidate, false, false},
		{"RFC 5861 §3 stale-while-revalidate: serve stale, revalidate in background", "GET", nil, resp("max-age=60, stale-while-revalidate=30"), 80 * s, ActionStale, true, false},
		{"RFC 5861 §3 stale-while-revalidate window passed", "GET", nil, resp("max-age=60, stale-while-revalidate=30"), 91 * s, ActionValidate, false, false},
		{"RFC 5861 §3 stale-while-revalidate does not override must-revalidate", "GET", nil, resp("max-age=60, stale-while-revalidate=30, must-revalidate"), 80 * s, ActionValidate, false, false},
		{"RFC 5861 §3 stale-while-revalidate yields to request max-age", "GET", []string{"Cache-Control: max-age=61"}, resp("max-age=60, stale-while-revalidate=30"), 80 * s, ActionValidate, false, false},
		{"RFC 5861 §4 stale-if-error: validate, may serve on error", "GET", nil, resp("max-age=60, stale-if-error=300"), 200 * s, ActionValidate, false, true},
		{"RFC 5861 §4 stale-if-error window passed", "GET", nil, resp("max-age=60, stale-if-error=300"), 400 * s, ActionValidate, false, false},
		{"RFC 5861 §4 request stale-if-error", "GET", []string{"Cache-Control: stale-if-error=300"}, resp("max-age=60"), 200 * s, ActionValidate, false, true},
		{"§4.2.4 stale-if-error forbidden by must-revalidate", "GET", nil, resp("max-age=60, stale-if-error=300, must-revalidate"), 200 * s, ActionValidate, false, false},
		{"§4.2.4 stale-if-error forbidden by s-maxage", "GET", nil, resp("s-maxage=60, stale-if-error=300"), 200 * s, ActionValidate, false, false},
		{"§5.2.1.7 only-if-cached with a fresh response: served", "GET", []string{"Cache-Control: only-if-cached"}, resp("max-age=60"), 10 * s, ActionFresh, false, false},
		{"§5.2.1.7 only-if-cached with a stale response: 504", "GET", []string{"Cache-Control: only-if-cached"}, resp("max-age=60"), 100 * s, ActionGatewayTimeout, false, false},
		{"§5.2.1.7 only-if-cached with max-stale: served stale", "GET", []string{"Cache-Control: only-if-cached, max-stale"}, resp("max-age=60"), 100 * s, ActionStale, false, true},
		{"§5.2.1.7 only-if-cached with a method not served from cache: 504", "DELETE", []string{"Cache-Control: only-if-cached"}, resp("max-age=60"), 0, ActionGatewayTimeout, false, false},
		{"RFC 8246 immutable and fresh: request max-age=0 (reload) served", "GET", []string{"Cache-Control: max-age=0"}, resp("max-age=600, immutable"), 10 * s, ActionFresh, false, false},
		{"RFC 8246 immutable and fresh: request no-cache (force reload) validates", "GET", []string{"Cache-Control: no-cache"}, resp("max-age=600, immutable"), 10 * s, ActionValidate, false, false},
		{"RFC 8246 immutable and stale: validate", "GET", nil, resp("max-age=600, immutable"), 700 * s, ActionValidate, false, false},
		{"§4.2.2 heuristic freshness serves fresh", "GET", nil, append(base[:1:1], "Last-Modified: "+date(-100*time.Hour)), time.Hour, ActionFresh, false, false},
		{"§4.2.1 no freshness information: validate", "GET", nil, base, 0, ActionValidate, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newReq(t, tt.method, tt.reqH...)
			m := stored(t, 200, tt.resp...)
			got := Policy{}.Decide(req, m, t0.Add(tt.now))
			if got.Action != tt.want || got.BackgroundRevalidate != tt.wantBG || got.StaleIfError != tt.wantOnErr {
				t.Errorf("Decide = %v (background %v, stale-if-error %v), want %v (%v, %v); %+v",
					got.Action, got.BackgroundRevalidate, got.StaleIfError, tt.want, tt.wantBG, tt.wantOnErr, got.Freshness)
			}
		})
	}
}

// BenchmarkDecideFreshHit is the decision on the common path: a plain GET against a
// fresh stored response with a typical head.
func BenchmarkDecideFreshHit(b *testing.B) {
	req := newReq(b, "GET", "User-Agent: curl/8", "Accept: */*", "Accept-Encoding: gzip")
	m := stored(b, 200, "Date: "+date(0), "Content-Type: text/html", "Content-Length: 1024",
		"Cache-Control: public, max-age=3600", "ETag: \"abc\"", "Last-Modified: "+date(-time.Hour), "Vary: Accept-Encoding")
	now := t0.Add(time.Minute)
	p := Policy{}
	b.ReportAllocs()
	for b.Loop() {
		if p.Decide(req, m, now).Action != ActionFresh {
			b.Fatal("not fresh")
		}
	}
}
