package h1

import (
	"bytes"
	"io"
)

// chunkState is the position of a Reader in a chunked body (RFC 9112 §7.1).
type chunkState uint8

const (
	chunkSize    chunkState = iota // expecting a chunk size line
	chunkData                      // inside chunk data, r.remain bytes left
	chunkDataEnd                   // expecting the CRLF after chunk data
	chunkTrailer                   // expecting the trailer section
)

// maxChunkSizeDigits bounds the hex digits of a chunk size: 16 digits hold 64 bits,
// and sizes above 2^63-1 are rejected as well.
const maxChunkSizeDigits = 16

func (r *Reader) readChunked() ([]byte, error) {
	for {
		switch r.chunk {
		case chunkSize:
			line, off, err := r.chunkLine()
			if err != nil {
				return nil, err
			}
			size, ok := parseChunkSize(line)
			if !ok {
				return nil, errAt(r.side, statusBadRequest, "invalid chunk size line", off)
			}
			if size == 0 {
				r.chunk = chunkTrailer
				r.scan, r.lineStart = r.r, r.r
				continue
			}
			r.remain, r.chunk = size, chunkData
		case chunkData:
			if r.r == r.w {
				if err := r.fill(0); err != nil {
					return nil, unexpected(err)
				}
			}
			n := int(min(int64(r.w-r.r), r.remain))
			p := r.buf[r.r : r.r+n]
			r.r += n
			r.remain -= int64(n)
			if r.remain == 0 {
				r.chunk = chunkDataEnd
			}
			return p, nil
		case chunkDataEnd:
			for r.w-r.r < 2 {
				if r.r < r.w && r.buf[r.r] != '\r' {
					break
				}
				if err := r.fill(r.lim.MaxLineBytes + 2); err != nil {
					return nil, unexpected(err)
				}
			}
			if r.buf[r.r] != '\r' || r.buf[r.r+1] != '\n' {
				// RFC 9112 §7.1: chunk data is followed by CRLF; anything else
				// means the sender and we disagree on the framing.
				return nil, errAt(r.side, statusBadRequest, "chunk data not followed by CRLF", r.r)
			}
			r.r += 2
			r.chunk = chunkSize
			r.scan, r.lineStart = r.r, r.r
		case chunkTrailer:
			return r.readTrailers()
		}
	}
}

// chunkLine returns the content of the next chunk size line (CRLF required, a bare
// LF is rejected) and consumes it.
func (r *Reader) chunkLine() (line []byte, off int, err error) {
	for {
		if r.scan < r.r {
			r.scan = r.r
		}
		if i := bytes.IndexByte(r.buf[r.scan:r.w], '\n'); i >= 0 {
			p := r.scan + i
			off = r.r
			crlf := p > r.r && r.buf[p-1] == '\r'
			if n := p - r.r; n > r.lim.MaxLineBytes && (!crlf || n-1 > r.lim.MaxLineBytes) {
				return nil, off, errAt(r.side, statusBadRequest, "chunk size line too long", off)
			}
			if !crlf {
				return nil, off, errAt(r.side, statusBadRequest, "chunk size line not terminated by CRLF", p)
			}
			line = r.buf[r.r : p-1]
			r.r = p + 1
			r.scan = r.r
			return line, off, nil
		}
		r.scan = r.w
		if partialLineTooLong(r.buf[:r.w], r.r, r.lim.MaxLineBytes) {
			return nil, r.r, errAt(r.side, statusBadRequest, "chunk size line too long", r.r)
		}
		if err := r.fill(r.lim.MaxLineBytes + 2); err != nil {
			if err == errBufferFull {
				return nil, r.r, errAt(r.side, statusBadRequest, "chunk size line too long", r.r)
			}
			return nil, r.r, unexpected(err)
		}
	}
}

// parseChunkSize parses chunk-size [ chunk-ext ] (RFC 9112 §7.1.1). Extensions are
// validated and ignored.
func parseChunkSize(line []byte) (int64, bool) {
	var n uint64
	i := 0
	for ; i < len(line) && charClass[line[i]]&cHex != 0; i++ {
		if i == maxChunkSizeDigits {
			return 0, false
		}
		n = n<<4 | uint64(unhex(line[i]))
	}
	if i == 0 || n > 1<<63-1 {
		return 0, false
	}
	return int64(n), validChunkExt(line[i:])
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// validChunkExt checks chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )
// with ext-val = token / quoted-string (RFC 9112 §7.1.1).
func validChunkExt(e []byte) bool {
	i := 0
	skip := func() {
		for i < len(e) && isOWS(e[i]) {
			i++
		}
	}
	for i < len(e) {
		skip()
		if i == len(e) || e[i] != ';' {
			return false
		}
		i++
		skip()
		s := i
		for i < len(e) && isToken(e[i]) {
			i++
		}
		if i == s {
			return false
		}
		j := i
		skip()
		if i == len(e) || e[i] != '=' {
			if i == len(e) && i > j {
				return false // trailing whitespace
			}
			continue
		}
		i++
		skip()
		if i < len(e) && e[i] == '"' {
			if i = quotedStringEnd(e, i); i < 0 {
				return false
			}
			continue
		}
		s = i
		for i < len(e) && isToken(e[i]) {
			i++
		}
		if i == s {
			return false
		}
	}
	return true
}

// quotedStringEnd returns the position after the quoted-string starting at e[i]
// (RFC 9110 §5.6.4), or -1 if it is malformed or unterminated.
func quotedStringEnd(e []byte, i int) int {
	for i++; i < len(e); i++ {
		c := e[i]
		switch {
		case c == '"':
			return i + 1
		case c == '\\':
			i++
			if i == len(e) || charClass[e[i]]&cValue == 0 {
				return -1
			}
		case charClass[c]&cValue == 0:
			return -1
		}
	}
	return -1
}

// readTrailers reads the trailer section (RFC 9112 §7.1.2) with the limits and field
// rules of a head, and ends the body.
func (r *Reader) readTrailers() ([]byte, error) {
	for {
		if r.scanSection() {
			b := r.buf[r.r:r.w]
			truncated := len(b) > r.lim.MaxHeadBytes
			if truncated {
				b = b[:r.lim.MaxHeadBytes]
			}
			fields, n, err := parseFields(b, 0, &r.lim, r.side, r.trailers[:0])
			r.trailers = fields
			if err == nil {
				r.r += n
				r.done = true
				return nil, io.EOF
			}
			r.trailers = r.trailers[:0]
			if err != ErrIncomplete {
				return nil, err
			}
			if truncated {
				return nil, errAt(r.side, statusFieldsTooLarge, "trailer section too large", r.r)
			}
		}
		switch err := r.fill(r.lim.MaxHeadBytes + 1); err {
		case nil:
		case errBufferFull:
			return nil, errAt(r.side, statusFieldsTooLarge, "trailer section too large", r.r)
		default:
			return nil, unexpected(err)
		}
	}
}
