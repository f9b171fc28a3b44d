package syslog

import (
	"log/slog"
	"strconv"
	"unicode/utf8"
)

// validRune returns the length of the valid UTF-8 encoding at the start of s, or 0.
func validRune(s string) int {
	r, n := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError && n <= 1 {
		return 0
	}
	return n
}

// appendUTF8 appends s with invalid UTF-8 replaced by U+FFFD.
func appendUTF8(b []byte, s string) []byte {
	if utf8.ValidString(s) {
		return append(b, s...)
	}
	return appendClean(b, s, false)
}

// appendClean appends s with invalid UTF-8 replaced by U+FFFD and, with sd, a backslash
// before '"', '\' and ']' (RFC 5424 section 6.3.3, PARAM-VALUE).
func appendClean(b []byte, s string, sd bool) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if sd && (c == '"' || c == '\\' || c == ']') {
				b = append(b, '\\')
			}
			b = append(b, c)
			i++
			continue
		}
		n := validRune(s[i:])
		if n == 0 {
			b = append(b, "\uFFFD"...)
			i++
			continue
		}
		b = append(b, s[i:i+n]...)
		i += n
	}
	return b
}

// needsQuote reports whether s must be quoted as a key or value of the text format:
// it is empty or holds a space, a control character, '=', '"' or non-ASCII.
func needsQuote(s string) bool {
	if s == "" {
		return true
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= utf8.RuneSelf || c == '=' || c == '"' || c == '\\' {
			return true
		}
	}
	return false
}

// appendTextKey appends prefix+key, quoted if needed.
func appendTextKey(b []byte, prefix, key string) []byte {
	if needsQuote(prefix) && prefix != "" || needsQuote(key) {
		return strconv.AppendQuote(b, prefix+key)
	}
	b = append(b, prefix...)
	return append(b, key...)
}

// appendTextValue appends v as text, quoted if needed.
func appendTextValue(b []byte, v slog.Value) []byte { return appendValue(b, v, appendTextString) }

// appendTextString appends s, quoted if needed.
func appendTextString(b []byte, s string) []byte {
	if needsQuote(s) {
		return strconv.AppendQuote(b, s)
	}
	return append(b, s...)
}
