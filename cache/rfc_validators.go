package cache

import (
	"strings"
	"time"
)

// httpDateLayout is the IMF-fixdate format (RFC 9110 §5.6.7), the one senders generate.
const httpDateLayout = "Mon, 02 Jan 2006 15:04:05 GMT"

// ParseHTTPDate parses an HTTP-date (RFC 9110 §5.6.7) in any of its three formats:
// IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT", parsed without allocating), and the
// obsolete RFC 850 and asctime formats. A two-digit RFC 850 year is read as 1969-2068.
// It reports false for anything else; callers treat an invalid date as absent, except
// Expires, which §5.3 of RFC 9111 reads as a time in the past.
func ParseHTTPDate(s string) (time.Time, bool) {
	if t, ok := parseIMFFixdate(s); ok {
		return t, true
	}
	for _, layout := range [...]string{
		"Monday, 02-Jan-06 15:04:05 GMT", // RFC 850
		time.ANSIC,                       // asctime: "Sun Nov  6 08:49:37 1994"
	} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// AppendHTTPDate appends t as an IMF-fixdate.
func AppendHTTPDate(dst []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(dst, httpDateLayout)
}

// formatHTTPDate returns t as an IMF-fixdate.
func formatHTTPDate(t time.Time) string { return t.UTC().Format(httpDateLayout) }

// dayNames and monthNames are the three-letter names IMF-fixdate uses, back to back.
const (
	dayNames   = "SunMonTueWedThuFriSat"
	monthNames = "JanFebMarAprMayJunJulAugSepOctNovDec"
)

// parseIMFFixdate parses "Sun, 06 Nov 1994 08:49:37 GMT" exactly (names are
// case-sensitive, as the grammar has them).
func parseIMFFixdate(s string) (time.Time, bool) {
	if len(s) != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' ||
		s[16] != ' ' || s[19] != ':' || s[22] != ':' || s[25:] != " GMT" {
		return time.Time{}, false
	}
	okDay := false
	for i := 0; i < len(dayNames); i += 3 {
		if s[:3] == dayNames[i:i+3] {
			okDay = true
			break
		}
	}
	month := 0
	for i := 0; i < len(monthNames); i += 3 {
		if s[8:11] == monthNames[i:i+3] {
			month = i/3 + 1
			break
		}
	}
	day, ok1 := digits(s[5:7])
	year, ok2 := digits(s[12:16])
	hour, ok3 := digits(s[17:19])
	minute, ok4 := digits(s[20:22])
	sec, ok5 := digits(s[23:25])
	if !okDay || month == 0 || !ok1 || !ok2 || !ok3 || !ok4 || !ok5 ||
		day < 1 || hour > 23 || minute > 59 || sec > 60 {
		return time.Time{}, false
	}
	if sec == 60 { // a leap second: time has none, so take the next instant
		sec = 59
		t := time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC)
		return t.Add(time.Second), t.Day() == day
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC)
	if t.Day() != day { // 31 Feb and the like
		return time.Time{}, false
	}
	return t, true
}

func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// ETag is a parsed entity-tag (RFC 9110 §8.8.3).
type ETag struct {
	// Weak reports the W/ prefix.
	Weak bool
	// Opaque is the opaque-tag without its quotes.
	Opaque string
}

// ParseETag parses one entity-tag: `"xyz"` or `W/"xyz"`, with surrounding whitespace.
func ParseETag(s string) (ETag, bool) {
	t, rest, ok := nextETag(s)
	if !ok || trimOWS(rest) != "" {
		return ETag{}, false
	}
	return t, true
}

// StrongMatch is the strong comparison (RFC 9110 §8.8.3.2): both tags strong and equal.
func (e ETag) StrongMatch(o ETag) bool { return !e.Weak && !o.Weak && e.Opaque == o.Opaque }

// WeakMatch is the weak comparison: the opaque tags are equal, whatever the W/ prefixes.
func (e ETag) WeakMatch(o ETag) bool { return e.Opaque == o.Opaque }

// nextETag parses the first entity-tag of a list and returns the rest after its comma.
func nextETag(s string) (ETag, string, bool) {
	s = trimLeftOWS(s)
	var t ETag
	if strings.HasPrefix(s, "W/") {
		t.Weak = true
		s = s[2:]
	}
	if s == "" || s[0] != '"' {
		return ETag{}, "", false
	}
	end := strings.IndexByte(s[1:], '"')
	if end < 0 {
		return ETag{}, "", false
	}
	for i := 1; i <= end; i++ {
		if c := s[i]; c < 0x21 || c == 0x7f { // etagc: %x21 / %x23-7E / obs-text
			return ETag{}, "", false
		}
	}
	t.Opaque = s[1 : end+1]
	rest := trimLeftOWS(s[end+2:])
	if rest != "" {
		if rest[0] != ',' {
			return ETag{}, "", false
		}
		rest = rest[1:]
	}
	return t, rest, true
}

// etagListMatch evaluates an If-Match or If-None-Match list against the stored tag:
// "*" matches when a representation exists; weak selects the weak comparison. A list
// with a malformed member matches nothing.
func etagListMatch(list string, stored ETag, hasStored, weak bool) bool {
	if trimOWS(list) == "*" {
		return true
	}
	if !hasStored {
		return false
	}
	for rest := list; trimOWS(rest) != ""; {
		var t ETag
		var ok bool
		t, rest, ok = nextETag(rest)
		if !ok {
			return false
		}
		if weak && t.WeakMatch(stored) || !weak && t.StrongMatch(stored) {
			return true
		}
	}
	return false
}
