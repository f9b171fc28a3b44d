package proxy

import (
	"strconv"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/arena"
	"github.com/gotthard-proxy/gotthard/internal/deadline"
	"github.com/gotthard-proxy/gotthard/internal/h1"
	"github.com/gotthard-proxy/gotthard/message"
)

// downstream is the client side of one request: how its body is read and how its
// response is written. An HTTP/1.x connection (h1down) and an HTTP/2 stream (h2down)
// implement it, so that the phases and the upstream side do not depend on the client's
// protocol.
type downstream interface {
	// readBody returns the next piece of the request body, aliasing a buffer that is
	// valid until the next call; io.EOF (possibly with data) at the end.
	readBody() ([]byte, error)
	// bodyDone reports whether the request body was read to its end.
	bodyDone() bool
	// willWait reports whether the next readBody waits on the network.
	willWait() bool
	// trailers appends the request trailers (after readBody returned io.EOF) to h.
	trailers(h *message.Header, a *arena.Arena)
	// continue100 answers "Expect: 100-continue".
	continue100() error
	// interim sends a 1xx response other than 100 and 101, where the protocol has them.
	interim(status int, h *message.Header)
	// writeHead writes the response head. kind and n are the framing of the body that
	// follows: h1.BodyNone (none, or a HEAD/204/304), h1.BodyLength with n bytes, or
	// h1.BodyChunked for a body of unknown length.
	writeHead(s *Session, resp *message.ResponseHeader, kind h1.BodyKind, n int64) error
	// writeBody writes a piece of the response body (buffered).
	writeBody(p []byte) error
	// finish ends the response body, with trailers if the protocol can carry them.
	finish(trailers *message.Header) error
	// flush sends what is buffered.
	flush() error
	// buffered reports how many response bytes wait in the buffer.
	buffered() int
	// abortRead makes a readBody waiting on the client (on another goroutine) return.
	abortRead()
	// readTimeout and writeTimeout bound the next waits on the client.
	readTimeout(now time.Time, d time.Duration)
	writeTimeout(now time.Time, d time.Duration)
}

// h1down is the downstream of an HTTP/1.x connection; one per connection, reused by
// its requests.
type h1down struct {
	r  *h1.Reader
	w  *h1.Writer
	dl *deadline.Tracker
	// framing of the response being written
	kind h1.BodyKind
	num  [20]byte // scratch for formatting numbers without allocating
}

func (d *h1down) readBody() ([]byte, error) { return d.r.ReadBody() }
func (d *h1down) bodyDone() bool            { return d.r.BodyDone() }
func (d *h1down) willWait() bool            { return d.r.Buffered() == 0 }
func (d *h1down) buffered() int             { return d.w.Buffered() }
func (d *h1down) flush() error              { return d.w.Flush() }

func (d *h1down) readTimeout(now time.Time, t time.Duration) {
	d.dl.Read(now, t, time.Time{})
}

func (d *h1down) writeTimeout(now time.Time, t time.Duration) {
	d.dl.Write(now, t, time.Time{})
}

func (d *h1down) abortRead() { d.dl.Conn().SetReadDeadline(aLongTimeAgo) }

func (d *h1down) trailers(h *message.Header, a *arena.Arena) {
	for _, f := range d.r.Trailers() {
		h.Add(intern(f.Name, a), a.String(f.Value))
	}
}

func (d *h1down) continue100() error {
	d.w.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
	return d.w.Flush()
}

func (d *h1down) interim(status int, h *message.Header) {
	d.w.WriteStatusLine(1, status, "")
	for _, f := range h.Fields() {
		d.w.WriteField(f.Name, f.Value)
	}
	d.w.EndHead()
	d.w.Flush()
}

func (d *h1down) writeHead(s *Session, resp *message.ResponseHeader, kind h1.BodyKind, n int64) error {
	if kind == h1.BodyChunked && s.req.Version == message.HTTP10 {
		// An HTTP/1.0 client knows no chunked coding: the end of the connection ends
		// the body.
		kind = h1.BodyUntilClose
		s.closeAfter = true
	}
	d.kind = kind
	w := d.w
	w.WriteStatusLine(1, resp.Status, resp.Reason)
	for _, f := range resp.Header.Fields() {
		// The framework writes the framing fields from what it sends, but Content-Length
		// stays as the phases left it for a response without a body (HEAD, 304).
		if isFramingField(f.Name) && (kind != h1.BodyNone || !message.EqualFold(f.Name, "Content-Length")) {
			continue
		}
		w.WriteField(f.Name, f.Value)
	}
	writeFraming(w, kind, n, &d.num)
	if s.closing != nil && s.closing.Load() {
		s.closeAfter = true // shutting down: this is the connection's last response
	}
	if s.closeAfter {
		w.WriteString("Connection: close\r\n")
	} else if s.req.Version == message.HTTP10 {
		w.WriteString("Connection: keep-alive\r\n")
	}
	w.EndHead()
	if kind != h1.BodyNone {
		w.StartBody(kind, n)
	}
	return nil
}

func (d *h1down) writeBody(p []byte) error { return d.w.WriteBody(p) }

func (d *h1down) finish(trailers *message.Header) error {
	if d.kind == h1.BodyNone {
		return nil
	}
	var tf []h1.Field
	if trailers != nil && trailers.Len() > 0 && d.kind == h1.BodyChunked {
		tf = make([]h1.Field, 0, trailers.Len())
		for _, f := range trailers.Fields() {
			tf = append(tf, h1.Field{Name: []byte(f.Name), Value: []byte(f.Value)})
		}
	}
	return d.w.FinishBody(tf)
}

// writeFraming writes the framing field of an HTTP/1.x head for a body of the given
// kind and length n: Content-Length, Transfer-Encoding: chunked, or nothing. num is
// scratch for formatting n without allocating.
func writeFraming(w *h1.Writer, kind h1.BodyKind, n int64, num *[20]byte) {
	switch kind {
	case h1.BodyLength:
		w.WriteString("Content-Length: ")
		w.Write(strconv.AppendInt(num[:0], n, 10))
		w.WriteString("\r\n")
	case h1.BodyChunked:
		w.WriteString("Transfer-Encoding: chunked\r\n")
	}
}
