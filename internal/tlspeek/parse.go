package tlspeek

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
)

// Hello is what a TLS ClientHello says that routing needs.
type Hello struct {
	// ServerName is the host name of the server_name extension (RFC 6066 section 3) in
	// lower case, "" if the hello has none.
	ServerName string
	// ALPN lists the protocols of the application_layer_protocol_negotiation extension
	// (RFC 7301) in the client's order, nil if the hello has none.
	ALPN []string
	// Versions lists the supported_versions extension (RFC 8446 section 4.2.1) in the
	// client's order, GREASE values (RFC 8701) included; without the extension it holds
	// the hello's legacy_version alone (0x0303 for TLS 1.2).
	Versions []uint16
}

var (
	// ErrNotTLS reports that a connection's first bytes are not a TLS handshake record.
	ErrNotTLS = errors.New("tlspeek: not a TLS handshake record")
	// ErrTooLarge reports that the ClientHello's records do not fit in the bytes the
	// caller allowed.
	ErrTooLarge = errors.New("tlspeek: ClientHello too large")
	// ErrMalformed reports a ClientHello, or a record carrying one, that breaks its
	// format: a length that lies, a truncated extension, a record of another type before
	// the hello is complete.
	ErrMalformed = errors.New("tlspeek: malformed ClientHello")
)

const (
	recordHeaderLen    = 5
	handshakeHeaderLen = 4
	// maxPlaintext is the largest fragment a TLSPlaintext record may carry (RFC 8446
	// section 5.1).
	maxPlaintext = 1 << 14

	recordTypeHandshake = 22
	typeClientHello     = 1

	extServerName        = 0
	extALPN              = 16
	extSupportedVersions = 43

	// maxServerName bounds a host name: a DNS name has at most 253 characters.
	maxServerName = 255
)

// Parse parses the ClientHello at the start of b, the first bytes a client sent on a
// connection (TLS records, from the first record header on). It returns what the hello
// says and n, the length of the records that carry it; bytes of b past n are not looked
// at. If b ends before the hello does, the error wraps io.ErrUnexpectedEOF. Otherwise
// errors are [ErrNotTLS] or [ErrMalformed]. The Hello does not refer to b.
func Parse(b []byte) (h Hello, n int, err error) {
	var a assembler
	done, err := a.feed(b, math.MaxInt)
	if err != nil {
		return Hello{}, 0, err
	}
	if !done {
		return Hello{}, 0, fmt.Errorf("tlspeek: ClientHello cut short after %d bytes: %w", len(b), io.ErrUnexpectedEOF)
	}
	h, err = parseClientHello(a.body)
	if err != nil {
		return Hello{}, 0, err
	}
	return h, a.off, nil
}

// assembler collects the ClientHello handshake message from the records of a
// connection's first bytes, as they arrive.
type assembler struct {
	off    int     // bytes of records fully taken
	hdr    [4]byte // the handshake message header, while it is incomplete
	hdrLen int     // bytes of hdr filled
	msgLen int     // length of the message body, once hdr is complete
	body   []byte  // the message body: a slice of the records when one record holds it all
	need   int     // bytes of records known to be needed in all, for sizing a buffer
}

// feed takes the complete records of b[a.off:] (b grows between calls, and its earlier
// bytes do not change) and reports whether the message is complete. max bounds the
// length of the records that may carry it.
func (a *assembler) feed(b []byte, max int) (done bool, err error) {
	for {
		rest := b[a.off:]
		if len(rest) == 0 {
			a.need = a.off + recordHeaderLen
			if a.need > max {
				return false, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)
			}
			return false, nil
		}
		if rest[0] != recordTypeHandshake {
			if a.off == 0 {
				return false, fmt.Errorf("%w: first byte %#02x", ErrNotTLS, rest[0])
			}
			return false, fmt.Errorf("%w: record of type %d inside the hello", ErrMalformed, rest[0])
		}
		// The record version is to be ignored (RFC 8446 section 5.1), but a first
		// record whose major version is not 3 is no TLS at all.
		if a.off == 0 && len(rest) > 1 && rest[1] != 3 {
			return false, fmt.Errorf("%w: record major version %d", ErrNotTLS, rest[1])
		}
		if len(rest) < recordHeaderLen {
			a.need = a.off + recordHeaderLen
			if a.need > max {
				return false, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)
			}
			return false, nil
		}
		n := int(rest[3])<<8 | int(rest[4])
		if n == 0 || n > maxPlaintext {
			return false, fmt.Errorf("%w: record of %d bytes", ErrMalformed, n)
		}
		end := a.off + recordHeaderLen + n
		if end > max {
			return false, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)
		}
		if len(rest) < recordHeaderLen+n {
			a.need = end
			if a.off == 0 {
				// Check the message header early when the first record holds it.
				if err := a.early(rest[recordHeaderLen:], n, max); err != nil {
					return false, err
				}
			}
			return false, nil
		}
		frag := rest[recordHeaderLen : recordHeaderLen+n]
		a.off = end
		done, err := a.take(frag, len(b)-end, max)
		if done || err != nil {
			return done, err
		}
	}
}

// early checks the handshake header at the start of the first record before the record
// is complete: a message of another type, or one too large, is refused without waiting
// for the rest. p holds what arrived of the record's n bytes.
func (a *assembler) early(p []byte, n, max int) error {
	if len(p) < 1 {
		return nil
	}
	if p[0] != typeClientHello {
		return fmt.Errorf("%w: handshake message of type %d", ErrMalformed, p[0])
	}
	if len(p) < handshakeHeaderLen {
		return nil
	}
	msgLen := int(p[1])<<16 | int(p[2])<<8 | int(p[3])
	if rem := msgLen - (n - handshakeHeaderLen); rem > 0 {
		// The message goes on in at least one more record.
		if recordHeaderLen+n+recordHeaderLen+rem > max {
			return fmt.Errorf("%w: a hello of %d bytes, more than %d with its records", ErrTooLarge, msgLen, max)
		}
	}
	return nil
}

// take adds a record's fragment to the message and reports whether it is complete.
// avail is the number of bytes at hand after the record.
func (a *assembler) take(frag []byte, avail, max int) (done bool, err error) {
	if a.hdrLen < handshakeHeaderLen {
		k := copy(a.hdr[a.hdrLen:], frag)
		a.hdrLen += k
		frag = frag[k:]
		if a.hdr[0] != typeClientHello {
			return false, fmt.Errorf("%w: handshake message of type %d", ErrMalformed, a.hdr[0])
		}
		if a.hdrLen < handshakeHeaderLen {
			return false, nil
		}
		a.msgLen = int(a.hdr[1])<<16 | int(a.hdr[2])<<8 | int(a.hdr[3])
		if a.msgLen <= len(frag) {
			// One record holds the whole message: no copy.
			if a.msgLen < len(frag) {
				return false, fmt.Errorf("%w: %d bytes after the hello in its record", ErrMalformed, len(frag)-a.msgLen)
			}
			a.body = frag
			return true, nil
		}
		if a.off+recordHeaderLen+(a.msgLen-len(frag)) > max {
			return false, fmt.Errorf("%w: a hello of %d bytes, more than %d with its records", ErrTooLarge, a.msgLen, max)
		}
		// Sized by the bytes at hand, not by the length the header claims: a few
		// bytes must not cost the allocation of a large message.
		a.body = make([]byte, 0, min(a.msgLen, len(frag)+avail))
	}
	if rem := a.msgLen - len(a.body); len(frag) > rem {
		return false, fmt.Errorf("%w: %d bytes after the hello in its record", ErrMalformed, len(frag)-rem)
	}
	a.body = append(a.body, frag...)
	if len(a.body) == a.msgLen {
		return true, nil
	}
	a.need = a.off + recordHeaderLen + a.msgLen - len(a.body)
	return false, nil
}

// reader reads the fields of a handshake message; ok turns false at the first read
// past the end, after which every read yields zero.
type reader struct {
	b  []byte
	ok bool
}

func (r *reader) bytes(n int) []byte {
	if !r.ok || n > len(r.b) {
		r.ok, r.b = false, nil // nothing left, so that every loop over r ends
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *reader) u8() int {
	p := r.bytes(1)
	if p == nil {
		return 0
	}
	return int(p[0])
}

func (r *reader) u16() int {
	p := r.bytes(2)
	if p == nil {
		return 0
	}
	return int(p[0])<<8 | int(p[1])
}

// vec8 and vec16 read a vector with a one or two byte length prefix. (r.ok is read
// after the call in a statement of its own: within one expression Go leaves the order
// of a call and a field read unspecified.)
func (r *reader) vec8() reader {
	b := r.bytes(r.u8())
	return reader{b, r.ok}
}

func (r *reader) vec16() reader {
	b := r.bytes(r.u16())
	return reader{b, r.ok}
}

// parseClientHello parses the body of a ClientHello message (RFC 8446 section 4.1.2;
// RFC 5246 section 7.4.1.2).
func parseClientHello(body []byte) (Hello, error) {
	r := reader{body, true}
	legacyVersion := r.u16()
	r.bytes(32)         // random
	r.vec8()            // legacy_session_id
	suites := r.vec16() // cipher_suites
	r.vec8()            // legacy_compression_methods
	if !r.ok || len(suites.b)%2 != 0 {
		return Hello{}, fmt.Errorf("%w: truncated before the extensions", ErrMalformed)
	}
	var sni, alpn, versions []byte // the extensions' data
	var seen uint8
	if len(r.b) > 0 {
		exts := r.vec16()
		if !r.ok || len(r.b) != 0 {
			return Hello{}, fmt.Errorf("%w: extensions length", ErrMalformed)
		}
		for len(exts.b) > 0 {
			typ := exts.u16()
			data := exts.vec16()
			if !data.ok {
				return Hello{}, fmt.Errorf("%w: truncated extension", ErrMalformed)
			}
			var bit uint8
			switch typ {
			case extServerName:
				sni, bit = data.b, 1
			case extALPN:
				alpn, bit = data.b, 2
			case extSupportedVersions:
				versions, bit = data.b, 4
			default:
				continue
			}
			if seen&bit != 0 {
				return Hello{}, fmt.Errorf("%w: extension %d twice", ErrMalformed, typ)
			}
			seen |= bit
		}
	}

	var h Hello
	host, err := serverName(sni, seen&1 != 0)
	if err != nil {
		return Hello{}, err
	}
	// One allocation holds the text of every string.
	var sb strings.Builder
	sb.Grow(len(host) + len(alpn))
	for _, c := range host {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		sb.WriteByte(c)
	}
	if seen&2 != 0 {
		// RFC 7301 section 3.1: a non-empty list of non-empty names.
		list := reader{alpn, true}
		list = list.vec16()
		if !list.ok || len(list.b) == 0 || len(list.b)+2 != len(alpn) {
			return Hello{}, fmt.Errorf("%w: ALPN list length", ErrMalformed)
		}
		count := 0
		for l := list; len(l.b) > 0; count++ {
			if name := l.vec8(); !name.ok || len(name.b) == 0 {
				return Hello{}, fmt.Errorf("%w: ALPN protocol name", ErrMalformed)
			}
		}
		h.ALPN = make([]string, 0, count)
		for len(list.b) > 0 {
			sb.Write(list.vec8().b)
		}
	}
	text := sb.String()
	h.ServerName = text[:len(host)]
	if h.ALPN != nil {
		off := len(host)
		list := reader{alpn[2:], true}
		for len(list.b) > 0 {
			n := len(list.vec8().b)
			h.ALPN = append(h.ALPN, text[off:off+n])
			off += n
		}
	}

	if seen&4 != 0 {
		// RFC 8446 section 4.2.1: a one-byte length, then two-byte versions.
		list := reader{versions, true}
		list = list.vec8()
		if !list.ok || len(list.b) == 0 || len(list.b)%2 != 0 || len(list.b)+1 != len(versions) {
			return Hello{}, fmt.Errorf("%w: supported_versions length", ErrMalformed)
		}
		h.Versions = make([]uint16, 0, len(list.b)/2)
		for len(list.b) > 0 {
			h.Versions = append(h.Versions, uint16(list.u16()))
		}
	} else {
		h.Versions = []uint16{uint16(legacyVersion)}
	}
	return h, nil
}

// serverName returns the host name of a server_name extension's data (RFC 6066 section
// 3), nil if it has none.
func serverName(data []byte, present bool) ([]byte, error) {
	if !present {
		return nil, nil
	}
	r := reader{data, true}
	list := r.vec16()
	if !list.ok || len(list.b) == 0 || len(r.b) != 0 {
		return nil, fmt.Errorf("%w: server_name list length", ErrMalformed)
	}
	var host []byte
	for len(list.b) > 0 {
		typ := list.u8()
		name := list.vec16()
		if !name.ok || len(name.b) == 0 {
			return nil, fmt.Errorf("%w: server name length", ErrMalformed)
		}
		if typ != 0 { // not host_name: skipped, as crypto/tls does
			continue
		}
		if host != nil {
			return nil, fmt.Errorf("%w: two host names", ErrMalformed)
		}
		host = name.b
	}
	if host == nil {
		return nil, nil
	}
	if len(host) > maxServerName || host[len(host)-1] == '.' {
		return nil, fmt.Errorf("%w: server name of %d bytes or with a trailing dot", ErrMalformed, len(host))
	}
	for _, c := range host {
		if c <= ' ' || c >= 0x7f {
			return nil, fmt.Errorf("%w: server name byte %#02x", ErrMalformed, c)
		}
	}
	return host, nil
}
