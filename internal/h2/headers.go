package h2

import (
	"encoding/binary"
	"io"
	"strings"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/gotthard-proxy/gotthard/internal/hop"
)

// Field is one header or trailer field. Names are lowercase (RFC 9113 §8.2.1).
type Field struct {
	Name, Value string
}

// Request is the head of a request: its pseudo-header fields (RFC 9113 §8.3.1) and its
// regular fields, validated as RFC 9113 §8.2 asks: names are lowercase tokens, values
// carry no NUL, CR or LF and no leading or trailing whitespace, connection-specific
// fields (Connection, Proxy-Connection, Keep-Alive, Transfer-Encoding, Upgrade) are
// absent, and TE, if present, is "trailers". Cookie fields are left as the client split
// them (RFC 9113 §8.2.3); joining them is the user's choice.
type Request struct {
	Method, Scheme, Authority, Path string
	// Protocol is the :protocol pseudo-header of an extended CONNECT request (RFC
	// 8441), when [Options.EnableConnectProtocol] allows it.
	Protocol string
	Fields   []Field
	// ContentLength is the value of the content-length field, or -1 if absent. The
	// body received is checked against it: a mismatch resets the stream
	// (PROTOCOL_ERROR, RFC 9113 §8.1.1).
	ContentLength int64
	// EndStream reports that the HEADERS frame ended the stream: the request has no
	// body.
	EndStream bool
}

// Pseudo-header presence bits.
const (
	hasMethod = 1 << iota
	hasScheme
	hasAuthority
	hasPath
	hasProtocol
)

// headerBlock is the header block being read (HEADERS and its CONTINUATION frames).
// It belongs to the read loop.
type headerBlock struct {
	active    bool
	id        uint32
	st        *Stream // stream for a new request or for trailers; nil: decode only
	trailers  bool
	endStream bool
	conts     int
	size      int // decoded size, RFC 9113 §6.5.2
	raw       int
	tooLarge  bool
	refuse    bool          // refuse the stream (REFUSED_STREAM)
	errCode   http2.ErrCode // a stream error to send at the end of the block
	errReason string
	sawField  bool // a regular field was seen: no pseudo-header may follow
	pseudo    int
	fields    []Field // trailers
}

func (hb *headerBlock) fail(code http2.ErrCode, reason string) {
	if hb.errReason == "" {
		hb.errCode, hb.errReason = code, reason
	}
}

// readHeadersFrame reads the payload of a HEADERS frame (RFC 9113 §6.2) and handles it.
func (c *Conn) readHeadersFrame(fh http2.FrameHeader) error {
	if cap(c.hpayload) < int(fh.Length) {
		c.hpayload = make([]byte, fh.Length)
	}
	p := c.hpayload[:fh.Length]
	if _, err := io.ReadFull(c.br, p); err != nil {
		return c.readErr(err)
	}
	frag, dep, err := headersFragment(fh, p)
	if err != nil {
		return err
	}
	return c.onHeaders(fh.StreamID, fh.Flags.Has(http2.FlagHeadersEndStream),
		fh.Flags.Has(http2.FlagHeadersEndHeaders), fh.Flags.Has(http2.FlagHeadersPriority) && dep == fh.StreamID,
		frag)
}

// headersFragment checks the payload p of a HEADERS frame (RFC 9113 §6.2), for the
// server's and the client's read loops alike, and returns its header block fragment,
// without padding and priority, and the stream it depends on (0 without priority).
func headersFragment(fh http2.FrameHeader, p []byte) (frag []byte, dep uint32, err error) {
	if fh.StreamID == 0 {
		return nil, 0, connErr(http2.ErrCodeProtocol, "HEADERS on stream 0")
	}
	pad := 0
	if fh.Flags.Has(http2.FlagHeadersPadded) {
		if len(p) < 1 {
			return nil, 0, connErr(http2.ErrCodeFrameSize, "HEADERS frame too short")
		}
		pad, p = int(p[0]), p[1:]
	}
	if fh.Flags.Has(http2.FlagHeadersPriority) {
		if len(p) < 5 {
			return nil, 0, connErr(http2.ErrCodeFrameSize, "HEADERS frame too short")
		}
		dep, p = binary.BigEndian.Uint32(p)&0x7fffffff, p[5:]
	}
	if pad > len(p) {
		return nil, 0, connErr(http2.ErrCodeProtocol, "HEADERS padding too long")
	}
	return p[:len(p)-pad], dep, nil
}

func (c *Conn) onHeaders(id uint32, endStream, endHeaders, selfDep bool, frag []byte) error {
	if id%2 == 0 {
		return connErr(http2.ErrCodeProtocol, "HEADERS on an even stream")
	}
	hb := &c.hb
	fields := hb.fields[:0]
	*hb = headerBlock{active: true, id: id, endStream: endStream, fields: fields}
	c.mu.Lock()
	st := c.streams[id]
	switch {
	case st != nil && st.remoteDone:
		hb.fail(http2.ErrCodeStreamClosed, "HEADERS on a half-closed stream")
	case st != nil:
		hb.st, hb.trailers = st, true
		if !hb.endStream {
			hb.fail(http2.ErrCodeProtocol, "trailers without END_STREAM")
		}
	case id <= c.maxClientID:
		reset := c.recentlyResetLocked(id)
		c.mu.Unlock()
		if !reset {
			return connErr(http2.ErrCodeStreamClosed, "HEADERS on a closed stream")
		}
		return c.headerFragment(frag, endHeaders)
	default:
		c.maxClientID = id
		switch {
		case selfDep:
			hb.fail(http2.ErrCodeProtocol, "stream depends on itself")
		case c.goingAway && id > c.goAwayID:
			// Opened after our GOAWAY: ignored (RFC 9113 §6.8).
		case len(c.streams) >= int(c.opts.MaxConcurrentStreams):
			hb.refuse = true
		default:
			hb.st = c.newStream(id)
		}
	}
	c.mu.Unlock()
	return c.headerFragment(frag, endHeaders)
}

func (c *Conn) onContinuation(f *http2.ContinuationFrame) error {
	c.hb.conts++
	if c.hb.conts > c.opts.MaxContinuationFrames {
		return connErr(http2.ErrCodeEnhanceYourCalm, "too many CONTINUATION frames")
	}
	return c.headerFragment(f.HeaderBlockFragment(), f.HeadersEnded())
}

func (c *Conn) headerFragment(frag []byte, end bool) error {
	hb := &c.hb
	hb.raw += len(frag)
	if hb.raw > 2*int(c.opts.MaxHeaderListSize) {
		return connErr(http2.ErrCodeEnhanceYourCalm, "header block too large")
	}
	if _, err := c.hdec.Write(frag); err != nil {
		return connErr(http2.ErrCodeCompression, "invalid header block")
	}
	if !end {
		return nil
	}
	if err := c.hdec.Close(); err != nil {
		return connErr(http2.ErrCodeCompression, "truncated header block")
	}
	c.hdec.SetEmitEnabled(true)
	hb.active = false
	return c.endHeaderBlock()
}

// onField is the HPACK decoder's emit function: it checks and stores one field.
func (c *Conn) onField(f hpack.HeaderField) {
	hb := &c.hb
	hb.size += len(f.Name) + len(f.Value) + 32
	if hb.size > int(c.opts.MaxHeaderListSize) {
		hb.tooLarge = true
		c.hdec.SetEmitEnabled(false) // decode on, to keep the table in step, but keep nothing
		return
	}
	if hb.st == nil || hb.errReason != "" {
		return
	}
	name, value := f.Name, f.Value
	if len(name) > 0 && name[0] == ':' {
		if hb.trailers {
			hb.fail(http2.ErrCodeProtocol, "pseudo-header in trailers")
			return
		}
		if hb.sawField {
			hb.fail(http2.ErrCodeProtocol, "pseudo-header after a regular field")
			return
		}
		req := &hb.st.req
		var bit int
		switch name {
		case ":method":
			bit, req.Method = hasMethod, value
		case ":scheme":
			bit, req.Scheme = hasScheme, value
		case ":authority":
			bit, req.Authority = hasAuthority, value
		case ":path":
			bit, req.Path = hasPath, value
		case ":protocol":
			if !c.opts.EnableConnectProtocol {
				hb.fail(http2.ErrCodeProtocol, "unknown pseudo-header")
				return
			}
			bit, req.Protocol = hasProtocol, value
		default:
			hb.fail(http2.ErrCodeProtocol, "unknown pseudo-header")
			return
		}
		if hb.pseudo&bit != 0 {
			hb.fail(http2.ErrCodeProtocol, "duplicate pseudo-header")
			return
		}
		hb.pseudo |= bit
		if !validFieldValue(value) {
			hb.fail(http2.ErrCodeProtocol, "invalid pseudo-header value")
		}
		return
	}
	hb.sawField = true
	if !validFieldName(name) {
		hb.fail(http2.ErrCodeProtocol, "invalid field name")
		return
	}
	if !validFieldValue(value) {
		hb.fail(http2.ErrCodeProtocol, "invalid field value")
		return
	}
	if hop.Field(name) {
		hb.fail(http2.ErrCodeProtocol, "connection-specific field")
		return
	}
	switch name {
	case "te":
		if value != "trailers" {
			hb.fail(http2.ErrCodeProtocol, "TE other than trailers")
			return
		}
	case "content-length":
		if !hb.trailers {
			req := &hb.st.req
			n, ok := ParseContentLength(value)
			if !ok || (req.ContentLength >= 0 && req.ContentLength != n) {
				hb.fail(http2.ErrCodeProtocol, "invalid content-length")
				return
			}
			req.ContentLength = n
		}
	}
	if hb.trailers {
		hb.fields = append(hb.fields, Field{Name: name, Value: value})
	} else {
		hb.st.req.Fields = append(hb.st.req.Fields, Field{Name: name, Value: value})
	}
}

// endHeaderBlock acts on a complete header block.
func (c *Conn) endHeaderBlock() error {
	hb := &c.hb
	st := hb.st
	switch {
	case hb.refuse:
		return c.refuseStream(hb.id, http2.ErrCodeRefusedStream)
	case hb.tooLarge && st != nil && !hb.trailers:
		return c.answerTooLarge(hb.id, hb.endStream)
	case hb.tooLarge:
		hb.fail(http2.ErrCodeEnhanceYourCalm, "trailers too large")
	case st != nil && !hb.trailers && hb.errReason == "":
		c.checkRequest()
	}
	if hb.errReason != "" {
		if st != nil && !hb.trailers {
			return c.refuseStream(hb.id, hb.errCode)
		}
		return streamErr(hb.id, hb.errCode, hb.errReason)
	}
	if st == nil {
		return nil
	}
	if hb.trailers {
		c.mu.Lock()
		if c.streams[hb.id] != st { // reset while its trailers were read
			c.mu.Unlock()
			return nil
		}
		st.trailers = append(st.trailers[:0], hb.fields...)
		if cl := st.req.ContentLength; cl >= 0 && st.received != cl {
			c.mu.Unlock()
			return streamErr(hb.id, http2.ErrCodeProtocol, "body length differs from content-length")
		}
		st.remoteDone, st.eof = true, true
		if st.localDone {
			c.closeStreamLocked(st, nil)
		}
		poke(st.rwake)
		c.mu.Unlock()
		return nil
	}
	return c.startStream(st, hb.endStream)
}

// checkRequest applies RFC 9113 §8.3.1 and RFC 8441 §4 to the pseudo-header fields.
func (c *Conn) checkRequest() {
	hb := &c.hb
	req := &hb.st.req
	p := hb.pseudo
	switch {
	case p&hasMethod == 0 || req.Method == "":
		hb.fail(http2.ErrCodeProtocol, "missing :method")
	case p&hasProtocol != 0:
		if req.Method != "CONNECT" || p&(hasScheme|hasPath|hasAuthority) != hasScheme|hasPath|hasAuthority || req.Path == "" {
			hb.fail(http2.ErrCodeProtocol, "malformed extended CONNECT")
		}
	case req.Method == "CONNECT":
		if p&(hasScheme|hasPath) != 0 || req.Authority == "" {
			hb.fail(http2.ErrCodeProtocol, "malformed CONNECT")
		}
	case p&hasScheme == 0 || req.Scheme == "":
		hb.fail(http2.ErrCodeProtocol, "missing :scheme")
	case p&hasPath == 0 || req.Path == "":
		hb.fail(http2.ErrCodeProtocol, "missing :path")
	case req.Path[0] != '/' && (req.Path != "*" || req.Method != "OPTIONS"):
		hb.fail(http2.ErrCodeProtocol, "invalid :path")
	case hb.endStream && req.ContentLength > 0:
		hb.fail(http2.ErrCodeProtocol, "body length differs from content-length")
	}
}

// refuseStream resets a stream that was never started.
func (c *Conn) refuseStream(id uint32, code http2.ErrCode) error {
	c.mu.Lock()
	c.noteResetLocked(id)
	c.mu.Unlock()
	if !c.resets.add(c.opts.RateWindow, c.opts.MaxResets) {
		return connErr(http2.ErrCodeEnhanceYourCalm, "too many refused streams")
	}
	return c.writeRST(id, nil, code)
}

// answerTooLarge answers a request whose header list is over MaxHeaderListSize with
// status 431 (RFC 6585 §5) and stops its body.
func (c *Conn) answerTooLarge(id uint32, endStream bool) error {
	c.mu.Lock()
	c.noteResetLocked(id)
	c.mu.Unlock()
	if !c.resets.add(c.opts.RateWindow, c.opts.MaxResets) {
		return connErr(http2.ErrCodeEnhanceYourCalm, "too many refused streams")
	}
	if err := c.writeStatusNow(id, 431); err != nil {
		return err
	}
	if !endStream {
		return c.writeRST(id, nil, http2.ErrCodeNo)
	}
	return nil
}

// validFieldName reports whether name is a lowercase token (RFC 9110 §5.1, RFC 9113
// §8.2.1).
func validFieldName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !isLowerTokenChar(name[i]) {
			return false
		}
	}
	return true
}

// validFieldValue reports whether v may be sent or accepted as a field value (RFC 9113
// §8.2.1): no NUL, CR or LF, and no leading or trailing space or tab.
func validFieldValue(v string) bool {
	if v == "" {
		return true
	}
	if v[0] == ' ' || v[0] == '\t' || v[len(v)-1] == ' ' || v[len(v)-1] == '\t' {
		return false
	}
	for i := 0; i < len(v); i++ {
		if b := v[i]; b == 0 || b == '\r' || b == '\n' {
			return false
		}
	}
	return true
}

// isLowerTokenChar reports whether b is a token character (RFC 9110 §5.6.2) other
// than an uppercase letter.
func isLowerTokenChar(b byte) bool {
	if 'a' <= b && b <= 'z' || '0' <= b && b <= '9' {
		return true
	}
	return b < 0x80 && strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0
}

// ParseContentLength parses a Content-Length value: 1*DIGIT (RFC 9110 §8.6), at most
// 18 digits so that it cannot overflow. Anything else, a sign or a list included, is not
// a length.
func ParseContentLength(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b < '0' || b > '9' {
			return 0, false
		}
		n = n*10 + int64(b-'0')
	}
	return n, true
}

// checkResponseFields validates fields for a response head or trailers.
func checkResponseFields(fields []Field) bool {
	for _, f := range fields {
		if !validFieldName(f.Name) || !validFieldValue(f.Value) {
			return false
		}
		if hop.Field(f.Name) {
			return false
		}
		switch f.Name {
		case "te":
			if f.Value != "trailers" {
				return false
			}
		}
	}
	return true
}
