package cache

import (
	"strings"
	"time"
)

// httpDateLayout is the IMF-fixdate format (RFC 9110 §5.6.7), the one senders generate.
const httpDateLayout = "Mon, 02 Jan 2006 15:04:05 GMT"

// ParseHTTPDate parses an HTTP-date (RFC 9110 §5.6.7) in any of its three formats:
// IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), and the obsolete RFC 850 ("Sunday,
// 06-Nov-94 08:49:37 GMT") and asctime ("Sun Nov  6 08:49:37 1994") formats, each
// exactly as the grammar has it (names are case-sensitive, no fractional seconds) and
// without allocating. A two-digit RFC 850 year is read as 1969-2068. It reports false
// for anything else; callers treat an invalid date as absent, except Expires, which
// §5.3 of RFC 9111 reads as a time in the past.
func ParseHTTPDate(s string) (time.Time, bool) {
	switch {
	case len(s) == 29 && s[3] == ',':
		return parseIMFFixdate(s)
	case len(s) == 24 && s[3] == ' ':
		return parseAsctime(s)
	}
	return parseRFC850(s)
}

// AppendHTTPDate appends t as an IMF-fixdate.
func AppendHTTPDate(dst []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(dst, httpDateLayout)
}

// formatHTTPDate returns t as an IMF-fixdate.
func formatHTTPDate(t time.Time) string { return t.UTC().Format(httpDateLayout) }

// dayNames and monthNames are the three-letter names HTTP-dates use, back to back.
const (
	dayNames   = "SunMonTueWedThuFriSat"
	monthNames = "JanFebMarAprMayJunJulAugSepOctNovDec"
)

// parseIMFFixdate parses "Sun, 06 Nov 1994 08:49:37 GMT".
func parseIMFFixdate(s string) (time.Time, bool) {
	if len(s) != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' ||
		s[16] != ' ' || s[25:] != " GMT" || !shortDay(s[:3]) {
		return time.Time{}, false
	}
	day, ok1 := digits(s[5:7])
	year, ok2 := digits(s[12:16])
	if !ok1 || !ok2 {
		return time.Time{}, false
	}
	return dateOf(year, month(s[8:11]), day, s[17:25])
}

// parseRFC850 parses "Sunday, 06-Nov-94 08:49:37 GMT".
func parseRFC850(s string) (time.Time, bool) {
	comma := strings.IndexByte(s, ',')
	if comma < 0 || !longDay(s[:comma]) {
		return time.Time{}, false
	}
	s = s[comma:] // ", 06-Nov-94 08:49:37 GMT"
	if len(s) != 24 || s[1] != ' ' || s[4] != '-' || s[8] != '-' || s[11] != ' ' || s[20:] != " GMT" {
		return time.Time{}, false
	}
	day, ok1 := digits(s[2:4])
	year, ok2 := digits(s[9:11])
	if !ok1 || !ok2 {
		return time.Time{}, false
	}
	if year < 69 {
		year += 2000
	} else {
		year += 1900
	}
	return dateOf(year, month(s[5:8]), day, s[12:20])
}

// parseAsctime parses "Sun Nov  6 08:49:37 1994" (the day is two digits or a space
// and one).
func parseAsctime(s string) (time.Time, bool) {
	if len(s) != 24 || s[3] != ' ' || s[7] != ' ' || s[10] != ' ' || s[19] != ' ' || !shortDay(s[:3]) {
		return time.Time{}, false
	}
	d := s[8:10]
	if d[0] == ' ' {
		d = d[1:]
	}
	day, ok1 := digits(d)
	year, ok2 := digits(s[20:24])
	if !ok1 || !ok2 {
		return time.Time{}, false
	}
	return dateOf(year, month(s[4:7]), day, s[11:19])
}

// shortDay reports one of the three-letter day names.
func shortDay(s string) bool {
	for i := 0; i < len(dayNames); i += 3 {
		if s == dayNames[i:i+3] {
			return true
		}
	}
	return false
}

// longDay reports one of RFC 850's full day names.
func longDay(s string) bool {
	switch s {
	case "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday":
		return true
	}
	return false
}

// month returns 1-12 for a three-letter month name, 0 for anything else.
func month(s string) int {
	for i := 0; i < len(monthNames); i += 3 {
		if s == monthNames[i:i+3] {
			return i/3 + 1
		}
	}
	return 0
}

// dateOf checks a date's fields and its time-of-day ("08:49:37") and builds the UTC
// instant. A leap second (:60) is taken as the next instant, since time has none.
func dateOf(year, month, day int, tod string) (time.Time, bool) {
	if len(tod) != 8 || tod[2] != ':' || tod[5] != ':' {
		return time.Time{}, false
	}
	hour, ok1 := digits(tod[:2])
	minute, ok2 := digits(tod[3:5])
	sec, ok3 := digits(tod[6:8])
	if month == 0 || !ok1 || !ok2 || !ok3 || day < 1 || hour > 23 || minute > 59 || sec > 60 {
		return time.Time{}, false
	}
	leap := sec == 60
	if leap {
		sec = 59
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC)
	if t.Day() != day { // 31 Feb and the like
		return time.Time{}, false
	}
	if leap {
		t = t.Add(time.Second)
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
