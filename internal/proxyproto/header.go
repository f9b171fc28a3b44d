package proxyproto

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
)

// Limits of the header's sizes.
const (
	// MaxV1Bytes is the longest version 1 header, "\r\n" included (the specification's
	// bound: "PROXY TCP6 " and two full IPv6 addresses and ports).
	MaxV1Bytes = 107
	// MaxV2Payload bounds the length field of a version 2 header (the addresses and
	// TLVs after its 16 fixed bytes). The field itself allows 65535; a header that
	// announces more than this is refused, so a connection holds at most
	// 16+MaxV2Payload bytes for it.
	MaxV2Payload = 4096
)

// Signatures of the two versions.
var (
	sigV1 = []byte("PROXY ")
	sigV2 = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

// Errors of Parse. Each error Parse returns wraps ErrInvalid, and one of the others
// when it applies.
var (
	// ErrInvalid is wrapped by every error about a malformed header.
	ErrInvalid = errors.New("proxyproto: invalid header")
	// ErrNoHeader means the data does not start with either version's signature.
	ErrNoHeader = errors.New("proxyproto: no PROXY protocol header")
	// ErrTruncated means the connection ended inside the header.
	ErrTruncated = errors.New("proxyproto: truncated header")
	// ErrTooLong means a version 1 line longer than 107 bytes, or a version 2 length
	// above MaxV2Payload.
	ErrTooLong = errors.New("proxyproto: header too long")
)

// Command is the command of a header.
type Command uint8

const (
	// Proxy means the connection was relayed for a client: the addresses are its own.
	Proxy Command = iota
	// Local means the balancer opened the connection itself (a health check): the
	// addresses, if any, say nothing of a client, and the connection's own are used.
	Local
)

// String returns "PROXY" or "LOCAL".
func (c Command) String() string {
	if c == Local {
		return "LOCAL"
	}
	return "PROXY"
}

// Family is the address family of a header.
type Family uint8

// Families. A version 1 header knows Unspec ("UNKNOWN"), INET ("TCP4") and INET6
// ("TCP6"); version 2 also Unix.
const (
	Unspec Family = iota
	INET
	INET6
	Unix
)

// String returns the family's name as in version 2 ("AF_INET").
func (f Family) String() string {
	switch f {
	case INET:
		return "AF_INET"
	case INET6:
		return "AF_INET6"
	case Unix:
		return "AF_UNIX"
	}
	return "AF_UNSPEC"
}

// Transport is the transport protocol of a version 2 header.
type Transport uint8

// Transports. A version 1 header's is Stream unless its family is Unspec.
const (
	TransportUnspec Transport = iota
	Stream
	Datagram
)

// TLV types the package knows by name (specification §2.2.1).
const (
	TypeALPN      = 0x01 // PP2_TYPE_ALPN
	TypeAuthority = 0x02 // PP2_TYPE_AUTHORITY: the host name the client asked for (SNI)
	TypeCRC32C    = 0x03
	TypeNoop      = 0x04
	TypeUniqueID  = 0x05
	TypeSSL       = 0x20
	TypeNetNS     = 0x30
)

// TLV is one type-length-value field of a version 2 header, kept as it came.
type TLV struct {
	Type  byte
	Value []byte
}

// Header is a PROXY protocol header.
type Header struct {
	// Version is 1 or 2.
	Version int
	// Command is Proxy or Local (Local only in version 2).
	Command Command
	// Family and Transport tell which addresses the header carries.
	Family    Family
	Transport Transport
	// Source and Destination are the client's address and the address it connected
	// to, for the INET and INET6 families; zero otherwise.
	Source, Destination netip.AddrPort
	// SourceUnix and DestinationUnix are the socket paths of the Unix family.
	SourceUnix, DestinationUnix string
	// TLVs are the version 2 header's TLV fields, in order, unparsed. They share one
	// array that belongs to the Header.
	TLVs []TLV
}

// HasAddresses reports whether the header gives IP addresses that replace the
// connection's: a Proxy command with the INET or INET6 family.
func (h *Header) HasAddresses() bool {
	return h.Command == Proxy && (h.Family == INET || h.Family == INET6)
}

// TLV returns the value of the first TLV of type t.
func (h *Header) TLV(t byte) ([]byte, bool) {
	for _, v := range h.TLVs {
		if v.Type == t {
			return v.Value, true
		}
	}
	return nil, false
}

// Authority returns the PP2_TYPE_AUTHORITY TLV: the host name the client sent (its TLS
// SNI, usually).
func (h *Header) Authority() (string, bool) {
	v, ok := h.TLV(TypeAuthority)
	return string(v), ok
}

// ALPN returns the PP2_TYPE_ALPN TLV: the application protocol the client chose.
func (h *Header) ALPN() ([]byte, bool) { return h.TLV(TypeALPN) }

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// truncated reports an end of data inside the header.
func truncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %w", ErrInvalid, ErrTruncated)
	}
	return fmt.Errorf("proxyproto: reading header: %w", err)
}

// Parse reads one header from br, which must be at the start of the connection, and
// consumes exactly its bytes. It reads no byte past the header, so what follows is
// left in br. br's buffer must hold at least MaxV1Bytes (107) bytes, as
// bufio.NewReader's does.
//
// Data that does not start with a signature gives an error wrapping ErrNoHeader, having
// consumed nothing; a malformed header one wrapping ErrInvalid; a read error (a
// deadline) is returned wrapped. Parse blocks until the header's bytes have arrived.
func Parse(br *bufio.Reader) (*Header, error) {
	b, err := br.Peek(1)
	if err != nil {
		return nil, truncated(err)
	}
	switch b[0] {
	case sigV1[0]:
		return parseV1(br)
	case sigV2[0]:
		return parseV2(br)
	}
	return nil, fmt.Errorf("%w: %w", ErrInvalid, ErrNoHeader)
}

// peekPrefix checks that the data starts with sig, reading only as far as needed.
func peekPrefix(br *bufio.Reader, sig []byte) error {
	for n := 2; n <= len(sig); n++ {
		b, err := br.Peek(n)
		if err != nil {
			return truncated(err)
		}
		if b[n-1] != sig[n-1] {
			return fmt.Errorf("%w: %w", ErrInvalid, ErrNoHeader)
		}
	}
	return nil
}

func parseV1(br *bufio.Reader) (*Header, error) {
	if err := peekPrefix(br, sigV1); err != nil {
		return nil, err
	}
	// Find the line's end in what is buffered; else look one byte at a time, so that
	// nothing past it is asked of the underlying reader.
	n := len(sigV1)
	var line []byte
	if b, _ := br.Peek(min(br.Buffered(), MaxV1Bytes)); len(b) > n {
		if i := bytes.IndexByte(b[n:], '\n'); i >= 0 {
			line = b[:n+i+1]
		} else {
			n = len(b) - 1
		}
	}
	for line == nil {
		b, err := br.Peek(n + 1)
		if err != nil {
			return nil, truncated(err)
		}
		if b[n] == '\n' {
			line = b[:n+1]
			break
		}
		n++
		if n >= MaxV1Bytes {
			return nil, fmt.Errorf("%w: %w: version 1 line over %d bytes", ErrInvalid, ErrTooLong, MaxV1Bytes)
		}
	}
	h, err := parseV1Line(line)
	if err != nil {
		return nil, err
	}
	br.Discard(len(line))
	return h, nil
}

// parseV1Line parses "PROXY <proto> <src> <dst> <sport> <dport>\r\n".
func parseV1Line(line []byte) (*Header, error) {
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, invalid("version 1 line does not end with CRLF")
	}
	f := bytes.Split(line[len(sigV1):len(line)-2], []byte{' '})
	h := &Header{Version: 1}
	switch string(f[0]) {
	case "UNKNOWN":
		// The rest of the line is to be ignored (specification §2.1).
		return h, nil
	case "TCP4":
		h.Family = INET
	case "TCP6":
		h.Family = INET6
	default:
		return nil, invalid("version 1 protocol %q is not TCP4, TCP6 or UNKNOWN", f[0])
	}
	h.Transport = Stream
	if len(f) != 5 {
		return nil, invalid("version 1 line has %d fields, want 6", len(f)+1)
	}
	src, err1 := parseV1Addr(f[1], h.Family)
	dst, err2 := parseV1Addr(f[2], h.Family)
	sp, err3 := parseV1Port(f[3])
	dp, err4 := parseV1Port(f[4])
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return nil, err
	}
	h.Source, h.Destination = netip.AddrPortFrom(src, sp), netip.AddrPortFrom(dst, dp)
	return h, nil
}

func parseV1Addr(b []byte, fam Family) (netip.Addr, error) {
	a, err := netip.ParseAddr(string(b))
	switch {
	case err != nil || a.Zone() != "":
		return netip.Addr{}, invalid("version 1 address %q", b)
	case fam == INET && !a.Is4(), fam == INET6 && !a.Is6():
		return netip.Addr{}, invalid("version 1 address %q is not of family %s", b, fam)
	}
	return a, nil
}

func parseV1Port(b []byte) (uint16, error) {
	if len(b) == 0 || len(b) > 1 && b[0] == '0' || b[0] == '+' || b[0] == '-' {
		return 0, invalid("version 1 port %q", b)
	}
	n, err := strconv.ParseUint(string(b), 10, 16)
	if err != nil {
		return 0, invalid("version 1 port %q", b)
	}
	return uint16(n), nil
}

func parseV2(br *bufio.Reader) (*Header, error) {
	if err := peekPrefix(br, sigV2); err != nil {
		return nil, err
	}
	fixed, err := br.Peek(16)
	if err != nil {
		return nil, truncated(err)
	}
	verCmd, famProto := fixed[12], fixed[13]
	length := int(binary.BigEndian.Uint16(fixed[14:16]))
	if verCmd>>4 != 2 {
		return nil, invalid("version 2 header has version %d", verCmd>>4)
	}
	h := &Header{Version: 2}
	switch verCmd & 0xF {
	case 0:
		h.Command = Local
	case 1:
		h.Command = Proxy
	default:
		return nil, invalid("version 2 command %#x is not LOCAL or PROXY", verCmd&0xF)
	}
	var addrLen int
	switch famProto >> 4 {
	case 0:
		h.Family = Unspec
	case 1:
		h.Family, addrLen = INET, 12
	case 2:
		h.Family, addrLen = INET6, 36
	case 3:
		h.Family, addrLen = Unix, 216
	default:
		return nil, invalid("version 2 address family %#x is unknown", famProto>>4)
	}
	switch famProto & 0xF {
	case 0, 1, 2:
		h.Transport = Transport(famProto & 0xF)
	default:
		return nil, invalid("version 2 transport %#x is unknown", famProto&0xF)
	}
	if length > MaxV2Payload {
		return nil, fmt.Errorf("%w: %w: version 2 length %d is over %d", ErrInvalid, ErrTooLong, length, MaxV2Payload)
	}
	if length < addrLen {
		return nil, invalid("version 2 length %d is shorter than the %s addresses (%d)", length, h.Family, addrLen)
	}
	if h.Family != Unspec && h.Transport == TransportUnspec && h.Command == Proxy {
		return nil, invalid("version 2 PROXY header with family %s and no transport", h.Family)
	}
	br.Discard(16)
	payload := make([]byte, length)
	if _, err := io.ReadFull(br, payload); err != nil {
		return nil, truncated(err)
	}
	a := payload[:addrLen]
	switch h.Family {
	case INET:
		h.Source = netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[0:4])), binary.BigEndian.Uint16(a[8:10]))
		h.Destination = netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[4:8])), binary.BigEndian.Uint16(a[10:12]))
	case INET6:
		h.Source = netip.AddrPortFrom(netip.AddrFrom16([16]byte(a[0:16])), binary.BigEndian.Uint16(a[32:34]))
		h.Destination = netip.AddrPortFrom(netip.AddrFrom16([16]byte(a[16:32])), binary.BigEndian.Uint16(a[34:36]))
	case Unix:
		h.SourceUnix, h.DestinationUnix = cString(a[:108]), cString(a[108:])
	}
	tlvs, err := parseTLVs(payload[addrLen:])
	if err != nil {
		return nil, err
	}
	h.TLVs = tlvs
	return h, nil
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// parseTLVs splits b into TLVs; a TLV whose length runs past b is an error.
func parseTLVs(b []byte) ([]TLV, error) {
	n := 0
	for rest := b; len(rest) > 0; n++ {
		if len(rest) < 3 {
			return nil, invalid("version 2 TLV truncated: %d bytes left", len(rest))
		}
		l := int(binary.BigEndian.Uint16(rest[1:3]))
		if 3+l > len(rest) {
			return nil, invalid("version 2 TLV type %#x length %d runs past the header", rest[0], l)
		}
		rest = rest[3+l:]
	}
	if n == 0 {
		return nil, nil
	}
	tlvs := make([]TLV, 0, n)
	for len(b) > 0 {
		l := int(binary.BigEndian.Uint16(b[1:3]))
		tlvs = append(tlvs, TLV{Type: b[0], Value: b[3 : 3+l : 3+l]})
		b = b[3+l:]
	}
	return tlvs, nil
}

// Append appends to b a header of the given version (1 or 2) with the Proxy command
// for a connection from src to dst, and returns the extended slice. IPv4-mapped IPv6
// addresses count as IPv4; when one address is IPv4 and the other IPv6, both are
// written as IPv6. When either address is not valid the header says nothing of the
// addresses: "PROXY UNKNOWN" in version 1, the AF_UNSPEC family in version 2. tlvs
// (version 2 only; version 1 has none) are appended after the addresses.
func Append(b []byte, version int, src, dst netip.AddrPort, tlvs ...TLV) ([]byte, error) {
	if version != 1 && version != 2 {
		return b, fmt.Errorf("proxyproto: version %d is not 1 or 2", version)
	}
	if version == 1 && len(tlvs) > 0 {
		return b, errors.New("proxyproto: version 1 has no TLVs")
	}
	known := src.IsValid() && dst.IsValid()
	sa, da := src.Addr().Unmap(), dst.Addr().Unmap()
	if sa.Zone() != "" || da.Zone() != "" {
		sa, da = sa.WithZone(""), da.WithZone("")
	}
	if known && sa.Is4() != da.Is4() {
		sa, da = netip.AddrFrom16(sa.As16()), netip.AddrFrom16(da.As16())
	}
	if version == 1 {
		if !known {
			return append(b, "PROXY UNKNOWN\r\n"...), nil
		}
		b = append(b, "PROXY TCP4 "...)
		if !sa.Is4() {
			b[len(b)-2] = '6'
		}
		b = sa.AppendTo(b)
		b = append(b, ' ')
		b = da.AppendTo(b)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(src.Port()), 10)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(dst.Port()), 10)
		return append(b, '\r', '\n'), nil
	}
	length := 0
	for _, t := range tlvs {
		if len(t.Value) > 0xFFFF {
			return b, fmt.Errorf("proxyproto: TLV type %#x is %d bytes, over 65535", t.Type, len(t.Value))
		}
		length += 3 + len(t.Value)
	}
	famProto := byte(0x00)
	switch {
	case !known:
	case sa.Is4():
		famProto, length = 0x11, length+12
	default:
		famProto, length = 0x21, length+36
	}
	if length > MaxV2Payload {
		return b, fmt.Errorf("proxyproto: header of %d bytes is over %d", length, MaxV2Payload)
	}
	b = append(b, sigV2...)
	b = append(b, 0x21, famProto)
	b = binary.BigEndian.AppendUint16(b, uint16(length))
	if known {
		if sa.Is4() {
			s4, d4 := sa.As4(), da.As4()
			b = append(b, s4[:]...)
			b = append(b, d4[:]...)
		} else {
			s6, d6 := sa.As16(), da.As16()
			b = append(b, s6[:]...)
			b = append(b, d6[:]...)
		}
		b = binary.BigEndian.AppendUint16(b, src.Port())
		b = binary.BigEndian.AppendUint16(b, dst.Port())
	}
	for _, t := range tlvs {
		b = append(b, t.Type)
		b = binary.BigEndian.AppendUint16(b, uint16(len(t.Value)))
		b = append(b, t.Value...)
	}
	return b, nil
}

// AppendLocal appends a version 2 header with the Local command and no addresses:
// what a balancer's health check sends.
func AppendLocal(b []byte) []byte {
	b = append(b, sigV2...)
	return append(b, 0x20, 0x00, 0, 0)
}
