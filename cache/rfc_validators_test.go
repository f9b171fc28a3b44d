package cache

import (
	"testing"
	"time"
)

// TestParseHTTPDate: RFC 9110 §5.6.7, the three date formats.
func TestParseHTTPDate(t *testing.T) {
	want := time.Date(1994, 11, 6, 8, 49, 37, 0, time.UTC)
	tests := []struct {
		name string
		in   string
		ok   bool
		want time.Time
	}{
		{"§5.6.7 IMF-fixdate", "Sun, 06 Nov 1994 08:49:37 GMT", true, want},
		{"§5.6.7 obsolete RFC 850", "Sunday, 06-Nov-94 08:49:37 GMT", true, want},
		{"§5.6.7 obsolete asctime", "Sun Nov  6 08:49:37 1994", true, want},
		{"§5.6.7 leap second", "Sat, 31 Dec 2016 23:59:60 GMT", true, time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"§5.6.7 not GMT", "Sun, 06 Nov 1994 08:49:37 PST", false, time.Time{}},
		{"§5.6.7 names are case-sensitive", "sun, 06 nov 1994 08:49:37 GMT", false, time.Time{}},
		{"§5.6.7 no such day", "Sun, 31 Feb 1994 08:49:37 GMT", false, time.Time{}},
		{"§5.6.7 hour out of range", "Sun, 06 Nov 1994 24:49:37 GMT", false, time.Time{}},
		{"§5.6.7 bad day name", "Xyz, 06 Nov 1994 08:49:37 GMT", false, time.Time{}},
		{"§5.6.7 RFC 850 two-digit year 68", "Thursday, 01-Jan-68 00:00:00 GMT", true, time.Date(2068, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"§5.6.7 RFC 850 two-digit year 69", "Wednesday, 01-Jan-69 00:00:00 GMT", true, time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"§5.6.7 asctime two-digit day", "Thu Nov 10 08:49:37 1994", true, time.Date(1994, 11, 10, 8, 49, 37, 0, time.UTC)},
		{"§5.6.7 RFC 850 names are case-sensitive", "SundAY, 06-Nov-94 08:49:37 GMT", false, time.Time{}},
		{"§5.6.7 RFC 850 fractional seconds", "Sunday, 06-Nov-94 08:49:37,1 GMT", false, time.Time{}},
		{"§5.6.7 RFC 850 one-digit hour", "Sunday, 06-Nov-94 8:49:37 GMT", false, time.Time{}},
		{"§5.6.7 asctime fractional seconds", "Sun Nov  6 08:49:37.5 1994", false, time.Time{}},
		{"§5.6.7 asctime no such day", "Sun Feb 30 08:49:37 1994", false, time.Time{}},
		{"§5.6.7 integer", "0", false, time.Time{}},
		{"§5.6.7 empty", "", false, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseHTTPDate(tt.in)
			if ok != tt.ok || !got.Equal(tt.want) {
				t.Errorf("ParseHTTPDate(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
	if got := string(AppendHTTPDate(nil, want.In(time.FixedZone("X", 3600)))); got != "Sun, 06 Nov 1994 08:49:37 GMT" {
		t.Errorf("AppendHTTPDate = %q", got)
	}
}

// TestETag: RFC 9110 §8.8.3, entity-tags and their comparisons (the table of
// §8.8.3.2).
func TestETag(t *testing.T) {
	tests := []struct {
		name         string
		a, b         string
		strong, weak bool
	}{
		{"§8.8.3.2 W/\"1\" W/\"1\"", `W/"1"`, `W/"1"`, false, true},
		{"§8.8.3.2 W/\"1\" W/\"2\"", `W/"1"`, `W/"2"`, false, false},
		{"§8.8.3.2 W/\"1\" \"1\"", `W/"1"`, `"1"`, false, true},
		{"§8.8.3.2 \"1\" \"1\"", `"1"`, `"1"`, true, true},
		{"§8.8.3 empty opaque tag", `""`, `""`, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, ok1 := ParseETag(tt.a)
			b, ok2 := ParseETag(tt.b)
			if !ok1 || !ok2 || a.StrongMatch(b) != tt.strong || a.WeakMatch(b) != tt.weak {
				t.Errorf("%v %v: strong %v weak %v", a, b, a.StrongMatch(b), a.WeakMatch(b))
			}
		})
	}
	for _, bad := range []string{`abc`, `"abc`, `w/"a"`, `"a" "b"`, `"a b"`, "\"a\x01\"", `W/`} {
		t.Run("§8.8.3 invalid "+bad, func(t *testing.T) {
			if e, ok := ParseETag(bad); ok {
				t.Errorf("ParseETag(%q) = %v", bad, e)
			}
		})
	}
}

func FuzzParseHTTPDate(f *testing.F) {
	for _, s := range []string{"Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994", "SundAY, 01-Nov-00 0:00:00,1 GMT"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, ok := ParseHTTPDate(s)
		if !ok {
			return
		}
		// A valid date formats to an IMF-fixdate that parses back to the same instant.
		back, ok := ParseHTTPDate(string(AppendHTTPDate(nil, tm)))
		if tm.Year() >= 0 && tm.Year() <= 9999 && (!ok || !back.Equal(tm)) {
			t.Fatalf("%q: %v does not round-trip (%v, %v)", s, tm, back, ok)
		}
	})
}
