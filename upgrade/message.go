package upgrade

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The hand-over protocol, version 1. Both directions use one frame layout:
//
//	magic    4 bytes  "GTHU"
//	version  2 bytes  big endian, [Version]
//	kind     1 byte   kindListeners, kindServing or kindRefused
//	reserved 1 byte   zero
//	pid      4 bytes  the sender's process id
//	length   4 bytes  the length of the body that follows, at most maxBody
//
// The old process sends one kindListeners frame whose descriptors travel with it as
// SCM_RIGHTS ancillary data, one per listener, in body order. Its body is a 2-byte count
// and, per listener, a flags byte (bit 0: TLS), the network (1-byte length and bytes) and
// the address (2-byte length and bytes). The new process answers with kindServing (empty
// body) once it serves, or kindRefused with a UTF-8 reason as the body.
const (
	// Version is the version of the hand-over message format this package speaks. A
	// frame of another version is refused, and the running process keeps serving.
	Version = 1

	headerLen = 16
	maxBody   = 64 << 10
	// MaxListeners bounds the listeners in one hand-over: the descriptors of one message
	// (SCM_MAX_FD on Linux is 253).
	MaxListeners = 250

	kindListeners = 'L'
	kindServing   = 'S'
	kindRefused   = 'R'
)

var magic = [4]byte{'G', 'T', 'H', 'U'}

// errProtocol marks a frame that breaks the format; the message says how.
var errProtocol = errors.New("upgrade: protocol error")

// header is a decoded frame header.
type header struct {
	kind byte
	pid  int
	n    int // body length
}

func appendHeader(b []byte, kind byte, pid, n int) []byte {
	b = append(b, magic[:]...)
	b = binary.BigEndian.AppendUint16(b, Version)
	b = append(b, kind, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(pid))
	return binary.BigEndian.AppendUint32(b, uint32(n))
}

// parseHeader decodes the first headerLen bytes of b.
func parseHeader(b []byte) (header, error) {
	if [4]byte(b[:4]) != magic {
		return header{}, fmt.Errorf("%w: not a hand-over message (magic %q)", errProtocol, b[:4])
	}
	if v := binary.BigEndian.Uint16(b[4:]); v != Version {
		return header{}, fmt.Errorf("%w: message version %d, this process speaks version %d", errProtocol, v, Version)
	}
	h := header{kind: b[6], pid: int(binary.BigEndian.Uint32(b[8:])), n: int(binary.BigEndian.Uint32(b[12:]))}
	switch h.kind {
	case kindListeners, kindServing, kindRefused:
	default:
		return header{}, fmt.Errorf("%w: unknown message kind %q", errProtocol, h.kind)
	}
	if b[7] != 0 {
		return header{}, fmt.Errorf("%w: reserved byte is %d", errProtocol, b[7])
	}
	if h.n > maxBody {
		return header{}, fmt.Errorf("%w: body of %d bytes exceeds %d", errProtocol, h.n, maxBody)
	}
	return h, nil
}

// appendListeners appends the body of a kindListeners frame.
func appendListeners(b []byte, lns []Listener) ([]byte, error) {
	if len(lns) > MaxListeners {
		return nil, fmt.Errorf("upgrade: %d listeners exceed the limit of %d", len(lns), MaxListeners)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(lns)))
	for _, l := range lns {
		if len(l.Network) > 255 || len(l.Address) > 4096 {
			return nil, fmt.Errorf("upgrade: endpoint %s:%s is too long", l.Network, l.Address)
		}
		var flags byte
		if l.TLS {
			flags |= 1
		}
		b = append(b, flags, byte(len(l.Network)))
		b = append(b, l.Network...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(l.Address)))
		b = append(b, l.Address...)
	}
	return b, nil
}

// parseListeners decodes the body of a kindListeners frame; the Files are left nil.
func parseListeners(b []byte) ([]Listener, error) {
	short := fmt.Errorf("%w: listener list cut short", errProtocol)
	if len(b) < 2 {
		return nil, short
	}
	n := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if n > MaxListeners {
		return nil, fmt.Errorf("%w: %d listeners exceed the limit of %d", errProtocol, n, MaxListeners)
	}
	lns := make([]Listener, 0, n)
	for range n {
		if len(b) < 2 {
			return nil, short
		}
		flags, nl := b[0], int(b[1])
		b = b[2:]
		if flags&^1 != 0 {
			return nil, fmt.Errorf("%w: unknown listener flags %#x", errProtocol, flags)
		}
		if len(b) < nl+2 {
			return nil, short
		}
		network := string(b[:nl])
		al := int(binary.BigEndian.Uint16(b[nl:]))
		b = b[nl+2:]
		if len(b) < al {
			return nil, short
		}
		l := Listener{Network: network, Address: string(b[:al]), TLS: flags&1 != 0}
		b = b[al:]
		switch l.Network {
		case "tcp", "tcp4", "tcp6", "unix":
		default:
			return nil, fmt.Errorf("%w: unsupported network %q", errProtocol, l.Network)
		}
		if l.Address == "" {
			return nil, fmt.Errorf("%w: empty address for network %s", errProtocol, l.Network)
		}
		lns = append(lns, l)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the listener list", errProtocol, len(b))
	}
	return lns, nil
}
