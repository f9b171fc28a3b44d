package h1

// Scanning eight bytes at a time. Field values and request targets are checked a word
// at a time with the bit tricks below, which tell whether a word holds a byte of some
// range without a branch per byte; names and methods (tokens, whose set has too many
// holes for that) are checked several bytes to a branch through charClass.

const (
	lo8 = 0x0101010101010101
	hi8 = 0x8080808080808080
)

// load64 reads eight bytes of s from i as a little-endian word (one load once
// compiled).
func load64[T string | []byte](s T, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// hasLess reports whether some byte of x is less than n (n <= 0x80).
func hasLess(x uint64, n byte) bool { return (x-uint64(n)*lo8)&^x&hi8 != 0 }

// hasByte reports whether some byte of x is c.
func hasByte(x uint64, c byte) bool {
	y := x ^ uint64(c)*lo8
	return (y-lo8)&^y&hi8 != 0
}

// badValueByte returns the index of the first byte of v that a field value may not
// hold (RFC 9110 §5.5: a control character other than HTAB, or DEL), or -1.
func badValueByte[T string | []byte](v T) int {
	i := 0
	for ; i+8 <= len(v); i += 8 {
		// Words without control characters pass at once; a word with one (an HTAB
		// perhaps) is looked at byte by byte below, as is the tail.
		if x := load64(v, i); hasLess(x, 0x20) || hasByte(x, 0x7f) {
			break
		}
	}
	for ; i < len(v); i++ {
		if charClass[v[i]]&cValue == 0 {
			return i
		}
	}
	return -1
}

// vcharLen returns the length of the run of VCHAR (0x21-0x7E) at the start of s.
func vcharLen[T string | []byte](s T) int {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if x := load64(s, i); x&hi8 != 0 || hasLess(x, 0x21) || hasByte(x, 0x7f) {
			break
		}
	}
	for ; i < len(s) && charClass[s[i]]&cVchar != 0; i++ {
	}
	return i
}

// tokenLen returns the length of the run of tchar (RFC 9110 §5.6.2) at the start of s.
func tokenLen[T string | []byte](s T) int {
	i := 0
	// (Four bytes to a branch: field names are short, and eight measured slower.)
	for ; i+4 <= len(s); i += 4 {
		w := s[i : i+4] // (one bounds check for the four bytes)
		if charClass[w[0]]&charClass[w[1]]&charClass[w[2]]&charClass[w[3]]&cToken == 0 {
			break
		}
	}
	for ; i < len(s) && charClass[s[i]]&cToken != 0; i++ {
	}
	return i
}
