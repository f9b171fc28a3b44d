package proxy

import (
	"context"
	"errors"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/arena"
	"github.com/gotthard-proxy/gotthard/internal/h2"
	"github.com/gotthard-proxy/gotthard/internal/hop"
	"github.com/gotthard-proxy/gotthard/message"
)

// A request to an HTTP/2 peer on the proxy's own client connections (h2Conns) runs
// here, without net/http's types: the request head goes from message.RequestHeader to
// the stream's fields, and the response head from the stream's fields to ex.resp. The
// state of an attempt is pooled by its set, so that a request costs no allocation in
// steady state.

// h2Attempt is one attempt of a request on an h2Conns: the request head, the stream,
// the timers that bound its waits, and, for a body streamed from the client, the
// feeder goroutine. It is the response's body source (upstream) too.
//
// Who owns what, and when it is released:
//
//   - The request goroutine owns the attempt from getAttempt to release, runs every
//     phase and is the only one to use the stream's response side (ReadHead, ReadBody,
//     Trailers) and, without a streamed body, its request side.
//   - The feeder goroutine (feed), with a streamed body, does one task at a time as the
//     request goroutine asks (ask) and reports it (got): read a piece of the client's
//     body, or write a filtered piece (or the trailers) to the stream. release ends it
//     and waits for it before anything else.
//   - The timers' callbacks (read and total timeouts) and the exchange's abort (the
//     client left, or a drain cut the call; see exchange.setUpstream) only cancel the
//     stream registered under mu (cutSt), or the dial of a new connection for it
//     (cutDial), and note why.
//   - release unhooks the abort (after which it is never called), ends the feeder, stops
//     the timers, unregisters the stream under mu and only then closes it, which gives
//     it back to its connection. A timer whose Stop came too late may still be running
//     its callback: the attempt is then dropped instead of pooled, and the callback
//     finds no stream.
//   - The head fields the stream returns are copied into ex.resp before release (their
//     strings stay valid, the slice does not); a body piece is used before the next
//     read.
type h2Attempt[C any] struct {
	set *h2Conns
	// Bound once, when the attempt is made, so that handing them out allocates nothing.
	abortFn, onReadFn, onTotalFn, feedFn func()
	on1xxFn                              func(int, []h2.Field)
	setDialFn                            func(context.CancelFunc) bool

	// Set by start, owned by the request goroutine.
	c          *conn[C]
	ex         *exchange[C]
	ctx        contextT
	cc         C
	head       h2.ClientRequest
	st         *h2.ClientStream
	readWait   time.Duration
	readArmed  bool
	totalArmed bool
	dirty      bool // a timer's Stop came too late: do not pool
	eof        bool // the response body was read to its end
	num        [20]byte

	// A streamed request body; owned by the request goroutine.
	pumping  bool   // the feeder runs
	settles  bool   // the client's body is read through a reader the phases may use (HTTP/1.x)
	reading  bool   // the feeder reads a piece of the client's body
	writing  bool   // the feeder writes a piece to the stream
	ended    bool   // no more of the body goes up: all of it was handed over, or it failed
	err      *Error // the body's failure (a client read or RequestBodyFilter)
	trl      message.Header
	trlArena arena.Arena
	trlOut   []h2.Field

	// Between the goroutines.
	ask chan h2Ask    // request goroutine → feeder
	got chan h2Got    // feeder → request goroutine
	fed chan struct{} // feeder → request goroutine: it ended

	mu    sync.Mutex
	cutSt *h2.ClientStream // the stream the cutters may cancel; nil once released
	// cutDial cancels the dial of a new connection for the attempt, while it runs.
	cutDial context.CancelFunc
	why     h2Cut // the first cut's reason
	readT   *time.Timer
	total   *time.Timer
}

// h2Cut is why an attempt's stream was cancelled by another goroutine than the request's.
type h2Cut uint8

const (
	cutNone  h2Cut = iota
	cutRead        // the read timeout
	cutTotal       // the total timeout
	cutAbort       // the client left, or a drain cut the call
)

// h2Ask is a task for the feeder: read a piece of the client's body, or write b (then
// trailers, if any; end ends the body) to the stream, or stop.
type h2Ask struct {
	op       h2Op
	b        []byte
	end      bool
	trailers []h2.Field
}

type h2Op uint8

const (
	opRead h2Op = iota
	opWrite
	opStop
)

// h2Got is the feeder's report: a piece of the client's body (valid until the next
// read) with the read's error, or the result of a write.
type h2Got struct {
	b   []byte
	err error
}

// getAttempt returns an attempt from the set's pool, or a new one.
func getAttempt[C any](set *h2Conns) *h2Attempt[C] {
	if a, ok := set.attempts.Get().(*h2Attempt[C]); ok {
		return a
	}
	a := &h2Attempt[C]{set: set,
		ask: make(chan h2Ask, 1), got: make(chan h2Got, 1), fed: make(chan struct{}, 1)}
	a.abortFn, a.onReadFn, a.onTotalFn, a.feedFn = a.abort, a.onRead, a.onTotal, a.feed
	a.on1xxFn = a.on1xx
	a.setDialFn = a.setDial
	return a
}

// release ends the attempt (see h2Attempt) and gives it back to the set's pool. It runs
// on the request goroutine as the attempt ends, also when a phase panicked.
func (a *h2Attempt[C]) release() {
	a.ex.setUpstream(nil, nil)
	a.stopFeeder()
	a.stopRead()
	if a.totalArmed {
		a.totalArmed = false
		if !a.total.Stop() {
			a.dirty = true
		}
	}
	a.setStream(nil)
	if a.st != nil {
		a.st.Close()
		a.st = nil
	}
	a.set.releaseStream()
	var zero C
	a.c, a.ex, a.ctx, a.cc = nil, nil, nil, zero
	clear(a.head.Fields)
	a.head = h2.ClientRequest{Fields: a.head.Fields[:0]}
	a.eof, a.err, a.ended, a.settles = false, nil, false, false
	a.trl.Reset()
	clear(a.trlOut)
	a.trlOut = a.trlOut[:0]
	a.mu.Lock()
	a.why = cutNone // (a dirty attempt's late callback may still set it: it is dropped)
	a.mu.Unlock()
	if !a.dirty {
		a.set.attempts.Put(a)
	}
}

// setStream registers st (nil: none) as the stream the cutters cancel; it reports false,
// having cancelled st, if the attempt was cut already.
func (a *h2Attempt[C]) setStream(st *h2.ClientStream) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cutSt = st
	if st != nil && a.why != cutNone {
		st.Cancel()
		return false
	}
	return true
}

// cut cancels the registered stream for why, on the goroutine of a timer or of the
// exchange's abort.
func (a *h2Attempt[C]) cut(why h2Cut) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.why == cutNone {
		a.why = why
	}
	if a.cutSt != nil {
		a.cutSt.Cancel()
	}
	if a.cutDial != nil && why == cutAbort {
		// (A timeout leaves the dial to its own deadline, which the total bounds:
		// a connection that could not be made within it fails as one.)
		a.cutDial()
	}
}

// setDial registers cancel as the cancellation of the attempt's dial (nil: the dial
// ended); it reports false, and cancels at once, if the client left already.
func (a *h2Attempt[C]) setDial(cancel context.CancelFunc) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cutDial = cancel
	if cancel != nil && a.why == cutAbort {
		cancel()
		return false
	}
	return true
}

func (a *h2Attempt[C]) abort()   { a.cut(cutAbort) }
func (a *h2Attempt[C]) onRead()  { a.cut(cutRead) }
func (a *h2Attempt[C]) onTotal() { a.cut(cutTotal) }

// cutWhy returns why the stream was cut, if it was.
func (a *h2Attempt[C]) cutWhy() h2Cut {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.why
}

// armRead starts the read timeout, for a wait on the peer.
func (a *h2Attempt[C]) armRead() {
	a.stopRead()
	if a.readT == nil {
		a.readT = time.AfterFunc(a.readWait, a.onReadFn)
	} else {
		a.readT.Reset(a.readWait)
	}
	a.readArmed = true
}

// stopRead stops the read timeout.
func (a *h2Attempt[C]) stopRead() {
	if a.readArmed {
		a.readArmed = false
		if !a.readT.Stop() {
			a.dirty = true
		}
	}
}

// armTotal starts the total timeout of the attempt.
func (a *h2Attempt[C]) armTotal(d time.Duration) {
	if a.total == nil {
		a.total = time.AfterFunc(d, a.onTotalFn)
	} else {
		a.total.Reset(d)
	}
	a.totalArmed = true
}

// streamError maps the failure of a stream, given why it was cut.
func (a *h2Attempt[C]) streamError(err error) *Error {
	switch a.cutWhy() {
	case cutTotal:
		return &Error{Type: TotalTimeout, Source: Upstream, Cause: err}
	case cutRead:
		return peerReadTimeout(err)
	}
	// (A cut for the client's leaving is mapped as such by the caller.)
	return asError(err, ReadError, Upstream)
}

// bodyError is streamError for the reads of the response body: io.EOF stays.
func (a *h2Attempt[C]) bodyError(err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	if a.err != nil {
		return a.err // the request body failed, which cut the response short
	}
	switch a.cutWhy() {
	case cutTotal:
		return &Error{Type: TotalTimeout, Source: Upstream, Cause: err}
	case cutRead:
		return peerReadTimeout(err)
	}
	return err
}

var errNotOriginForm = errors.New("proxy: request target not in origin form")

// buildHead makes the HTTP/2 head of up for peer: the pseudo-header fields, then up's
// fields with lowercase names, without those of HTTP/1.x connections and Host, which is
// the :authority; the length of a body known in advance.
func (a *h2Attempt[C]) buildHead(peer *Peer, up *message.RequestHeader) *Error {
	sess, ar := &a.ex.sess, a.ex.arena
	h := &a.head
	if !validOriginForm(up.Target) {
		return &Error{Type: InternalError, Source: Internal, Status: 400, Cause: errNotOriginForm}
	}
	h.Method, h.Path, h.Scheme = up.Method, up.Target, "http"
	if peer.TLS != nil {
		h.Scheme = "https"
	}
	h.Authority = up.Header.Get("Host")
	fields := h.Fields[:0]
	for _, f := range up.Header.Fields() {
		if hop.Field(f.Name) || message.EqualFold(f.Name, "Host") || message.EqualFold(f.Name, "Content-Length") {
			continue
		}
		if hop.TE(f.Name) && (sess.teTrailers || !message.EqualFold(f.Value, "trailers")) {
			continue // HTTP/2 allows TE with "trailers" only (RFC 9113 §8.2.2)
		}
		fields = append(fields, h2.Field{Name: lowerField(f.Name, ar), Value: f.Value})
	}
	if sess.teTrailers { // an HTTP/2 client's, or the gRPC-web bridge's
		fields = append(fields, h2.Field{Name: "te", Value: "trailers"}) // gRPC needs it end to end
	}
	switch {
	case sess.bodyBuffered:
		if n := len(sess.body); n > 0 {
			fields = append(fields, h2.Field{Name: "content-length", Value: ar.String(strconv.AppendInt(a.num[:0], int64(n), 10))})
		}
	case sess.reqBodyKind != 0:
		if v, ok := up.Header.Lookup("Content-Length"); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
				fields = append(fields, h2.Field{Name: "content-length", Value: v})
			}
		}
	}
	h.Fields = fields
	return nil
}

// validOriginForm reports whether target is in origin form (RFC 9112 §3.2.1) with
// valid percent-encodings: what an HTTP/2 :path carries.
func validOriginForm(target string) bool {
	if len(target) == 0 || target[0] != '/' {
		return false
	}
	for i := 0; i < len(target); i++ {
		switch c := target[i]; {
		case c == '%':
			if i+2 >= len(target) || !isHex(target[i+1]) || !isHex(target[i+2]) {
				return false
			}
		case c <= ' ' || c == 0x7f:
			return false
		}
	}
	return true
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// lowerField returns name in lower case: name itself if it is, a constant if it is a
// common name, or a string of the arena.
func lowerField(name string, a *arena.Arena) string {
	i := 0
	for i < len(name) && !('A' <= name[i] && name[i] <= 'Z') {
		i++
	}
	if i == len(name) {
		return name
	}
	var buf [64]byte
	if len(name) > len(buf) {
		return lowerName(name)
	}
	b := buf[:len(name)]
	for j := range len(name) {
		c := name[j]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[j] = c
	}
	return intern(b, a)
}

// canonicalField returns an HTTP/2 field name (lowercase) in the canonical form
// net/http gives names (Content-Type), which HTTP/1.x clients see: a constant if it is
// a common name, else a string of the arena.
func canonicalField(name string, a *arena.Arena) string {
	var buf [64]byte
	if len(name) > len(buf) {
		return a.String([]byte(name))
	}
	b := buf[:len(name)]
	upper := true
	same := true
	for j := range len(name) {
		c := name[j]
		switch {
		case upper && 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		case !upper && 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		upper = c == '-'
		b[j] = c
		same = same && c == name[j]
	}
	if same {
		return name
	}
	return intern(b, a)
}

// on1xx passes an interim response (103 Early Hints, say) on to the client, except 100:
// the proxy answers Expect itself. It runs on the request goroutine, within ReadHead.
func (a *h2Attempt[C]) on1xx(code int, fields []h2.Field) {
	ex := a.ex
	sess := &ex.sess
	if code == 100 || code == 101 || sess.req.Version == message.HTTP10 {
		return
	}
	ex.trl.Reset()
	for _, f := range fields {
		ex.trl.Add(canonicalField(f.Name, ex.arena), f.Value)
	}
	if validateHeader(&ex.trl) == nil {
		sess.ds.interim(code, &ex.trl)
	}
}

// responseHead copies the peer's response head into ex.resp: canonical names, without
// the fields of HTTP/1.x connections and Trailer; the length as the framing says.
func (a *h2Attempt[C]) responseHead(status int, fields []h2.Field, ended bool) {
	ex := a.ex
	r := &ex.resp
	r.Reset()
	r.Status = status
	r.Version = message.HTTP2
	trailers := false
	for _, f := range fields {
		if f.Name == "trailer" {
			trailers = trailers || hasToken(f.Value)
			continue
		}
		if hop.Field(f.Name) {
			continue
		}
		r.Header.Add(canonicalField(f.Name, ex.arena), f.Value)
	}
	switch {
	case ended:
		// The head ended the stream (for gRPC, a trailers-only response).
		r.Header.Set("Content-Length", "0")
	case trailers:
		// Trailers are announced: an HTTP/1.1 client can get them only with a chunked
		// body, so the length is not passed on.
		r.Header.Del("Content-Length")
	}
	a.c.addRelayFields(&ex.sess, &r.Header)
}

// hasToken reports whether a comma-separated list has an element.
func hasToken(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c != ',' && c != ' ' && c != '\t' {
			return true
		}
	}
	return false
}

// The response body, as the upstream seam reads it.

func (a *h2Attempt[C]) readBody() ([]byte, error) {
	if a.eof {
		return nil, io.EOF
	}
	var b []byte
	var err error
	if a.pumping && (!a.ended || a.writing) { // (the body still streams, or its last piece is on its way)
		b, err = a.next()
	} else {
		// Each wait for the peer is bounded by the read timeout.
		a.armRead()
		b, err = a.st.ReadBody()
		a.stopRead()
	}
	if err == io.EOF {
		a.eof = true
	}
	return b, a.bodyError(err)
}

func (a *h2Attempt[C]) known() []message.Field { return nil } // check them all
func (a *h2Attempt[C]) buffered() int          { return 1 }   // never refresh deadline.Tracker
func (a *h2Attempt[C]) readTimeout(time.Time)  {}
func (a *h2Attempt[C]) skip()                  {}

// finish does nothing: the stream ends with the attempt (release).
func (a *h2Attempt[C]) finish(*Session, bool, *Error) {}

func (a *h2Attempt[C]) trailers(h *message.Header, ar *arena.Arena) {
	for _, f := range a.st.Trailers() {
		h.Add(canonicalField(f.Name, ar), f.Value)
	}
}
