package cache

import (
	"testing"

	"github.com/gotthard-proxy/gotthard/message"
)

func d(secs int64) Delta  { return Delta{Set: true, Seconds: secs} }
func invalidDelta() Delta { return Delta{Set: true, Invalid: true} }
func hdr(lines ...string) *message.Header {
	var h message.Header
	for i := 0; i+1 < len(lines); i += 2 {
		h.Add(lines[i], lines[i+1])
	}
	return &h
}

// TestCacheControl: RFC 9111 §5.2 (syntax, both argument forms, case), §5.2.1 and
// §5.2.2 (each directive), §1.2.2 (delta-seconds), §4.2.1 (invalid and duplicate
// arguments).
func TestCacheControl(t *testing.T) {
	tests := []struct {
		name string
		h    *message.Header
		want CacheControl
	}{
		{"§5.2 no field: nothing set", hdr(), CacheControl{}},
		{"§5.2.2.1 max-age", hdr("Cache-Control", "max-age=60"), CacheControl{MaxAge: d(60)}},
		{"§5.2 directive names are case-insensitive", hdr("cache-control", "Max-Age=60, NO-STORE"), CacheControl{MaxAge: d(60), NoStore: true}},
		{"§5.2 quoted-string argument accepted", hdr("Cache-Control", `max-age="60"`), CacheControl{MaxAge: d(60)}},
		{"§5.2 several field lines form one list", hdr("Cache-Control", "public", "Cache-Control", "s-maxage=10"), CacheControl{Public: true, SMaxAge: d(10)}},
		{"§5.2 whitespace and empty list members", hdr("Cache-Control", " , max-age=5 ,,\tmust-revalidate , "), CacheControl{MaxAge: d(5), MustRevalidate: true}},
		{"§5.2.3 unknown extensions ignored", hdr("Cache-Control", `community="UCI", foo, max-age=1`), CacheControl{MaxAge: d(1)}},
		{"§5.2.2.4 no-cache unqualified", hdr("Cache-Control", "no-cache"), CacheControl{NoCache: true}},
		{"§5.2.2.4 no-cache qualified: field names, not no-cache", hdr("Cache-Control", `no-cache="Set-Cookie, Set-Cookie2", max-age=5`), CacheControl{NoCacheFields: "Set-Cookie, Set-Cookie2", MaxAge: d(5)}},
		{"§5.2.2.4 no-cache qualified as token", hdr("Cache-Control", `no-cache=Set-Cookie`), CacheControl{NoCacheFields: "Set-Cookie"}},
		{"§5.2.2.4 no-cache both forms", hdr("Cache-Control", `no-cache="A", no-cache`), CacheControl{NoCache: true, NoCacheFields: "A"}},
		{"§5.2.2.4 two qualified no-cache join", hdr("Cache-Control", `no-cache="A", no-cache="B"`), CacheControl{NoCacheFields: "A, B"}},
		{"§5.2 quoted-string with escapes and a comma", hdr("Cache-Control", `private="X-\"A\", B", public`), CacheControl{PrivateFields: `X-"A", B`, Public: true}},
		{"§5.2.2.7 private unqualified", hdr("Cache-Control", "private"), CacheControl{Private: true}},
		{"§5.2.2.7 private qualified", hdr("Cache-Control", `private="Authorization-Info"`), CacheControl{PrivateFields: "Authorization-Info"}},
		{"§5.2.2 flags", hdr("Cache-Control", "public, must-revalidate, proxy-revalidate, must-understand, no-transform, immutable, no-store"),
			CacheControl{Public: true, MustRevalidate: true, ProxyRevalidate: true, MustUnderstand: true, NoTransform: true, Immutable: true, NoStore: true}},
		{"§5.2.2.10 s-maxage", hdr("Cache-Control", "s-maxage=30, max-age=10"), CacheControl{SMaxAge: d(30), MaxAge: d(10)}},
		{"§5.2.1.2 max-stale without value: any staleness", hdr("Cache-Control", "max-stale"), CacheControl{MaxStale: d(maxDelta)}},
		{"§5.2.1.2 max-stale with value", hdr("Cache-Control", "max-stale=30"), CacheControl{MaxStale: d(30)}},
		{"§5.2.1.3 min-fresh", hdr("Cache-Control", "min-fresh=20"), CacheControl{MinFresh: d(20)}},
		{"§5.2.1.7 only-if-cached", hdr("Cache-Control", "only-if-cached"), CacheControl{OnlyIfCached: true}},
		{"RFC 5861 stale-while-revalidate and stale-if-error", hdr("Cache-Control", "max-age=1, stale-while-revalidate=30, stale-if-error=600"),
			CacheControl{MaxAge: d(1), StaleWhileRevalidate: d(30), StaleIfError: d(600)}},
		{"§1.2.2 delta-seconds over 2^31 capped", hdr("Cache-Control", "max-age=99999999999999999999999"), CacheControl{MaxAge: d(maxDelta)}},
		{"§4.2.1 non-integer max-age invalid", hdr("Cache-Control", "max-age=1.5"), CacheControl{MaxAge: invalidDelta()}},
		{"§4.2.1 negative max-age invalid", hdr("Cache-Control", "max-age=-1"), CacheControl{MaxAge: invalidDelta()}},
		{"§4.2.1 max-age without argument invalid", hdr("Cache-Control", "max-age"), CacheControl{MaxAge: invalidDelta()}},
		{"§4.2.1 max-age empty argument invalid", hdr("Cache-Control", "max-age="), CacheControl{MaxAge: invalidDelta()}},
		{"§4.2.1 conflicting duplicate max-age: stale", hdr("Cache-Control", "max-age=60, max-age=120"), CacheControl{MaxAge: invalidDelta()}},
		{"§4.2.1 duplicate across lines: stale", hdr("Cache-Control", "max-age=60", "Cache-Control", "max-age=61"), CacheControl{MaxAge: invalidDelta()}},
		{"§4.2.1 identical duplicate is harmless", hdr("Cache-Control", "max-age=60, max-age=60"), CacheControl{MaxAge: d(60)}},
		{"§4.2.1 invalid then valid stays invalid", hdr("Cache-Control", "max-age=x, max-age=60"), CacheControl{MaxAge: invalidDelta()}},
		{"§5.2 unterminated quoted string", hdr("Cache-Control", `no-cache="A, B`), CacheControl{NoCacheFields: "A, B"}},
		{"§5.2 junk after a quoted string is skipped", hdr("Cache-Control", `no-cache="A"junk, public`), CacheControl{NoCacheFields: "A", Public: true}},
		{"§5.4 Pragma ignored in responses", hdr("Pragma", "no-cache"), CacheControl{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseCacheControl(tt.h); got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestRequestPragma: RFC 9111 §5.4, Pragma: no-cache counts only without Cache-Control.
func TestRequestPragma(t *testing.T) {
	tests := []struct {
		name        string
		h           *message.Header
		wantNoCache bool
	}{
		{"§5.4 Pragma: no-cache without Cache-Control is no-cache", hdr("Pragma", "no-cache"), true},
		{"§5.4 Pragma token list, any case", hdr("Pragma", "foo, No-Cache"), true},
		{"§5.4 Pragma ignored when Cache-Control is present", hdr("Pragma", "no-cache", "Cache-Control", "max-age=5"), false},
		{"§5.4 other Pragma directives mean nothing", hdr("Pragma", "foo"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseRequestCacheControl(tt.h).NoCache; got != tt.wantNoCache {
				t.Errorf("NoCache = %v, want %v", got, tt.wantNoCache)
			}
		})
	}
}

func BenchmarkParseCacheControl(b *testing.B) {
	h := hdr("Content-Type", "text/html", "Cache-Control", `public, max-age=3600, s-maxage=600, stale-while-revalidate=30, no-cache="Set-Cookie"`, "ETag", `"abc"`)
	b.ReportAllocs()
	for b.Loop() {
		cc := ParseCacheControl(h)
		if !cc.Public {
			b.Fatal("not parsed")
		}
	}
}

func FuzzCacheControl(f *testing.F) {
	for _, s := range []string{"max-age=60", `no-cache="a, b", private="c\"d"`, "max-stale", `max-age="`, "=,=,", `s-maxage=1"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		cc := ParseCacheControl(hdr("Cache-Control", v))
		for _, d := range []Delta{cc.MaxAge, cc.SMaxAge, cc.MaxStale, cc.MinFresh, cc.StaleWhileRevalidate, cc.StaleIfError} {
			if d.Seconds < 0 || d.Seconds > maxDelta || (!d.Set && (d.Invalid || d.Seconds != 0)) || (d.Invalid && d.Seconds != 0) {
				t.Fatalf("%q: bad delta %+v", v, d)
			}
		}
	})
}
