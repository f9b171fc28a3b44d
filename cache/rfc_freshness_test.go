package cache

import (
	"testing"
	"time"
)

// TestLifetime: RFC 9111 §4.2.1 (freshness lifetime, shared cache), §5.3 (Expires),
// §4.2.2 (heuristic freshness).
func TestLifetime(t *testing.T) {
	const h = time.Hour
	tests := []struct {
		name          string
		policy        Policy
		status        int
		resp          []string
		want          time.Duration
		wantHeuristic bool
	}{
		{"§4.2.1 s-maxage overrides max-age", Policy{}, 200, []string{"Cache-Control: max-age=10, s-maxage=100"}, 100 * time.Second, false},
		{"§4.2.1 s-maxage overrides Expires", Policy{}, 200, []string{"Cache-Control: s-maxage=100", "Date: " + date(0), "Expires: " + date(h)}, 100 * time.Second, false},
		{"§4.2.1 max-age overrides an Expires in the past", Policy{}, 200, []string{"Cache-Control: max-age=60", "Date: " + date(0), "Expires: " + date(-h)}, 60 * time.Second, false},
		{"§4.2.1 max-age=0", Policy{}, 200, []string{"Cache-Control: max-age=0"}, 0, false},
		{"§4.2.1 invalid max-age: stale", Policy{}, 200, []string{"Cache-Control: max-age=abc", "Expires: " + date(h)}, 0, false},
		{"§4.2.1 Expires minus Date", Policy{}, 200, []string{"Date: " + date(-10*time.Second), "Expires: " + date(h)}, h + 10*time.Second, false},
		{"§4.2.1 Expires with Date missing: minus the receipt time", Policy{}, 200, []string{"Expires: " + date(h)}, h, false},
		{"§4.2.1 Expires with an invalid Date: minus the receipt time", Policy{}, 200, []string{"Date: yesterday", "Expires: " + date(h)}, h, false},
		{"§5.3 Expires in the past: 0", Policy{}, 200, []string{"Date: " + date(0), "Expires: " + date(-h)}, 0, false},
		{"§5.3 invalid Expires \"0\": already expired", Policy{}, 200, []string{"Date: " + date(0), "Expires: 0", "Last-Modified: " + date(-100*h)}, 0, false},
		{"§4.2.1 two different Expires: stale", Policy{}, 200, []string{"Date: " + date(0), "Expires: " + date(h), "Expires: " + date(2*h)}, 0, false},
		{"§4.2.1 two identical Expires count once", Policy{}, 200, []string{"Date: " + date(0), "Expires: " + date(h), "Expires: " + date(h)}, h, false},
		{"§5.3 Expires in RFC 850 form", Policy{}, 200, []string{"Date: " + date(0), "Expires: Sunday, 01-Mar-26 13:00:00 GMT"}, h, false},
		{"§4.2.2 heuristic: 10% of Date minus Last-Modified", Policy{}, 200, []string{"Date: " + date(0), "Last-Modified: " + date(-10*h)}, h, true},
		{"§4.2.2 heuristic capped at 24h by default", Policy{}, 200, []string{"Date: " + date(0), "Last-Modified: " + date(-1000*h)}, 24 * h, true},
		{"§4.2.2 heuristic capped by the policy", Policy{HeuristicCap: 30 * time.Minute}, 200, []string{"Date: " + date(0), "Last-Modified: " + date(-10*h)}, 30 * time.Minute, true},
		{"§4.2.2 heuristic turned off", Policy{HeuristicCap: -1}, 200, []string{"Date: " + date(0), "Last-Modified: " + date(-10*h)}, 0, false},
		{"§4.2.2 heuristic with Date missing uses receipt time", Policy{}, 200, []string{"Last-Modified: " + date(-10*h)}, h, true},
		{"§4.2.2 no heuristic for a status that is not heuristically cacheable", Policy{}, 302, []string{"Date: " + date(0), "Last-Modified: " + date(-10*h)}, 0, false},
		{"§4.2.2 heuristic for public with any status", Policy{}, 302, []string{"Cache-Control: public", "Date: " + date(0), "Last-Modified: " + date(-10*h)}, h, true},
		{"§4.2.2 no Last-Modified: no heuristic lifetime", Policy{}, 200, []string{"Date: " + date(0)}, 0, false},
		{"§4.2.2 Last-Modified after Date: 0", Policy{}, 200, []string{"Date: " + date(0), "Last-Modified: " + date(h)}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := newResp(t, tt.status, tt.resp...)
			cc := ParseCacheControl(&resp.Header)
			got, heur := tt.policy.Lifetime(resp, &cc, t0)
			if got != tt.want || heur != tt.wantHeuristic {
				t.Errorf("Lifetime = %v, %v; want %v, %v", got, heur, tt.want, tt.wantHeuristic)
			}
		})
	}
}

// TestCurrentAge: RFC 9111 §4.2.3, the age calculation, and §5.1, the Age field.
func TestCurrentAge(t *testing.T) {
	tests := []struct {
		name     string
		reqTime  time.Duration // RequestTime relative to t0
		respTime time.Duration // ResponseTime relative to t0
		now      time.Duration // now relative to t0
		resp     []string
		want     time.Duration
	}{
		{"§4.2.3 resident time only", 0, 0, 30 * time.Second, []string{"Date: " + date(0)}, 30 * time.Second},
		{"§4.2.3 apparent age from a Date in the past", 0, 0, 0, []string{"Date: " + date(-20*time.Second)}, 20 * time.Second},
		{"§4.2.3 Date in the future: apparent age 0", 0, 0, 0, []string{"Date: " + date(20*time.Second)}, 0},
		{"§4.2.3 Age plus response delay", -3 * time.Second, 0, 10 * time.Second, []string{"Date: " + date(0), "Age: 100"}, 113 * time.Second},
		{"§4.2.3 apparent age wins over a smaller corrected age", -1 * time.Second, 0, 0, []string{"Date: " + date(-50*time.Second), "Age: 10"}, 50 * time.Second},
		{"§4.2.3 Date missing: apparent age 0, Age counts", -2 * time.Second, 0, 5 * time.Second, []string{"Age: 60"}, 67 * time.Second},
		{"§4.2.3 response delay counts even without Age", -4 * time.Second, 0, 0, []string{"Date: " + date(0)}, 4 * time.Second},
		{"§5.1 a list in Age is invalid: stale", 0, 0, 0, []string{"Age: 7, 100"}, invalidAge},
		{"§5.1 a negative Age is invalid: stale", 0, 0, 0, []string{"Age: -5"}, invalidAge},
		{"§5.1 a fraction in Age is invalid: stale", 0, 0, 0, []string{"Age: 7.0"}, invalidAge},
		{"§5.1 a parameter in Age is invalid: stale", 0, 0, 0, []string{"Age: 7;a=1"}, invalidAge},
		{"§5.1 two Age lines are invalid: stale", 0, 0, 0, []string{"Age: 0", "Age: 0"}, invalidAge},
		{"§5.1 a letter in Age is invalid: stale", 0, 0, 0, []string{"Age: abc"}, invalidAge},
		{"§5.1 Age larger than 2^31 capped", 0, 0, 0, []string{"Age: 99999999999999"}, seconds(maxDelta)},
		{"§4.2.3 now before the response: no negative resident time", 0, 0, -time.Minute, []string{"Date: " + date(0)}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := stored(t, 200, tt.resp...)
			m.RequestTime, m.ResponseTime = t0.Add(tt.reqTime), t0.Add(tt.respTime)
			if got := CurrentAge(m, t0.Add(tt.now)); got != tt.want {
				t.Errorf("CurrentAge = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestFreshness: RFC 9111 §4.2, fresh when the lifetime exceeds the age; the edge
// cases: Age larger than max-age, and an Expires in the past with max-age.
func TestFreshness(t *testing.T) {
	tests := []struct {
		name      string
		resp      []string
		now       time.Duration
		wantFresh bool
		wantTTL   time.Duration
	}{
		{"§4.2 fresh within max-age", []string{"Date: " + date(0), "Cache-Control: max-age=60"}, 59 * time.Second, true, time.Second},
		{"§4.2 stale at exactly max-age", []string{"Date: " + date(0), "Cache-Control: max-age=60"}, 60 * time.Second, false, 0},
		{"§4.2.3 Age larger than max-age: stale on arrival", []string{"Date: " + date(0), "Age: 120", "Cache-Control: max-age=60"}, 0, false, -60 * time.Second},
		{"§4.2.1 Expires in the past with max-age: max-age wins", []string{"Date: " + date(0), "Expires: " + date(-time.Hour), "Cache-Control: max-age=60"}, 10 * time.Second, true, 50 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := stored(t, 200, tt.resp...)
			cc := ParseCacheControl(&m.Response.Header)
			f := Policy{}.Freshness(m, &cc, t0.Add(tt.now))
			if f.Fresh() != tt.wantFresh || f.TTL() != tt.wantTTL {
				t.Errorf("Freshness = %+v (fresh %v, ttl %v); want fresh %v, ttl %v", f, f.Fresh(), f.TTL(), tt.wantFresh, tt.wantTTL)
			}
		})
	}
}
