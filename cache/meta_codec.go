package cache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/gotthard-proxy/gotthard/message"
)

// ErrMetaEncoding is returned, wrapped, by [Meta.UnmarshalBinary] for an input that is not
// a well-formed encoding of a Meta: a wrong magic, an unknown version, a length that
// runs past the end, a value out of range or trailing bytes.
var ErrMetaEncoding = errors.New("cache: malformed Meta encoding")

// The binary form of a Meta, version 1. Integers are varints (encoding/binary's Uvarint,
// and Varint for signed ones); a string is a uvarint length followed by its bytes.
//
//	magic      "GTM"    3 bytes
//	version    1        1 byte
//	status     uvarint  0..999
//	reason     string
//	http       1 byte   message.Version
//	request    varint seconds, uvarint nanoseconds (< 1e9) since the Unix epoch
//	response   varint seconds, uvarint nanoseconds
//	size       varint   ≥ -1
//	fields     uvarint count, then count × (name string, value string)
//
// Times keep their instant, not their location or monotonic reading: they decode in UTC.
const (
	metaMagic   = "GTM"
	metaVersion = 1
	// metaMinField is the fewest bytes one header field takes (two empty strings), so a
	// field count is bounded by the bytes left before anything is allocated.
	metaMinField = 2
)

// MarshalBinary encodes m in the versioned binary form described in this file
// (encoding.BinaryMarshaler). It fails only for a Meta that cannot be decoded back: a
// Status outside 0..999 or a Size below -1.
func (m *Meta) MarshalBinary() ([]byte, error) {
	return m.AppendBinary(make([]byte, 0, m.encodedLen()))
}

// AppendBinary appends m's binary form to b (encoding.BinaryAppender), as MarshalBinary
// returns it.
func (m *Meta) AppendBinary(b []byte) ([]byte, error) {
	r := &m.Response
	if r.Status < 0 || r.Status > 999 {
		return b, fmt.Errorf("cache: marshal Meta: status %d out of range 0..999", r.Status)
	}
	if m.Size < -1 {
		return b, fmt.Errorf("cache: marshal Meta: size %d below -1", m.Size)
	}
	b = append(b, metaMagic...)
	b = append(b, metaVersion)
	b = binary.AppendUvarint(b, uint64(r.Status))
	b = appendString(b, r.Reason)
	b = append(b, byte(r.Version))
	b = appendTime(b, m.RequestTime)
	b = appendTime(b, m.ResponseTime)
	b = binary.AppendVarint(b, m.Size)
	fields := r.Header.Fields()
	b = binary.AppendUvarint(b, uint64(len(fields)))
	for _, f := range fields {
		b = appendString(b, f.Name)
		b = appendString(b, f.Value)
	}
	return b, nil
}

// encodedLen is an upper bound of the encoding's length, to size the buffer once.
func (m *Meta) encodedLen() int {
	n := len(metaMagic) + 1 + binary.MaxVarintLen64*6 + 1 + len(m.Response.Reason)
	for _, f := range m.Response.Header.Fields() {
		n += 2*binary.MaxVarintLen64 + len(f.Name) + len(f.Value)
	}
	return n
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// UnmarshalBinary replaces m with the Meta encoded in data (encoding.BinaryUnmarshaler).
// A malformed input returns an error wrapping [ErrMetaEncoding] and leaves m unspecified.
// Decoding never allocates more than a small multiple of len(data): every length and
// count is checked against the bytes left before it is used. The strings of the result
// share one copy of data, so data may be reused after the call.
func (m *Meta) UnmarshalBinary(data []byte) error {
	if len(data) < len(metaMagic)+1 || string(data[:len(metaMagic)]) != metaMagic {
		return fmt.Errorf("%w: bad magic", ErrMetaEncoding)
	}
	if v := data[len(metaMagic)]; v != metaVersion {
		return fmt.Errorf("%w: unknown version %d", ErrMetaEncoding, v)
	}
	d := metaDecoder{s: string(data[len(metaMagic)+1:])}
	status := d.uvarint("status")
	if d.err == nil && status > 999 {
		d.fail("status %d out of range", status)
	}
	reason := d.string("reason")
	version := d.byte("version")
	reqTime := d.time("request time")
	respTime := d.time("response time")
	size := d.varint("size")
	if d.err == nil && size < -1 {
		d.fail("size %d below -1", size)
	}
	n := d.uvarint("field count")
	if d.err == nil && n > uint64(len(d.s)/metaMinField) {
		d.fail("field count %d exceeds the input", n)
	}
	if d.err != nil {
		return d.err
	}
	var fields []message.Field
	if n > 0 {
		fields = make([]message.Field, 0, n)
	}
	for range n {
		name := d.string("field name")
		value := d.string("field value")
		if d.err != nil {
			return d.err
		}
		fields = append(fields, message.Field{Name: name, Value: value})
	}
	if len(d.s) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrMetaEncoding, len(d.s))
	}
	m.Response.Reset()
	m.Response.Status = int(status)
	m.Response.Reason = reason
	m.Response.Version = message.Version(version)
	for _, f := range fields {
		m.Response.Header.Add(f.Name, f.Value)
	}
	m.RequestTime = reqTime
	m.ResponseTime = respTime
	m.Size = size
	return nil
}

// metaDecoder reads the encoding's items from s; the first failure sticks in err and
// every later read returns a zero value.
type metaDecoder struct {
	s   string
	err error
}

func (d *metaDecoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrMetaEncoding, fmt.Sprintf(format, args...))
	}
}

func (d *metaDecoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	var v uint64
	for i := 0; i < len(d.s) && i < binary.MaxVarintLen64; i++ {
		c := d.s[i]
		if i == binary.MaxVarintLen64-1 && c > 1 {
			break // overflows 64 bits
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			d.s = d.s[i+1:]
			return v
		}
	}
	d.fail("bad %s", what)
	return 0
}

func (d *metaDecoder) varint(what string) int64 {
	u := d.uvarint(what)
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

func (d *metaDecoder) byte(what string) byte {
	if d.err != nil {
		return 0
	}
	if len(d.s) == 0 {
		d.fail("missing %s", what)
		return 0
	}
	c := d.s[0]
	d.s = d.s[1:]
	return c
}

func (d *metaDecoder) string(what string) string {
	n := d.uvarint(what + " length")
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.s)) {
		d.fail("%s length %d exceeds the input", what, n)
		return ""
	}
	s := d.s[:n]
	d.s = d.s[n:]
	return s
}

func (d *metaDecoder) time(what string) time.Time {
	sec := d.varint(what)
	nsec := d.uvarint(what)
	if d.err != nil {
		return time.Time{}
	}
	if nsec >= 1e9 {
		d.fail("%s nanoseconds %d out of range", what, nsec)
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}
