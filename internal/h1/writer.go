package h1

import "io"

// Writer buffers writes to a connection through a buffer from a [BufPool]. It takes a
// buffer at the first write and gives it back on [Writer.Release] when everything was
// flushed. Errors are sticky: after the first write error every method is a no-op and
// Flush, WriteBody and FinishBody return that error. Writer methods do not allocate.
//
// The head methods write what they are given: the caller validates names and values
// ([ValidFieldName], [ValidFieldValue], [ValidMethod], [ValidTarget]) so that nothing
// it passes on can inject CR or LF.
//
// A Writer is not safe for concurrent use.
type Writer struct {
	wr   io.Writer
	pool *BufPool
	buf  []byte // buffered bytes; nil when released; cap is the pool size
	err  error

	body   BodyKind
	remain int64 // bytes still expected of a BodyLength body
}

// NewWriter returns a Writer writing to w with buffers from pool.
func NewWriter(w io.Writer, pool *BufPool) *Writer {
	return &Writer{wr: w, pool: pool}
}

// Reset makes w write to wr, dropping anything buffered and the sticky error, and
// returning the buffer to the pool.
func (w *Writer) Reset(wr io.Writer) {
	if w.buf != nil {
		w.pool.Put(w.buf[:cap(w.buf)])
	}
	*w = Writer{wr: wr, pool: w.pool}
}

// Pending returns the bytes written to w and not yet flushed, for a caller that sends
// them itself; it must call Sent once they are sent, before writing to w again.
func (w *Writer) Pending() []byte { return w.buf }

// Sent drops the pending bytes as flushed (see Pending).
func (w *Writer) Sent() {
	if w.buf != nil {
		w.buf = w.buf[:0]
	}
}

// Buffered returns the number of bytes written to w and not yet flushed.
func (w *Writer) Buffered() int { return len(w.buf) }

// Release returns the buffer to the pool if nothing is buffered; it is a no-op
// otherwise.
func (w *Writer) Release() {
	if w.buf != nil && len(w.buf) == 0 {
		w.pool.Put(w.buf[:cap(w.buf)])
		w.buf = nil
	}
}

// Flush writes the buffered bytes to the connection.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) == 0 {
		return nil
	}
	n, err := w.wr.Write(w.buf)
	if err == nil && n < len(w.buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.err = err
		return err
	}
	w.buf = w.buf[:0]
	return nil
}

// write copies s into the buffer, flushing when it is full.
func write[T string | []byte](w *Writer, s T) {
	for len(s) > 0 && w.err == nil {
		if w.buf == nil {
			w.buf = w.pool.Get()[:0]
		}
		if len(w.buf) == cap(w.buf) {
			w.Flush()
			continue
		}
		n := copy(w.buf[len(w.buf):cap(w.buf)], s)
		w.buf = w.buf[:len(w.buf)+n]
		s = s[n:]
	}
}

// Write writes p as is (no body framing). A write of at least a buffer's size with
// nothing buffered goes straight to the connection.
func (w *Writer) Write(p []byte) (int, error) {
	if b, ok := w.room(len(p)); ok { // the usual case: it fits
		w.buf = append(b, p...)
		return len(p), nil
	}
	if w.err != nil {
		return 0, w.err
	}
	if len(w.buf) == 0 && len(p) >= w.pool.Size() {
		n, err := w.wr.Write(p)
		if err == nil && n < len(p) {
			err = io.ErrShortWrite
		}
		if err != nil {
			w.err = err
		}
		return n, err
	}
	if len(w.buf)+len(p) > w.pool.Size() && len(p) >= w.pool.Size() {
		if w.Flush() != nil {
			return 0, w.err
		}
		return w.Write(p)
	}
	write(w, p)
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

// WriteString writes s as is, copying it into the buffer.
func (w *Writer) WriteString(s string) (int, error) {
	if b, ok := w.room(len(s)); ok { // the usual case: it fits
		w.buf = append(b, s...)
		return len(s), nil
	}
	write(w, s)
	if w.err != nil {
		return 0, w.err
	}
	return len(s), nil
}

// room returns the buffer if n more bytes fit in it as it is, for a line written in one
// go; ok is false when the line must go piece by piece (no buffer yet, a full one, or
// the sticky error).
func (w *Writer) room(n int) (b []byte, ok bool) {
	if w.err != nil || w.buf == nil || cap(w.buf)-len(w.buf) < n {
		return nil, false
	}
	return w.buf, true
}

func (w *Writer) writeByte(c byte) {
	if w.err == nil && w.buf != nil && len(w.buf) < cap(w.buf) {
		w.buf = append(w.buf, c)
		return
	}
	var a [1]byte
	a[0] = c
	write(w, a[:])
}

// WriteRequestLine writes "method SP target SP HTTP/1.minor CRLF" (RFC 9112 §3).
// Errors surface on Flush.
func (w *Writer) WriteRequestLine(method, target string, minor int) {
	if b, ok := w.room(len(method) + len(target) + 12); ok {
		b = append(b, method...)
		b = append(b, ' ')
		b = append(b, target...)
		w.buf = append(b, ' ', 'H', 'T', 'T', 'P', '/', '1', '.', versionDigit(minor), '\r', '\n')
		return
	}
	write(w, method)
	w.writeByte(' ')
	write(w, target)
	write(w, " HTTP/1.")
	w.writeByte(versionDigit(minor))
	write(w, "\r\n")
}

// WriteStatusLine writes "HTTP/1.minor SP status SP reason CRLF" (RFC 9112 §4). An
// empty reason is replaced with [StatusText] of status. A status outside 100-999
// sets the sticky error.
func (w *Writer) WriteStatusLine(minor, status int, reason string) {
	if status < 100 || status > 999 {
		if w.err == nil {
			w.err = errInvalidStatus
		}
		return
	}
	if reason == "" {
		reason = StatusText(status)
	}
	if b, ok := w.room(len(reason) + 15); ok {
		b = append(b, 'H', 'T', 'T', 'P', '/', '1', '.', versionDigit(minor), ' ',
			byte('0'+status/100), byte('0'+status/10%10), byte('0'+status%10), ' ')
		b = append(b, reason...)
		w.buf = append(b, '\r', '\n')
		return
	}
	write(w, "HTTP/1.")
	w.writeByte(versionDigit(minor))
	d := [5]byte{' ', byte('0' + status/100), byte('0' + status/10%10), byte('0' + status%10), ' '}
	write(w, d[:])
	write(w, reason)
	write(w, "\r\n")
}

func versionDigit(minor int) byte {
	if minor == 0 {
		return '0'
	}
	return '1'
}

// WriteField writes the field line "name: value CRLF". The caller has validated name
// and value.
func (w *Writer) WriteField(name, value string) {
	if b, ok := w.room(len(name) + len(value) + 4); ok {
		b = append(b, name...)
		b = append(b, ':', ' ')
		b = append(b, value...)
		w.buf = append(b, '\r', '\n')
		return
	}
	write(w, name)
	write(w, ": ")
	write(w, value)
	write(w, "\r\n")
}

// writeFieldBytes is WriteField for byte slices.
func (w *Writer) writeFieldBytes(name, value []byte) {
	write(w, name)
	write(w, ": ")
	write(w, value)
	write(w, "\r\n")
}

// EndHead writes the empty line that ends a head.
func (w *Writer) EndHead() { write(w, "\r\n") }

// StartBody sets the framing of the body that follows: with BodyChunked, WriteBody
// writes chunks; with BodyLength, WriteBody counts against n; with BodyUntilClose,
// WriteBody writes bytes as they are; with BodyNone, any body byte is an error.
func (w *Writer) StartBody(kind BodyKind, n int64) {
	w.body, w.remain = kind, n
}

// WriteBody writes p as body bytes with the framing set by StartBody. With chunked
// framing, a non-empty p becomes one chunk (hex size CRLF, p, CRLF). With BodyLength,
// writing more than the declared length returns [ErrBodyTooLong] and writes nothing.
func (w *Writer) WriteBody(p []byte) error {
	if w.err != nil {
		return w.err
	}
	switch w.body {
	case BodyChunked:
		if len(p) == 0 {
			return nil
		}
		var line [18]byte
		i := len(line) - 2
		line[i], line[i+1] = '\r', '\n'
		for n := uint64(len(p)); ; n >>= 4 {
			i--
			line[i] = "0123456789abcdef"[n&0xf]
			if n < 16 {
				break
			}
		}
		write(w, line[i:])
		w.Write(p)
		write(w, "\r\n")
	case BodyLength:
		if int64(len(p)) > w.remain {
			return ErrBodyTooLong
		}
		w.remain -= int64(len(p))
		w.Write(p)
	case BodyUntilClose:
		w.Write(p)
	default:
		if len(p) > 0 {
			return ErrBodyTooLong
		}
	}
	return w.err
}

// twoWriter is a connection that writes two pieces with one system call
// (netio.Conn).
type twoWriter interface {
	WriteTwo(a, b []byte) (int, error)
}

// WriteBodyFlush writes p as body bytes, as WriteBody does, and flushes. With
// BodyLength or BodyUntilClose framing, on a connection that writes two pieces at once
// (netio.Conn), p is sent from where it is, behind the buffered bytes, instead of being
// copied into the buffer first: the caller's buffer is read once, by the kernel.
func (w *Writer) WriteBodyFlush(p []byte) error {
	tw, ok := w.wr.(twoWriter)
	if !ok || w.err != nil || len(p) == 0 || w.body != BodyLength && w.body != BodyUntilClose {
		if err := w.WriteBody(p); err != nil {
			return err
		}
		return w.Flush()
	}
	if w.body == BodyLength {
		if int64(len(p)) > w.remain {
			return ErrBodyTooLong
		}
		w.remain -= int64(len(p))
	}
	n, err := tw.WriteTwo(w.buf, p)
	if err == nil && n < len(w.buf)+len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.err = err
		return err
	}
	w.Sent()
	return nil
}

// FinishBody ends the body. With chunked framing it writes the last chunk, the
// trailer fields and the final CRLF (RFC 9112 §7.1); trailers are ignored otherwise.
// With BodyLength it returns [ErrBodyTooShort] if fewer than the declared bytes were
// written. It does not flush. The framing goes back to BodyNone.
func (w *Writer) FinishBody(trailers []Field) error {
	kind, remain := w.body, w.remain
	w.body, w.remain = BodyNone, 0
	if w.err != nil {
		return w.err
	}
	switch kind {
	case BodyChunked:
		write(w, "0\r\n")
		for i := range trailers {
			w.writeFieldBytes(trailers[i].Name, trailers[i].Value)
		}
		write(w, "\r\n")
	case BodyLength:
		if remain > 0 {
			return ErrBodyTooShort
		}
	}
	return w.err
}
