package accesslog

import (
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gotthard-proxy/gotthard/observe"
)

// Time layouts: the common log format's [%d/%b/%Y:%H:%M:%S %z], and RFC 3339 with
// milliseconds. appendCLFTime and appendJSONTime write them by hand, several times
// faster than time.Time.AppendFormat (which the tests compare them with).
const (
	clfTime  = "02/Jan/2006:15:04:05 -0700"
	jsonTime = "2006-01-02T15:04:05.000Z07:00"
)

// appendCLFTime appends t as time.Time.AppendFormat(b, clfTime) does.
func appendCLFTime(b []byte, t time.Time) []byte {
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, clfTime)
	}
	hour, minute, sec := t.Clock()
	_, off := t.Zone()
	b = append2(b, day)
	b = append(b, '/')
	b = append(b, month.String()[:3]...)
	b = append(b, '/')
	b = append4(b, year)
	b = append(b, ':')
	b = append2(b, hour)
	b = append(b, ':')
	b = append2(b, minute)
	b = append(b, ':')
	b = append2(b, sec)
	b = append(b, ' ')
	return appendOffset(b, off, false)
}

// appendJSONTime appends t as time.Time.AppendFormat(b, jsonTime) does.
func appendJSONTime(b []byte, t time.Time) []byte {
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, jsonTime)
	}
	hour, minute, sec := t.Clock()
	_, off := t.Zone()
	b = append4(b, year)
	b = append(b, '-')
	b = append2(b, int(month))
	b = append(b, '-')
	b = append2(b, day)
	b = append(b, 'T')
	b = append2(b, hour)
	b = append(b, ':')
	b = append2(b, minute)
	b = append(b, ':')
	b = append2(b, sec)
	ms := t.Nanosecond() / 1e6
	b = append(b, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
	if off == 0 {
		return append(b, 'Z')
	}
	return appendOffset(b, off, true)
}

// appendOffset appends the zone offset off (seconds east of UTC) as -0700, or as
// -07:00 if colon; the seconds of an offset are dropped, as AppendFormat drops them.
func appendOffset(b []byte, off int, colon bool) []byte {
	zone, sign := off/60, byte('+') // in minutes
	if zone < 0 {
		zone, sign = -zone, '-'
	}
	b = append(b, sign)
	b = append2(b, zone/60)
	if colon {
		b = append(b, ':')
	}
	return append2(b, zone%60)
}

// append2 appends n (0 to 99) as two digits.
func append2(b []byte, n int) []byte { return append(b, byte('0'+n/10), byte('0'+n%10)) }

// append4 appends n (0 to 9999) as four digits.
func append4(b []byte, n int) []byte {
	return append(b, byte('0'+n/1000), byte('0'+n/100%10), byte('0'+n/10%10), byte('0'+n%10))
}

const (
	hexUpper = "0123456789ABCDEF"
	hexLower = "0123456789abcdef"
)

// stamps writes a logger's time stamps: in its Location, and from a copy of the text
// of the last second a stamp was written for, since most lines of a busy log fall in the
// same second as the one before (a zone's offset changes only at whole seconds). Safe
// for concurrent use.
type stamps struct {
	loc  *time.Location
	last atomic.Pointer[stamp]
}

// stamp is the text of one second's stamp: for JSON the date and time up to the
// seconds, then the zone after the milliseconds; for the combined format all of it.
type stamp struct {
	sec        int64
	text, zone []byte
}

func newStamps(loc *time.Location) *stamps { return &stamps{loc: loc} }

// current returns the stamp of t's second in format f, making it if the last one is
// of another second (or nil for a year the layouts cannot write).
func (s *stamps) current(f Format, t time.Time) *stamp {
	sec := t.Unix()
	if st := s.last.Load(); st != nil && st.sec == sec {
		return st
	}
	t = t.In(s.loc)
	if y := t.Year(); y < 0 || y > 9999 {
		return nil
	}
	st := &stamp{sec: sec}
	if f == JSON {
		full := appendJSONTime(make([]byte, 0, len(jsonTime)), t)
		// (full is "2006-01-02T15:04:05.000" and the zone.)
		st.text, st.zone = full[:19], full[23:]
	} else {
		st.text = appendCLFTime(make([]byte, 0, len(clfTime)), t)
	}
	s.last.Store(st)
	return st
}

// appendJSON appends t as appendJSONTime(b, t.In(s.loc)) does.
func (s *stamps) appendJSON(b []byte, t time.Time) []byte {
	st := s.current(JSON, t)
	if st == nil {
		return appendJSONTime(b, t.In(s.loc))
	}
	ms := t.Nanosecond() / 1e6
	b = append(b, st.text...)
	b = append(b, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
	return append(b, st.zone...)
}

// appendCLF appends t as appendCLFTime(b, t.In(s.loc)) does.
func (s *stamps) appendCLF(b []byte, t time.Time) []byte {
	st := s.current(Combined, t)
	if st == nil {
		return appendCLFTime(b, t.In(s.loc))
	}
	return append(b, st.text...)
}

// appendLine appends r's line in format f, newline included, to b; st is the
// logger's, whose format is always f.
func appendLine(b []byte, f Format, r *observe.Request, st *stamps) []byte {
	if f == JSON {
		return appendJSON(b, r, st)
	}
	return appendCombined(b, r, st)
}

// header returns the value of r's first field named name, or "".
func header(r *observe.Request, name string) string {
	if r.Header == nil {
		return ""
	}
	return r.Header.Get(name)
}

// appendCombined appends r in the combined log format.
func appendCombined(b []byte, r *observe.Request, st *stamps) []byte {
	b = appendCLF(b, r.Client)
	b = append(b, " - - ["...)
	b = st.appendCLF(b, r.Start)
	b = append(b, "] \""...)
	if r.Method == "" && r.Target == "" && r.Proto == "" {
		b = append(b, '-')
	} else {
		b = appendEscaped(b, r.Method)
		b = append(b, ' ')
		b = appendEscaped(b, r.Target)
		b = append(b, ' ')
		b = appendEscaped(b, r.Proto)
	}
	b = append(b, "\" "...)
	if r.Status <= 0 {
		b = append(b, '-')
	} else {
		b = strconv.AppendInt(b, int64(r.Status), 10)
	}
	b = append(b, ' ')
	if r.BytesSent <= 0 {
		b = append(b, '-') // as Apache's %b writes no bytes
	} else {
		b = strconv.AppendInt(b, r.BytesSent, 10)
	}
	b = append(b, " \""...)
	b = appendCLF(b, header(r, "Referer"))
	b = append(b, "\" \""...)
	b = appendCLF(b, header(r, "User-Agent"))
	return append(b, "\"\n"...)
}

// appendCLF appends s escaped as [appendEscaped] does, or "-" if s is empty.
func appendCLF(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	return appendEscaped(b, s)
}

// clfEscape marks the bytes nginx's default log escaping (ngx_http_log_escape) writes
// as \xHH: the control bytes, '"', '\\', DEL and every byte from 0x80 up. Read-only.
var clfEscape = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c < 0x20 || c == '"' || c == '\\' || c >= 0x7f
	}
	return t
}()

// appendEscaped appends s with the bytes marked in clfEscape written as \xHH (upper-case
// hex, as nginx writes them).
func appendEscaped(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !clfEscape[c] {
			continue
		}
		b = append(b, s[start:i]...)
		b = append(b, '\\', 'x', hexUpper[c>>4], hexUpper[c&0xf])
		start = i + 1
	}
	return append(b, s[start:]...)
}

// appendJSON appends r as one JSON object.
func appendJSON(b []byte, r *observe.Request, st *stamps) []byte {
	b = append(b, `{"time":"`...)
	b = st.appendJSON(b, r.Start)
	b = append(b, `","service":`...)
	b = appendJSONString(b, r.Service)
	b = append(b, `,"client":`...)
	b = appendJSONString(b, r.Client)
	b = append(b, `,"method":`...)
	b = appendJSONString(b, r.Method)
	b = append(b, `,"target":`...)
	b = appendJSONString(b, r.Target)
	b = append(b, `,"proto":`...)
	b = appendJSONString(b, r.Proto)
	b = append(b, `,"host":`...)
	b = appendJSONString(b, r.Host)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	b = append(b, `,"upstream_status":`...)
	b = strconv.AppendInt(b, int64(r.UpstreamStatus), 10)
	b = append(b, `,"upstream":`...)
	b = appendJSONString(b, r.Upstream)
	b = append(b, `,"bytes_sent":`...)
	b = strconv.AppendInt(b, r.BytesSent, 10)
	b = append(b, `,"bytes_received":`...)
	b = strconv.AppendInt(b, r.BytesReceived, 10)
	b = append(b, `,"duration_ms":`...)
	b = appendMillis(b, r.Duration())
	b = append(b, `,"ttfb_ms":`...)
	b = appendMillis(b, r.TTFB())
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(r.Attempts), 10)
	b = append(b, `,"reused":`...)
	b = strconv.AppendBool(b, r.Reused)
	b = append(b, `,"cache":`...)
	b = appendJSONString(b, r.Cache)
	b = append(b, `,"error":`...)
	if r.Err != nil {
		b = appendJSONString(b, r.Err.Error())
	} else {
		b = append(b, `""`...)
	}
	b = append(b, `,"error_type":`...)
	b = appendJSONString(b, r.ErrType)
	b = append(b, `,"user_agent":`...)
	b = appendJSONString(b, header(r, "User-Agent"))
	b = append(b, `,"referer":`...)
	b = appendJSONString(b, header(r, "Referer"))
	return append(b, "}\n"...)
}

// appendMillis appends d as a number of milliseconds with three decimals (0 for a
// negative d).
func appendMillis(b []byte, d time.Duration) []byte {
	us := d.Microseconds()
	if us < 0 {
		us = 0
	}
	b = strconv.AppendInt(b, us/1000, 10)
	frac := us % 1000
	return append(b, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
}

// jsonPlain marks the bytes appendJSONString copies as they are: the printable ASCII
// characters but '"' and '\\'. Read-only.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendJSONString appends s as a JSON string. '"' and '\\' are escaped, control bytes
// and DEL are written as \n, \r, \t, \b, \f or \u00XX, U+2028 and U+2029 as \u2028
// and \u2029 (as encoding/json does, so a line is also valid JavaScript), and each byte
// that is not part of valid UTF-8 as \ufffd, the replacement character (as
// encoding/json and log/slog do). Other characters are written as they are.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if jsonPlain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexLower[c>>4], hexLower[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexLower[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
