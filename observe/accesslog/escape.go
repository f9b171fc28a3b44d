package accesslog

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
)

// The escapers of the two formats write into a buffer already grown to an upper bound
// of the line's length (see appendJSON and appendCombined), so they append nothing:
// each takes the buffer d and the index i to write at, and returns the index after what
// it wrote. They copy a string's plain bytes eight at a time (a word load, a test of the
// whole word and a word store) and stop only at the bytes they escape. A word store may
// write up to 7 bytes past the string's last byte, which the next field overwrites: a
// line's bound leaves [slack] bytes at its end for it.
//
// Both formats escape the same bytes: the control bytes, '"', '\\', DEL and the bytes
// from 0x80 up (which JSON copies when they are valid UTF-8, except U+2028 and U+2029).

// slack is the room a line's bound keeps past its last byte for the escapers' word
// stores.
const slack = 8

// Upper bounds of an escaped string's length per byte of input: JSON writes at most
// \u00XX or \ufffd (6 bytes) for a byte, and \u2028 for the three bytes of U+2028; the
// combined format writes \xHH.
const (
	jsonPerByte     = 6
	combinedPerByte = 4
)

// plain marks the bytes the escapers copy as they are (when not part of UTF-8, for
// JSON): the printable ASCII characters but '"' and '\\'. Read-only.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const (
	lsb = 0x0101010101010101 // the low bit of each byte of a word
	msb = 0x8080808080808080 // the high bit of each byte of a word
)

// special returns the word w with the high bit set in the lowest byte that plain does
// not mark, if there is one, and maybe in bytes above it; in no byte below it. Its
// tests on each byte b with the high bit clear: b-0x20 borrows (and sets the high bit)
// only for a control byte, b^'"'-1 and b^'\\'-1 only for '"' and '\\', b+1 reaches
// 0x80 only from DEL. A byte from 0x80 up has the high bit already. Only a marked byte
// borrows or carries into the byte above it, so the lowest marked byte is exact.
func special(w uint64) uint64 {
	return (w | (w - 0x20*lsb) | ((w ^ '"'*lsb) - lsb) | ((w ^ '\\'*lsb) - lsb) | (w + lsb)) & msb
}

// load64 returns s's first 8 bytes as a little-endian word (one load).
func load64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// load32 returns s's first 4 bytes as a little-endian word (one load).
func load32(s string) uint64 {
	_ = s[3]
	return uint64(uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24)
}

// loadShort returns s, shorter than 8 bytes, as a little-endian word, in at most three
// loads (which overlap); the bytes past s are zeros.
func loadShort(s string) uint64 {
	n := len(s)
	if n >= 4 {
		return load32(s) | load32(s[n-4:])<<(8*(n-4)&63)
	}
	if n > 0 {
		// The first, the middle and the last byte, some of them the same.
		return uint64(s[0]) | uint64(s[n/2])<<(8*(n/2)&63) | uint64(s[n-1])<<(8*(n-1)&63)
	}
	return 0
}

// putString writes s to d at i, escaped by long, and returns the index after it. It
// writes a string of at most 16 bytes with no byte to escape itself, as most strings
// of a line are: with one or two loads (which overlap) of up to 8 bytes, a test and
// one or two stores, and no loop; a longer one with no byte to escape in a plain loop
// of such words. It calls long for the others (from their first word with a byte to
// escape, for a long one). d has room for len(s)+slack bytes from i, and what long
// requires.
func putString(d []byte, i int, s string, long func(d []byte, i int, s string) int) int {
	n := len(s)
	var lo, hi uint64
	switch {
	case n > 16:
		// A word at a time while the words have nothing to escape, the last 8 bytes
		// (which overlap the words before) as one more word. At a word with a byte to
		// escape, long writes the rest: the bytes before it are plain ASCII, so it
		// starts at a character.
		for j := 0; ; j = min(j+8, n-8) {
			w := load64(s[j : j+8])
			if special(w) != 0 {
				return long(d, i+j, s[j:])
			}
			binary.LittleEndian.PutUint64(d[i+j:i+j+8], w)
			if j == n-8 {
				return i + n
			}
		}
	case n >= 8:
		lo, hi = load64(s[:8]), load64(s[n-8:])
		if special(lo)|special(hi) != 0 { // (a word without a byte to escape has no mark)
			return long(d, i, s)
		}
		binary.LittleEndian.PutUint64(d[i:i+8], lo)
		binary.LittleEndian.PutUint64(d[i+n-8:i+n], hi)
		return i + n
	case n >= 4:
		lo = load32(s) | load32(s[n-4:])<<(8*(n-4)&63)
	case n > 0:
		// The first, the middle and the last byte, some of them the same.
		lo = uint64(s[0]) | uint64(s[n/2])<<(8*(n/2)&63) | uint64(s[n-1])<<(8*(n-1)&63)
	default:
		return i
	}
	if special(lo)&(1<<(8*n&63)-1) != 0 { // (the zeros past s are marked)
		return long(d, i, s)
	}
	binary.LittleEndian.PutUint64(d[i:i+8], lo)
	return i + n
}

// nextPlain copies the plain bytes of s from j to d at i, a word at a time, up to
// the first byte that is not plain or the end of s; it returns the number of bytes it
// copied, and may store up to 7 bytes more.
func nextPlain(d []byte, i int, s string, j int) int {
	k := 0
	for {
		var w, mask uint64
		n := len(s) - j - k
		switch {
		case n >= 8:
			w, mask = load64(s[j+k:j+k+8]), ^uint64(0)
		case n == 0:
			return k
		case len(s) >= 8:
			// The last 8 bytes, shifted so that the n not yet seen come first; the
			// zeros shifted in, which special marks, are masked out.
			w, mask = load64(s[len(s)-8:])>>((64-8*n)&63), 1<<(8*n&63)-1
		default:
			w, mask = loadShort(s[j+k:]), 1<<(8*n&63)-1
		}
		binary.LittleEndian.PutUint64(d[i+k:i+k+8], w)
		if m := special(w) & mask; m != 0 {
			return k + bits.TrailingZeros64(m)>>3
		}
		k += min(n, 8)
	}
}

// putJSON writes s escaped as a JSON string's content (without the quotes) to d at i,
// and returns the index after it. d has room for escapedLen(s, jsonPerByte)+slack
// bytes from i (jsonPerByte*len(s)+slack is more). See [appendJSONString] for the escaping. It stores s a word at a time and may
// write up to 7 bytes past what it returns.
func putJSON(d []byte, i int, s string) int {
	if len(s) == 0 { // (inlined: the empty fields of a line cost no call)
		return i
	}
	return putString(d, i, s, putJSONLong)
}

// putJSONLong is putJSON for the strings putString does not write itself.
func putJSONLong(d []byte, i int, s string) int {
	for j := 0; ; {
		k := nextPlain(d, i, s, j)
		i += k
		j += k
		if j == len(s) {
			return i
		}
		// Escape s[j], and the bytes after it while they are not plain. (The first is
		// escaped whatever plain says, so that the loop always moves on.)
		for escape := true; escape; escape = j < len(s) && !plain[s[j]] {
			if c := s[j]; c < utf8.RuneSelf {
				switch c {
				case '"', '\\':
					d[i], d[i+1] = '\\', c
					i += 2
				case '\n':
					i = put(d, i, `\n`)
				case '\r':
					i = put(d, i, `\r`)
				case '\t':
					i = put(d, i, `\t`)
				case '\b':
					i = put(d, i, `\b`)
				case '\f':
					i = put(d, i, `\f`)
				default:
					i = put(d, i, `\u00`)
					d[i], d[i+1] = hexLower[c>>4], hexLower[c&0xf]
					i += 2
				}
				j++
				continue
			}
			r, size := utf8.DecodeRuneInString(s[j:])
			switch {
			case r == utf8.RuneError && size == 1:
				i = put(d, i, `\ufffd`)
			case r == '\u2028' || r == '\u2029':
				i = put(d, i, `\u202`)
				d[i] = hexLower[r&0xf]
				i++
			default: // 2 to 4 bytes of valid UTF-8, copied as they are
				d[i], d[i+1] = s[j], s[j+1]
				if size > 2 {
					d[i+2] = s[j+2]
					if size > 3 {
						d[i+3] = s[j+3]
					}
				}
				i += size
			}
			j += size
		}
	}
}

// putCombined writes s escaped as [appendEscaped] escapes it to d at i, and returns
// the index after it. d has room for escapedLen(s, combinedPerByte)+slack bytes from i
// (combinedPerByte*len(s)+slack is more). It
// stores s a word at a time and may write up to 7 bytes past what it returns.
func putCombined(d []byte, i int, s string) int {
	if len(s) == 0 {
		return i
	}
	return putString(d, i, s, putCombinedLong)
}

// putCombinedLong is putCombined for the strings putString does not write itself.
func putCombinedLong(d []byte, i int, s string) int {
	for j := 0; ; {
		k := nextPlain(d, i, s, j)
		i += k
		j += k
		if j == len(s) {
			return i
		}
		// Escape s[j], and the bytes after it while they are not plain. (The first is
		// escaped whatever plain says, so that the loop always moves on.)
		for escape := true; escape; escape = j < len(s) && !plain[s[j]] {
			c := s[j]
			d[i], d[i+1], d[i+2], d[i+3] = '\\', 'x', hexUpper[c>>4], hexUpper[c&0xf]
			i += 4
			j++
		}
	}
}

// appendJSONString appends s as a JSON string. '"' and '\\' are escaped, control bytes
// and DEL are written as \n, \r, \t, \b, \f or \u00XX, U+2028 and U+2029 as \u2028
// and \u2029 (as encoding/json does, so a line is also valid JavaScript), and each byte
// that is not part of valid UTF-8 as \ufffd, the replacement character (as
// encoding/json and log/slog do). Other characters are written as they are.
func appendJSONString(b []byte, s string) []byte {
	n := len(b)
	d := grow(b, jsonPerByte*len(s)+2+slack)
	d[n] = '"'
	n = putJSON(d, n+1, s)
	d[n] = '"'
	return d[:n+1]
}

// appendEscaped appends s with the bytes that are not printable ASCII, '"' and '\\'
// written as \xHH (upper-case hex), as nginx's default log escaping
// (ngx_http_log_escape) writes them.
func appendEscaped(b []byte, s string) []byte {
	n := len(b)
	d := grow(b, combinedPerByte*len(s)+slack)
	return d[:putCombined(d, n, s)]
}

// escapedLen returns an upper bound of the length of s escaped, for an escaping that
// writes at most perByte bytes for each byte that is not plain: len(s) if s has none.
// A long line's bound with it is tighter than with perByte*len(s), which costs no
// scan of the strings but would grow a buffer to several times the line.
func escapedLen(s string, perByte int) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		if !plain[s[i]] {
			n += perByte - 1
		}
	}
	return n
}

// grow returns b extended to its capacity, which it grows, if needed, to hold n more
// bytes than len(b) (and to twice what it was at least).
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), max(2*cap(b), len(b)+n))
		copy(nb, b)
		b = nb
	}
	return b[:cap(b)]
}
