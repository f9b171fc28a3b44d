package compress

// Coding is a content coding this package can produce or decode.
type Coding uint8

// The content codings, by their IANA names (RFC 9110 §8.4.1, RFC 7932, RFC 8878).
const (
	// Identity is no coding: the body as it is.
	Identity Coding = iota
	// Zstd is Zstandard ("zstd", RFC 8878).
	Zstd
	// Brotli is Brotli ("br", RFC 7932).
	Brotli
	// Gzip is gzip ("gzip", RFC 1952; "x-gzip" is taken as the same).
	Gzip
	numCodings
)

// String returns the coding's name as it appears in Content-Encoding: "identity",
// "zstd", "br" or "gzip".
func (c Coding) String() string {
	switch c {
	case Identity:
		return "identity"
	case Zstd:
		return "zstd"
	case Brotli:
		return "br"
	case Gzip:
		return "gzip"
	}
	return "unknown"
}

// ParseCoding returns the coding named name (case-insensitive; "x-gzip" is gzip), and
// false for a name this package does not know.
func ParseCoding(name string) (Coding, bool) {
	switch {
	case eqFold(name, "gzip"), eqFold(name, "x-gzip"):
		return Gzip, true
	case eqFold(name, "br"):
		return Brotli, true
	case eqFold(name, "zstd"):
		return Zstd, true
	case eqFold(name, "identity"):
		return Identity, true
	}
	return 0, false
}

// qUnset marks a coding the header does not name.
const qUnset = -1

// Accept is a parsed Accept-Encoding field: the weight (q-value, in thousandths, 0 to
// 1000) the client gives each coding this package knows, the one given to "*", and
// whether the field was present at all. The zero value is "no field". Build one with
// [ParseAcceptEncoding].
type Accept struct {
	q       [numCodings]int16 // by Coding; qUnset when not named
	star    int16             // q of "*", or qUnset
	present bool
}

// ParseAcceptEncoding parses the values of the request's Accept-Encoding fields (RFC 9110
// §12.5.3), given as they arrived; several values are one list. Codings this package
// does not know are ignored, as is an element that is not well formed (a bad q-value,
// say): it counts as not sent. It does not allocate.
func ParseAcceptEncoding(values ...string) Accept {
	var a Accept
	a.reset()
	for _, v := range values {
		a.present = true
		a.parse(v)
	}
	return a
}

func (a *Accept) reset() {
	for i := range a.q {
		a.q[i] = qUnset
	}
	a.star = qUnset
	a.present = false
}

// parse adds one field value's elements to a.
func (a *Accept) parse(v string) {
	for len(v) > 0 {
		var elem string
		elem, v = cutByte(v, ',')
		elem = trimOWS(elem)
		if elem == "" {
			continue // empty list elements are allowed (RFC 9110 §5.6.1)
		}
		name, params := cutByte(elem, ';')
		name = trimOWS(name)
		if !isToken(name) && name != "*" {
			continue
		}
		q, ok := parseParams(params)
		if !ok {
			continue
		}
		if name == "*" {
			a.star = maxQ(a.star, q)
			continue
		}
		c, known := ParseCoding(name)
		if !known {
			continue
		}
		a.q[c] = maxQ(a.q[c], q) // a coding named twice: the more favourable weight
	}
}

func maxQ(old, q int16) int16 {
	if old == qUnset || q > old {
		return q
	}
	return old
}

// parseParams reads the parameters after a coding: a "q" weight (RFC 9110 §12.4.2) and
// any others, which are ignored. No q means 1.
func parseParams(params string) (int16, bool) {
	q := int16(1000)
	for len(params) > 0 {
		var p string
		p, params = cutByte(params, ';')
		p = trimOWS(p)
		if p == "" {
			continue
		}
		k, val, found := cutByte3(p, '=')
		k, val = trimOWS(k), trimOWS(val)
		if !found || !isToken(k) {
			return 0, false
		}
		if eqFold(k, "q") {
			w, ok := parseQ(val)
			if !ok {
				return 0, false
			}
			q = w
		}
	}
	return q, true
}

// parseQ parses a weight: "0" or "1" with up to three decimals, at most 1 (RFC 9110
// §12.4.2), in thousandths.
func parseQ(s string) (int16, bool) {
	if len(s) == 0 || len(s) > 5 || (s[0] != '0' && s[0] != '1') {
		return 0, false
	}
	w := int16(s[0]-'0') * 1000
	if len(s) == 1 {
		return w, true
	}
	if s[1] != '.' {
		return 0, false
	}
	scale := int16(100)
	for i := 2; i < len(s); i++ {
		d := s[i]
		if d < '0' || d > '9' {
			return 0, false
		}
		w += int16(d-'0') * scale
		scale /= 10
	}
	if w > 1000 {
		return 0, false
	}
	return w, true
}

// Present reports whether the request had an Accept-Encoding field.
func (a Accept) Present() bool { return a.present }

// Q returns the weight, in thousandths (0 to 1000), that the client gives c: its own
// entry, else "*"'s, else 0 for a coding, and for identity 1000 unless refused (RFC 9110
// §12.5.3: identity is acceptable unless "identity;q=0" or "*;q=0" says otherwise).
// With no Accept-Encoding field at all it returns 1000 for identity and 0 for every
// coding: a server may choose any coding then, but clients that send no field mostly
// cannot decode one, so this package sends them the body as it is, as nginx does.
func (a Accept) Q(c Coding) int {
	if !a.present {
		if c == Identity {
			return 1000
		}
		return 0
	}
	if c < numCodings && a.q[c] != qUnset {
		return int(a.q[c])
	}
	if a.star != qUnset {
		return int(a.star)
	}
	if c == Identity {
		return 1000
	}
	return 0
}

// Negotiate picks the coding for a response among prefs (the server's codings, most
// preferred first): the one with the highest weight, ties broken by prefs' order, and
// Identity when none is acceptable (weight 0) or when the client explicitly weighs
// identity higher than all of them ("gzip;q=0.5, identity" asks for no coding).
func (a Accept) Negotiate(prefs []Coding) Coding {
	best, bestQ := Identity, 0
	for _, c := range prefs {
		if q := a.Q(c); q > bestQ {
			best, bestQ = c, q
		}
	}
	if best == Identity {
		return Identity
	}
	// Identity's own weight counts only when the client wrote it (or "*"): an implicit
	// identity does not beat a coding the client asked for.
	if a.q[Identity] != qUnset && int(a.q[Identity]) > bestQ {
		return Identity
	}
	return best
}

// cutByte splits s at the first c; after is "" when there is none.
func cutByte(s string, c byte) (before, after string) {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

func cutByte3(s string, c byte) (before, after string, found bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// trimOWS removes optional whitespace (SP and HTAB) at both ends.
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// isToken reports whether s is a non-empty token (RFC 9110 §5.6.2).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '!' || c == '#' || c == '$' || c == '%' || c == '&' || c == '\'' || c == '*' ||
			c == '+' || c == '-' || c == '.' || c == '^' || c == '_' || c == '`' || c == '|' || c == '~':
		default:
			return false
		}
	}
	return true
}

// eqFold is ASCII case-insensitive equality.
func eqFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
