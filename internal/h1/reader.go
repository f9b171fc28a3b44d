package h1

import (
	"bytes"
	"errors"
	"io"
	"syscall"
)

// errBufferFull is returned by fill when the buffer cannot grow past its limit.
var errBufferFull = errors.New("h1: buffer full")

// Reader reads message heads and bodies from a connection through a buffer from a
// [BufPool]. It holds a buffer only while there are bytes to parse: [Reader.Release]
// returns it when nothing is buffered, so an idle keep-alive connection holds no
// buffer. A head longer than the pooled buffer (up to [Limits].MaxHeadBytes) is read
// into a temporary larger buffer, and the Reader goes back to pooled buffers at the
// next head once what is buffered fits.
//
// Byte slices returned by a Reader (head fields, body pieces, trailers) alias its
// buffer: they are valid until the next call on the Reader that reads (Read*Head,
// ReadBody) and must not be used after Release or Reset.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	rd   io.Reader
	pool *BufPool
	lim  Limits

	buf    []byte // nil when released; len(buf) is the usable capacity
	pooled bool   // buf came from pool
	r, w   int    // unread bytes are buf[r:w]

	// Resumable scan for the end of a head, trailer section or chunk line, so
	// that a head arriving a byte at a time is scanned once, not once per byte.
	scan, lineStart int

	side     side // side of the message whose body is being read
	body     BodyKind
	remain   int64 // bytes left of a BodyLength body or of the current chunk
	chunk    chunkState
	done     bool // body read to its end
	trailers []Field

	raw rawReader

	// FillIdle's state: the connection's file descriptor access, if it has one.
	rc        syscall.RawConn
	rcChecked bool
	idleFn    func(fd uintptr) bool
	nowFn     func(fd uintptr) bool
	blocked   bool // FillNow found nothing to read
	idleN     int
	idleErr   error

	// ServeReadable's state (see serve.go).
	noFill      bool // reads that would fill the buffer return ErrWouldBlock instead
	serveFn     func(fd uintptr) bool
	serve       func() bool
	serveErr    error
	serveWaited bool // ServeReadable waited since serve last ran: read first
}

// NewReader returns a Reader reading rd with buffers from pool and parsing with lim
// (zero fields mean the defaults).
func NewReader(rd io.Reader, pool *BufPool, lim Limits) *Reader {
	r := &Reader{rd: rd, pool: pool, lim: lim.withDefaults(), done: true}
	r.raw.r = r
	return r
}

// Reset makes r read from rd, dropping any buffered bytes and returning the buffer to
// the pool; it keeps the pool, the limits and the capacity of the trailer slice.
func (r *Reader) Reset(rd io.Reader) {
	r.dropBuffer()
	*r = Reader{rd: rd, pool: r.pool, lim: r.lim, done: true, trailers: r.trailers[:0]}
	r.raw.r = r
}

// Peek returns the bytes buffered and not yet consumed, aliasing the buffer (valid
// until the next call that reads).
func (r *Reader) Peek() []byte { return r.buf[r.r:r.w] }

// Buffered returns the number of bytes buffered and not yet consumed.
func (r *Reader) Buffered() int { return r.w - r.r }

// Release returns the buffer to the pool if nothing is buffered; it is a no-op
// otherwise. Slices returned earlier must not be used afterwards.
func (r *Reader) Release() {
	if r.r == r.w {
		r.dropBuffer()
	}
}

func (r *Reader) dropBuffer() {
	if r.buf != nil && r.pooled {
		r.pool.Put(r.buf)
	}
	r.buf, r.pooled = nil, false
	r.r, r.w, r.scan, r.lineStart = 0, 0, 0, 0
}

// BodyDone reports whether the body of the current message has been read to its end.
func (r *Reader) BodyDone() bool { return r.done }

// Trailers returns the trailer fields of the last chunked body. They are valid after
// ReadBody returned io.EOF and until the next call that reads.
func (r *Reader) Trailers() []Field { return r.trailers }

// Raw returns a reader that yields the buffered bytes first and then reads the
// underlying connection directly, for tunnels (CONNECT, Upgrade) after the head.
func (r *Reader) Raw() io.Reader { return &r.raw }

type rawReader struct{ r *Reader }

func (x *rawReader) Read(p []byte) (int, error) {
	r := x.r
	if r.r < r.w {
		n := copy(p, r.buf[r.r:r.w])
		r.r += n
		return n, nil
	}
	return r.rd.Read(p)
}

// ReadRequestHead reads and parses the next request head into h. It blocks until a
// whole head is buffered. It returns io.EOF if the connection closed cleanly before
// any byte of a new head (empty lines between requests do not count), and
// io.ErrUnexpectedEOF if it closed in the middle of a head; an *[Error] for bad input;
// [ErrBodyPending] if the previous body was not read to its end; otherwise the error
// of the connection (a timeout stays a net.Error).
//
// On success the byte slices of h alias the buffer until the next call that reads,
// and the body framing is set up from h (StartBody(h.Body, h.ContentLength)).
func (r *Reader) ReadRequestHead(h *RequestHead) error {
	h.Reset()
	return r.readHead(h, nil, nil)
}

// ReadResponseHead reads and parses the next response head into h, with the same
// contract as [Reader.ReadRequestHead]; reqMethod is passed to [ParseResponseHead].
// Interim (1xx) responses come back like any other head; the caller reads the next.
func (r *Reader) ReadResponseHead(reqMethod []byte, h *ResponseHead) error {
	h.Reset()
	return r.readHead(nil, h, reqMethod)
}

func (r *Reader) readHead(req *RequestHead, resp *ResponseHead, method []byte) error {
	if !r.done {
		return ErrBodyPending
	}
	r.prepare()
	r.scan, r.lineStart = r.r, r.r
	sd := sideResponse
	if req != nil {
		sd = sideRequest
	}
	// A head usually comes whole in one read: the first try parses at once what is
	// buffered (left from the last read, or else brought by the first). After that, and
	// for a head that arrives in pieces, the parser runs only when scanSection, which
	// resumes where it stopped, has found the end of the section: a head that trickles
	// in is not parsed again for each piece.
	direct := true
	for {
		if sd == sideRequest {
			r.skipEmptyLines()
		}
		try := direct && r.r < r.w && r.w-r.r <= r.lim.MaxHeadBytes
		if try {
			direct = false
		}
		if try || r.scanSection() {
			var (
				n   int
				err error
			)
			if sd == sideRequest {
				n, err = ParseRequestHead(r.buf[r.r:r.w], req, &r.lim)
			} else {
				n, err = ParseResponseHead(r.buf[r.r:r.w], method, resp, &r.lim)
			}
			if err != ErrIncomplete {
				if err != nil {
					return err
				}
				r.r += n
				r.side = sd
				if sd == sideRequest {
					r.StartBody(req.Body, req.ContentLength)
				} else {
					r.StartBody(resp.Body, resp.ContentLength)
				}
				return nil
			}
		}
		empty := r.r == r.w
		switch err := r.fill(r.lim.MaxHeadBytes + 1); err {
		case nil:
		case io.EOF:
			if empty {
				return io.EOF
			}
			return io.ErrUnexpectedEOF
		case errBufferFull:
			return errAt(sd, statusFieldsTooLarge, "head too large", r.w-r.r)
		default:
			return err
		}
	}
}

// prepare runs before a new head: it rewinds an empty buffer and moves what is
// buffered from a temporary large buffer back into a pooled one when it fits.
func (r *Reader) prepare() {
	if r.r == r.w {
		r.r, r.w = 0, 0
		if r.buf != nil && !r.pooled {
			r.buf = nil
		}
		return
	}
	if !r.pooled && r.w-r.r <= r.pool.Size() {
		b := r.pool.Get()
		r.w = copy(b, r.buf[r.r:r.w])
		r.r = 0
		r.buf, r.pooled = b, true
	}
}

// skipEmptyLines consumes empty lines before a request line (RFC 9112 §2.2).
func (r *Reader) skipEmptyLines() {
	for r.r < r.w {
		if r.buf[r.r] == '\n' {
			r.r++
		} else if r.buf[r.r] == '\r' && r.r+1 < r.w && r.buf[r.r+1] == '\n' {
			r.r += 2
		} else {
			break
		}
	}
	if r.scan < r.r {
		r.scan, r.lineStart = r.r, r.r
	}
}

// scanSection resumes the scan of buf[r.r:r.w] for the empty line that ends a head or
// trailer section. It reports true when the parser should run: the section is
// complete or a limit is already exceeded.
func (r *Reader) scanSection() bool {
	b := r.buf[:r.w]
	for {
		i := bytes.IndexByte(b[r.scan:], '\n')
		if i < 0 {
			r.scan = r.w
			break
		}
		p := r.scan + i
		n := p - r.lineStart
		if n == 0 || n == 1 && b[r.lineStart] == '\r' {
			return true
		}
		if n > 0 && b[p-1] == '\r' {
			n--
		}
		if n > r.lim.MaxLineBytes {
			return true // the parser reports the long line
		}
		r.lineStart, r.scan = p+1, p+1
	}
	return r.w-r.r > r.lim.MaxHeadBytes || partialLineTooLong(b, r.lineStart, r.lim.MaxLineBytes)
}

// bufferReader is a reader that takes a buffer only once bytes are there to read
// (netio.Conn), so that a Reader without one waits for its next bytes holding none.
type bufferReader interface {
	ReadBuffer(bufs interface {
		Get() []byte
		Put([]byte)
	}) (buf []byte, n int, err error)
}

// fillBuffer is fill for a Reader without a buffer reading from br: done reports that
// the read is over, with err; otherwise r has a buffer and fill goes on with it.
func (r *Reader) fillBuffer(br bufferReader) (done bool, err error) {
	buf, n, err := br.ReadBuffer(r.pool)
	if buf == nil {
		if err != nil {
			return true, err
		}
		buf = r.pool.Get()
	}
	r.buf, r.pooled = buf, true
	r.r, r.w, r.scan, r.lineStart = 0, n, 0, 0
	if n > 0 {
		return true, nil
	}
	return err != nil, err
}

// fill reads once from the connection into the free space of the buffer, taking a
// buffer from the pool if r has none. When the buffer is full it first moves the
// unread bytes to the front, and if there are none to move it grows the buffer into a
// temporary one of at most limit bytes (errBufferFull if already that large). A read
// of 0 bytes with a nil error is retried a few times, then io.ErrNoProgress.
func (r *Reader) fill(limit int) error {
	if r.noFill {
		return ErrWouldBlock
	}
	if r.buf == nil {
		if br, ok := r.rd.(bufferReader); ok {
			if done, err := r.fillBuffer(br); done {
				return err
			}
		} else {
			r.buf, r.pooled = r.pool.Get(), true
			r.r, r.w, r.scan, r.lineStart = 0, 0, 0, 0
		}
	}
	if r.r == r.w && r.r > 0 {
		r.r, r.w, r.scan, r.lineStart = 0, 0, 0, 0
	}
	if r.w == len(r.buf) {
		if r.r > 0 {
			copy(r.buf, r.buf[r.r:r.w])
			r.w -= r.r
			r.scan = max(r.scan-r.r, 0)
			r.lineStart = max(r.lineStart-r.r, 0)
			r.r = 0
		} else {
			if len(r.buf) >= limit {
				return errBufferFull
			}
			b := make([]byte, min(max(2*len(r.buf), 4096), limit))
			copy(b, r.buf[:r.w])
			if r.pooled {
				r.pool.Put(r.buf)
			}
			r.buf, r.pooled = b, false
		}
	}
	for range 100 {
		n, err := r.rd.Read(r.buf[r.w:])
		if n < 0 || n > len(r.buf)-r.w {
			return errors.New("h1: reader returned invalid count")
		}
		r.w += n
		if n > 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

// StartBody sets up the framing of the body that follows the last head, overriding
// what the head said (for example BodyNone for a response to HEAD that the caller
// handles itself, or BodyUntilClose for a tunnel). n is the length for BodyLength.
func (r *Reader) StartBody(kind BodyKind, n int64) {
	r.body, r.remain, r.chunk = kind, n, chunkSize
	r.trailers = r.trailers[:0]
	r.done = kind == BodyNone || kind == BodyLength && n <= 0
	r.scan, r.lineStart = r.r, r.r
}

// ReadBody returns the next piece of decoded body bytes, aliasing the buffer (valid
// until the next call on r). At the end of the body it returns io.EOF, possibly with
// the last piece of data. A connection closed before the end of a BodyLength or
// BodyChunked body gives io.ErrUnexpectedEOF; a malformed chunked body gives an
// *[Error] (Status 400 in a request, 502 in a response). When nothing is buffered it
// reads once from the connection, as much as fits; bytes read past the end of the
// body (a pipelined request) stay buffered.
func (r *Reader) ReadBody() ([]byte, error) {
	if r.done {
		return nil, io.EOF
	}
	switch r.body {
	case BodyLength:
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
			r.done = true
			return p, io.EOF
		}
		return p, nil
	case BodyUntilClose:
		if r.r == r.w {
			err := r.fill(0)
			if err == io.EOF {
				r.done = true
				return nil, io.EOF
			}
			if err != nil {
				return nil, err
			}
		}
		p := r.buf[r.r:r.w]
		r.r = r.w
		return p, nil
	case BodyChunked:
		return r.readChunked()
	}
	r.done = true
	return nil, io.EOF
}

// unexpected turns io.EOF in the middle of a body into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
