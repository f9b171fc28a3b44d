package accesslog

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gotthard-proxy/gotthard/observe"
)

// This file keeps the package's first formatters, simple appenders a byte and a field
// at a time, as the reference the fast ones in format.go and escape.go are checked
// against: the lines must be the same, byte for byte.

// refLine is appendLine by the reference formatters.
func refLine(b []byte, f Format, r *observe.Request, st *stamps) []byte {
	if f == JSON {
		return refJSON(b, r, st)
	}
	return refCombined(b, r, st)
}

// appendCombined appends r in the combined log format.
func refCombined(b []byte, r *observe.Request, st *stamps) []byte {
	b = refCLF(b, r.Client)
	b = append(b, " - - ["...)
	b = r.Start.In(st.loc).AppendFormat(b, clfTime)
	b = append(b, "] \""...)
	if r.Method == "" && r.Target == "" && r.Proto == "" {
		b = append(b, '-')
	} else {
		b = refEscaped(b, r.Method)
		b = append(b, ' ')
		b = refEscaped(b, r.Target)
		b = append(b, ' ')
		b = refEscaped(b, r.Proto)
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
	b = refCLF(b, header(r, "Referer"))
	b = append(b, "\" \""...)
	b = refCLF(b, header(r, "User-Agent"))
	return append(b, "\"\n"...)
}

// appendCLF appends s escaped as [appendEscaped] does, or "-" if s is empty.
func refCLF(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	return refEscaped(b, s)
}

// refCLFEscape marks the bytes nginx's default log escaping (ngx_http_log_escape) writes
// as \xHH: the control bytes, '"', '\\', DEL and every byte from 0x80 up. Read-only.
var refCLFEscape = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c < 0x20 || c == '"' || c == '\\' || c >= 0x7f
	}
	return t
}()

// appendEscaped appends s with the bytes marked in refCLFEscape written as \xHH (upper-case
// hex, as nginx writes them).
func refEscaped(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !refCLFEscape[c] {
			continue
		}
		b = append(b, s[start:i]...)
		b = append(b, '\\', 'x', hexUpper[c>>4], hexUpper[c&0xf])
		start = i + 1
	}
	return append(b, s[start:]...)
}

// appendJSON appends r as one JSON object.
func refJSON(b []byte, r *observe.Request, st *stamps) []byte {
	b = append(b, `{"time":"`...)
	b = r.Start.In(st.loc).AppendFormat(b, jsonTime)
	b = append(b, `","service":`...)
	b = refJSONString(b, r.Service)
	b = append(b, `,"client":`...)
	b = refJSONString(b, r.Client)
	b = append(b, `,"method":`...)
	b = refJSONString(b, r.Method)
	b = append(b, `,"target":`...)
	b = refJSONString(b, r.Target)
	b = append(b, `,"proto":`...)
	b = refJSONString(b, r.Proto)
	b = append(b, `,"host":`...)
	b = refJSONString(b, r.Host)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	b = append(b, `,"upstream_status":`...)
	b = strconv.AppendInt(b, int64(r.UpstreamStatus), 10)
	b = append(b, `,"upstream":`...)
	b = refJSONString(b, r.Upstream)
	b = append(b, `,"bytes_sent":`...)
	b = strconv.AppendInt(b, r.BytesSent, 10)
	b = append(b, `,"bytes_received":`...)
	b = strconv.AppendInt(b, r.BytesReceived, 10)
	b = append(b, `,"duration_ms":`...)
	b = refMillis(b, r.Duration())
	b = append(b, `,"ttfb_ms":`...)
	b = refMillis(b, r.TTFB())
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(r.Attempts), 10)
	b = append(b, `,"reused":`...)
	b = strconv.AppendBool(b, r.Reused)
	b = append(b, `,"cache":`...)
	b = refJSONString(b, r.Cache)
	b = append(b, `,"error":`...)
	if r.Err != nil {
		b = refJSONString(b, r.Err.Error())
	} else {
		b = append(b, `""`...)
	}
	b = append(b, `,"error_type":`...)
	b = refJSONString(b, r.ErrType)
	b = append(b, `,"user_agent":`...)
	b = refJSONString(b, header(r, "User-Agent"))
	b = append(b, `,"referer":`...)
	b = refJSONString(b, header(r, "Referer"))
	return append(b, "}\n"...)
}

// appendMillis appends d as a number of milliseconds with three decimals (0 for a
// negative d).
func refMillis(b []byte, d time.Duration) []byte {
	us := d.Microseconds()
	if us < 0 {
		us = 0
	}
	b = strconv.AppendInt(b, us/1000, 10)
	frac := us % 1000
	return append(b, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
}

// refJSONPlain marks the bytes appendJSONString copies as they are: the printable ASCII
// characters but '"' and '\\'. Read-only.
var refJSONPlain = func() (t [256]bool) {
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
func refJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if refJSONPlain[c] {
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
