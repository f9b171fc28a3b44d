package cache

import (
	"cmp"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/gotthard-proxy/gotthard/message"
)

// Errors of [Policy.ParseRange]. Callers test them with errors.Is.
var (
	// ErrRangeSyntax: the Range field is not a valid bytes ranges-specifier (or uses
	// another unit). The cache ignores it and sends the full response (RFC 9110 §14.2).
	ErrRangeSyntax = errors.New("cache: invalid Range")
	// ErrRangeTooMany: more ranges than [Policy.MaxRanges]. The cache ignores the Range
	// and sends the full response, as RFC 9110 §14.2 and §17.15 allow.
	ErrRangeTooMany = errors.New("cache: too many ranges")
	// ErrRangeUnsatisfiable: no range overlaps the representation. The cache answers
	// 416 ([Unsatisfiable]).
	ErrRangeUnsatisfiable = errors.New("cache: range not satisfiable")
)

// defaultMaxRanges is [Policy.MaxRanges]'s default.
const defaultMaxRanges = 16

// ByteRange is a satisfiable byte range of a stored body: Length bytes from Start.
type ByteRange struct {
	Start, Length int64
}

// AppendContentRange appends the Content-Range value of r in a body of size bytes:
// "bytes first-last/size".
func (r ByteRange) AppendContentRange(dst []byte, size int64) []byte {
	dst = append(dst, "bytes "...)
	dst = strconv.AppendInt(dst, r.Start, 10)
	dst = append(dst, '-')
	dst = strconv.AppendInt(dst, r.Start+r.Length-1, 10)
	dst = append(dst, '/')
	return strconv.AppendInt(dst, size, 10)
}

// ParseRange parses a Range field value (RFC 9110 §14.1.1, §14.2) against a stored body
// of size bytes and appends the satisfiable ranges to dst: "first-last" (last past the
// end is cut to it), "first-" (to the end) and "-suffix" (the last suffix bytes, or
// all of them). Ranges that start past the end, and "-0", are unsatisfiable and left
// out. When the ranges are not already in ascending order without overlap or
// contact, they are sorted and coalesced (§14.2 allows it), so a response never sends
// a byte twice.
//
// The errors: [ErrRangeSyntax] for an invalid value, another unit, or a first-pos
// after its last-pos; [ErrRangeTooMany] for more than [Policy.MaxRanges] ranges; both
// mean "send the full response". [ErrRangeUnsatisfiable] when no range is
// satisfiable, or the body is empty: answer 416. One range answers with [Partial],
// several with [Multipart]. On success it allocates only if dst must grow.
func (p Policy) ParseRange(dst []ByteRange, value string, size int64) ([]ByteRange, error) {
	limit := p.MaxRanges
	if limit == 0 {
		limit = defaultMaxRanges
	}
	unit, set, ok := cutByte(trimOWS(value), '=')
	if !ok || !message.EqualFold(unit, "bytes") {
		return dst, fmt.Errorf("%w: unit %q", ErrRangeSyntax, unit)
	}
	base := len(dst)
	count := 0
	for set != "" {
		var spec string
		spec, set, _ = cutByte(set, ',')
		spec = trimOWS(spec)
		if spec == "" {
			continue
		}
		count++
		if count > limit {
			return dst[:base], fmt.Errorf("%w: more than %d", ErrRangeTooMany, limit)
		}
		first, last, ok := cutByte(spec, '-')
		if !ok {
			return dst[:base], fmt.Errorf("%w: %q", ErrRangeSyntax, spec)
		}
		if first == "" { // suffix-range
			n, ok := parsePos(last)
			if !ok {
				return dst[:base], fmt.Errorf("%w: %q", ErrRangeSyntax, spec)
			}
			if n > 0 && size > 0 {
				n = min(n, size)
				dst = append(dst, ByteRange{Start: size - n, Length: n})
			}
			continue
		}
		start, ok := parsePos(first)
		if !ok {
			return dst[:base], fmt.Errorf("%w: %q", ErrRangeSyntax, spec)
		}
		end := int64(math.MaxInt64)
		if last != "" {
			if end, ok = parsePos(last); !ok || end < start {
				return dst[:base], fmt.Errorf("%w: %q", ErrRangeSyntax, spec)
			}
		}
		if start >= size {
			continue
		}
		end = min(end, size-1)
		dst = append(dst, ByteRange{Start: start, Length: end - start + 1})
	}
	if count == 0 {
		return dst[:base], fmt.Errorf("%w: no range", ErrRangeSyntax)
	}
	rs := dst[base:]
	if len(rs) == 0 {
		return dst[:base], ErrRangeUnsatisfiable
	}
	return dst[:base+coalesce(rs)], nil
}

// coalesce sorts and merges rs in place if they overlap, touch or are out of order,
// and returns how many remain.
func coalesce(rs []ByteRange) int {
	ordered := true
	for i := 1; i < len(rs); i++ {
		if rs[i].Start <= rs[i-1].Start+rs[i-1].Length {
			ordered = false
			break
		}
	}
	if ordered {
		return len(rs)
	}
	slices.SortFunc(rs, func(a, b ByteRange) int { return cmp.Compare(a.Start, b.Start) })
	n := 0
	for _, r := range rs[1:] {
		cur := &rs[n]
		if r.Start <= cur.Start+cur.Length {
			cur.Length = max(cur.Length, r.Start+r.Length-cur.Start)
			continue
		}
		n++
		rs[n] = r
	}
	return n + 1
}

// parsePos parses 1*DIGIT, saturating at math.MaxInt64.
func parsePos(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			n = math.MaxInt64
		} else {
			n = n*10 + d
		}
	}
	return n, true
}

func cutByte(s string, sep byte) (before, after string, found bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// IfRangeMatches evaluates a request's If-Range against the stored response (RFC 9110
// §13.1.5): true when there is no If-Range, when it is an entity-tag that strongly
// matches the stored ETag, or when it is a date equal to the stored Last-Modified.
// False (a weak tag, another tag or date, an invalid value) means the Range is to be
// ignored and the full response sent.
func IfRangeMatches(req *message.RequestHeader, meta *Meta) bool {
	v, ok := req.Header.Lookup("If-Range")
	if !ok {
		return true
	}
	v = trimOWS(v)
	if len(v) > 0 && (v[0] == '"' || len(v) > 1 && v[:2] == "W/") {
		t, ok1 := ParseETag(v)
		s, ok2 := ParseETag(meta.Response.Header.Get("ETag"))
		return ok1 && ok2 && t.StrongMatch(s)
	}
	return sameDate(v, meta.Response.Header.Get("Last-Modified"))
}

// Partial makes dst the head of a 206 (Partial Content) answering one range of the
// stored response meta, whose body is size bytes: the head [ServeHeader] makes, with
// Content-Range and Content-Length for the range (RFC 9110 §15.3.7).
func Partial(dst *message.ResponseHeader, meta *Meta, r ByteRange, size int64, now time.Time) {
	ServeHeader(dst, meta, now)
	dst.Status, dst.Reason = 206, ""
	var buf [64]byte
	dst.Header.Set("Content-Range", string(r.AppendContentRange(buf[:0], size)))
	dst.Header.Set("Content-Length", strconv.FormatInt(r.Length, 10))
}

// Unsatisfiable makes dst the 416 (Range Not Satisfiable) for a stored body of size
// bytes: Content-Range "bytes */size" (RFC 9110 §15.5.17), an empty body, and the
// stored Date, ETag and Last-Modified.
func Unsatisfiable(dst *message.ResponseHeader, meta *Meta, size int64, now time.Time) {
	dst.Reset()
	dst.Status, dst.Version = 416, meta.Response.Version
	for _, name := range [...]string{"Date", "ETag", "Last-Modified"} {
		if v, ok := meta.Response.Header.Lookup(name); ok {
			dst.Header.Add(name, v)
		}
	}
	if !dst.Header.Has("Date") {
		dst.Header.Add("Date", formatHTTPDate(now))
	}
	dst.Header.Add("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
	dst.Header.Add("Content-Length", "0")
}

// Multipart is a multipart/byteranges body (RFC 9110 §14.6) answering several ranges
// of a stored body: each part is a boundary line, the part's Content-Type and
// Content-Range, a blank line and the range's bytes; the body ends with the closing
// boundary. Its length is known before any byte is written, so the response has a
// Content-Length. A Multipart is immutable once made and safe for concurrent use.
type Multipart struct {
	ranges      []ByteRange
	size        int64
	contentType string
	boundary    string
}

// NewMultipart returns the multipart body for ranges (as [Policy.ParseRange] returns
// them: at least one, within size) of a body of size bytes whose Content-Type is
// contentType ("" for none). The boundary is boundary, or if that is empty 26 random
// characters from crypto/rand, which no body contains by chance. It keeps its own copy
// of ranges.
func NewMultipart(ranges []ByteRange, size int64, contentType, boundary string) *Multipart {
	if boundary == "" {
		boundary = rand.Text()
	}
	return &Multipart{ranges: slices.Clone(ranges), size: size, contentType: contentType, boundary: boundary}
}

// Boundary returns the boundary string.
func (m *Multipart) Boundary() string { return m.boundary }

// Ranges returns the parts' ranges; the caller must not change them.
func (m *Multipart) Ranges() []ByteRange { return m.ranges }

// AppendPartHeader appends what precedes part i's bytes: the CRLF that ends the
// previous part (if any), the boundary line and the part's fields and blank line.
func (m *Multipart) AppendPartHeader(dst []byte, i int) []byte {
	if i > 0 {
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "--"...)
	dst = append(dst, m.boundary...)
	dst = append(dst, "\r\n"...)
	if m.contentType != "" {
		dst = append(dst, "Content-Type: "...)
		dst = append(dst, m.contentType...)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "Content-Range: "...)
	dst = m.ranges[i].AppendContentRange(dst, m.size)
	return append(dst, "\r\n\r\n"...)
}

// AppendClose appends the closing boundary that follows the last part's bytes.
func (m *Multipart) AppendClose(dst []byte) []byte {
	dst = append(dst, "\r\n--"...)
	dst = append(dst, m.boundary...)
	return append(dst, "--\r\n"...)
}

// ContentLength is the body's length in bytes, computed without building it.
func (m *Multipart) ContentLength() int64 {
	n := int64(len("\r\n--") + len(m.boundary) + len("--\r\n"))
	sizeLen := int64(decimalLen(m.size))
	for i, r := range m.ranges {
		if i > 0 {
			n += 2
		}
		n += int64(2 + len(m.boundary) + 2)
		if m.contentType != "" {
			n += int64(len("Content-Type: ") + len(m.contentType) + 2)
		}
		n += int64(len("Content-Range: bytes ")+decimalLen(r.Start)+1+decimalLen(r.Start+r.Length-1)+1) + sizeLen + 4
		n += r.Length
	}
	return n
}

// Header makes dst the head of the 206 (Partial Content) carrying this body for the
// stored response meta: the head [ServeHeader] makes, without the stored
// Content-Type (it moves into each part), with Content-Type multipart/byteranges and
// the boundary, and Content-Length.
func (m *Multipart) Header(dst *message.ResponseHeader, meta *Meta, now time.Time) {
	ServeHeader(dst, meta, now)
	dst.Status, dst.Reason = 206, ""
	dst.Header.Del("Content-Range")
	dst.Header.Set("Content-Type", "multipart/byteranges; boundary="+m.boundary)
	dst.Header.Set("Content-Length", strconv.FormatInt(m.ContentLength(), 10))
}

// WriteBody writes the whole body to w, reading the ranges from body (the stored
// object), and returns the bytes written. It stops at the first error.
func (m *Multipart) WriteBody(w io.Writer, body io.ReaderAt) (int64, error) {
	var written int64
	buf := make([]byte, 0, 256)
	for i, r := range m.ranges {
		buf = m.AppendPartHeader(buf[:0], i)
		n, err := w.Write(buf)
		written += int64(n)
		if err != nil {
			return written, fmt.Errorf("cache: writing part %d: %w", i, err)
		}
		c, err := io.Copy(w, io.NewSectionReader(body, r.Start, r.Length))
		written += c
		if err == nil && c < r.Length {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return written, fmt.Errorf("cache: copying part %d: %w", i, err)
		}
	}
	n, err := w.Write(m.AppendClose(buf[:0]))
	written += int64(n)
	if err != nil {
		return written, fmt.Errorf("cache: writing closing boundary: %w", err)
	}
	return written, nil
}

// decimalLen is the number of decimal digits of a non-negative n.
func decimalLen(n int64) int {
	d := 1
	for n >= 10 {
		n /= 10
		d++
	}
	return d
}
