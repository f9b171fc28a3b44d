package compress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/gotthard-proxy/gotthard/message"
	"github.com/gotthard-proxy/gotthard/proxy"
)

// DefaultMaxDecodedSize is [DecoderOptions.MaxDecodedSize] when it is zero.
const DefaultMaxDecodedSize = 16 << 20

// ZstdMaxWindow is the largest Zstandard window a [Decoder] accepts: 8 MiB, the limit
// RFC 8878 §3 sets for zstd in HTTP. A frame asking for more is refused.
const ZstdMaxWindow = 8 << 20

// decodeReadSize is how much decoded output a stream produces per read of its decoder.
const decodeReadSize = 16 << 10

// ErrTooLarge is wrapped by the error a [Decoder]'s body filter returns when a body
// decodes to more than [DecoderOptions.MaxDecodedSize] bytes: a decompression bomb, or
// simply a body too large to inspect. The request fails; the rest is not decoded.
var ErrTooLarge = errors.New("compress: decoded body larger than the limit")

// ErrCorrupt is wrapped by the error a [Decoder]'s body filter returns when a body is
// not valid in the coding its Content-Encoding names, or ends before its coding does.
var ErrCorrupt = errors.New("compress: coded body is corrupt or truncated")

// DecoderOptions configure a [Decoder]. The zero value decodes gzip, br and zstd up to
// [DefaultMaxDecodedSize] bytes per body.
type DecoderOptions struct {
	// Codings lists the codings decoded: "gzip", "br", "zstd". A response in another
	// coding, or in several ("gzip, br"), goes on as it is. If nil: all three; an empty
	// non-nil slice is refused.
	Codings []string
	// MaxDecodedSize bounds the decoded size of one body, in bytes: past it the
	// request fails with an error wrapping [ErrTooLarge], so a small body that would
	// decode to gigabytes is refused, never buffered. It also bounds the output of one
	// piece, which a later filter receives whole. If zero, [DefaultMaxDecodedSize];
	// negative is refused.
	MaxDecodedSize int64
}

// Decoder is a [proxy.Module] that decodes responses an upstream sent with a
// Content-Encoding of gzip, br or zstd, so that the modules after it see plain bytes (a
// module that rewrites HTML, say); a [Module] after those encodes the result again for
// the client. It removes Content-Encoding and Content-Length and makes a strong ETag
// weak. Build it with [NewDecoder]. It is safe for concurrent use.
//
// Decoding streams: each piece of coded body is decoded as it arrives, with at most one
// piece's output held at a time, and the size decoded so far is checked as it grows.
type Decoder struct {
	accept  [numCodings]bool
	max     int64
	readers [numCodings]sync.Pool
}

var _ proxy.Module = (*Decoder)(nil)

// NewDecoder returns a decoding module configured by opts, or an error naming the first
// bad field of opts (wrapping [ErrOptions]).
func NewDecoder(opts DecoderOptions) (*Decoder, error) {
	d := &Decoder{max: opts.MaxDecodedSize}
	switch {
	case opts.Codings == nil:
		d.accept[Gzip], d.accept[Brotli], d.accept[Zstd] = true, true, true
	case len(opts.Codings) == 0:
		return nil, fmt.Errorf("%w: Codings: empty: the module would never decode (leave it nil for the default)", ErrOptions)
	default:
		for _, name := range opts.Codings {
			c, ok := ParseCoding(name)
			if !ok || c == Identity {
				return nil, fmt.Errorf("%w: Codings: %q is not one of gzip, br, zstd", ErrOptions, name)
			}
			d.accept[c] = true
		}
	}
	switch {
	case d.max == 0:
		d.max = DefaultMaxDecodedSize
	case d.max < 0:
		return nil, fmt.Errorf("%w: MaxDecodedSize: %d is negative", ErrOptions, opts.MaxDecodedSize)
	}
	return d, nil
}

// Name returns "decompress".
func (*Decoder) Name() string { return "decompress" }

// NewRequest returns the decoder's state for the request; nil for CONNECT and upgraded
// requests.
func (d *Decoder) NewRequest(s *proxy.Session) proxy.ModuleRequest {
	if s.Request().Method == "CONNECT" || s.Upgrade() != "" {
		return nil
	}
	return &decodeRequest{d: d, head: s.Request().Method == "HEAD"}
}

// decodeRequest is a Decoder's state for one request.
type decodeRequest struct {
	proxy.ModuleFilters
	d    *Decoder
	head bool
	ds   *DecodeStream
}

// ResponseFilter starts decoding when the response is coded in one coding the Decoder
// takes.
func (r *decodeRequest) ResponseFilter(_ context.Context, _ *proxy.Session, resp *message.ResponseHeader) error {
	h := &resp.Header
	ce, ok := h.Lookup("Content-Encoding")
	if !ok || resp.Status < 200 || resp.Status == 204 || resp.Status == 304 || resp.Status == 206 {
		return nil
	}
	if len(h.Values("Content-Encoding")) != 1 {
		return nil
	}
	c, known := ParseCoding(trimOWS(ce))
	if !known || c == Identity || !r.d.accept[c] {
		return nil
	}
	h.Del("Content-Encoding")
	h.Del("Content-Length")
	if etag, ok := h.Lookup("ETag"); ok && len(etag) > 0 && etag[0] == '"' {
		h.Set("ETag", "W/"+etag)
	}
	if r.head {
		return nil
	}
	r.ds = r.d.NewStream(c)
	return nil
}

// ResponseBodyFilter decodes each piece; the returned slice is valid until the next call.
func (r *decodeRequest) ResponseBodyFilter(_ context.Context, _ *proxy.Session, chunk []byte, end bool) ([]byte, error) {
	if r.ds == nil {
		return chunk, nil
	}
	return r.ds.Decode(chunk, end)
}

// Done stops the decoding, if it did not end, and frees its state.
func (r *decodeRequest) Done(*proxy.Session) {
	if r.ds != nil {
		r.ds.Close()
		r.ds = nil
	}
}

// DecodeStream decodes one coded body given piece by piece, as a body phase receives it:
// it is for a user's own phase (UpstreamResponseBodyFilter, say) that needs plain bytes.
// Get one from [Decoder.NewStream], call Decode with each piece, and Close it when the
// body ends or the request fails. A DecodeStream is not safe for concurrent use.
//
// The decoders read from a stream, not from pieces, so each DecodeStream runs its decoder
// on a goroutine of its own that Decode hands each piece to and waits for, one at a time;
// Close stops it.
type DecodeStream struct {
	d      *Decoder
	coding Coding
	total  int64

	// Shared with the decoding goroutine, which touches them only between receiving
	// a piece from in and answering on need or done, while Decode waits.
	pending []byte
	out     []byte

	in       chan []byte   // pieces to decode; closed at the end of the body
	need     chan struct{} // the goroutine has used up its piece
	done     chan error    // the goroutine ended: nil at the end of the body
	quit     chan struct{} // Close: stop the goroutine
	started  bool
	ended    bool // the goroutine has ended (done was received)
	finished bool // the coded stream ended at the end of a piece
	err      error
}

// NewStream returns a stream decoding a body coded with c, which must be one of the
// codings d takes (it panics otherwise: a programming error).
func (d *Decoder) NewStream(c Coding) *DecodeStream {
	if c >= numCodings || c == Identity || !d.accept[c] {
		panic(fmt.Sprintf("compress: Decoder.NewStream(%v): not a coding this Decoder takes", c))
	}
	return &DecodeStream{d: d, coding: c}
}

// Decode decodes one more piece of the body and returns its decoded bytes, valid until
// the next call; end says it is the last piece. It fails with an error wrapping
// [ErrTooLarge] once the body has decoded to more than the Decoder's limit, and with
// one wrapping [ErrCorrupt] for a body that is not valid in its coding or stops before
// its coding's end. After an error every call returns it.
func (s *DecodeStream) Decode(chunk []byte, end bool) ([]byte, error) {
	if s.err != nil {
		return nil, s.err
	}
	if s.finished {
		if len(chunk) > 0 {
			return nil, s.fail(fmt.Errorf("compress: decoding %s: %w: data after the end of the stream", s.coding, ErrCorrupt))
		}
		return nil, nil
	}
	if s.ended {
		return nil, nil
	}
	if !s.started {
		s.started = true
		s.in = make(chan []byte)
		s.need = make(chan struct{})
		s.done = make(chan error, 1)
		s.quit = make(chan struct{})
		go s.run()
	}
	s.out = s.out[:0]
	if len(chunk) > 0 {
		s.in <- chunk
		if err := s.wait(); err != nil {
			return nil, s.fail(err)
		}
	}
	if !end {
		return s.out, nil
	}
	if s.ended {
		return s.out, nil
	}
	s.ended = true
	close(s.in)
	if err := <-s.done; err != nil {
		return nil, s.fail(err)
	}
	return s.out, nil
}

// wait waits for the goroutine to use up the piece it was given, or to end.
func (s *DecodeStream) wait() error {
	select {
	case <-s.need:
		return nil
	case err := <-s.done:
		s.ended = true
		if err == nil {
			// The coded stream ended with this piece; only an empty rest may follow.
			s.finished = true
		}
		return err
	}
}

func (s *DecodeStream) fail(err error) error {
	s.err = err
	return err
}

// Close stops the decoding and waits for its goroutine to end. It is safe to call more
// than once and after the end.
func (s *DecodeStream) Close() {
	if !s.started {
		return
	}
	s.started = false
	close(s.quit)
	if !s.ended {
		<-s.done
	}
	s.out = nil
}

// errStopped ends the goroutine when the stream is closed before its end.
var errStopped = errors.New("compress: decoding stopped")

// run is the decoding goroutine.
func (s *DecodeStream) run() {
	src := &pieceReader{s: s}
	err := s.decode(src)
	s.done <- err
}

func (s *DecodeStream) decode(src *pieceReader) (err error) {
	var rd io.Reader
	switch s.coding {
	case Gzip:
		var zr *gzip.Reader
		if p, _ := s.d.readers[Gzip].Get().(*gzip.Reader); p != nil {
			zr = p
			err = zr.Reset(src)
		} else {
			zr, err = gzip.NewReader(src)
		}
		if err != nil {
			return s.readErr(src, err)
		}
		defer s.d.readers[Gzip].Put(zr)
		rd = zr
	case Brotli:
		br, _ := s.d.readers[Brotli].Get().(*brotli.Reader)
		if br == nil {
			br = brotli.NewReader(src)
		} else if err := br.Reset(src); err != nil {
			return s.readErr(src, err)
		}
		defer s.d.readers[Brotli].Put(br)
		rd = br
	case Zstd:
		zd, _ := s.d.readers[Zstd].Get().(*zstd.Decoder)
		if zd == nil {
			zd, err = zstd.NewReader(src,
				zstd.WithDecoderConcurrency(1), // decodes on this goroutine, starts none
				zstd.WithDecoderMaxWindow(ZstdMaxWindow),
				zstd.WithDecoderMaxMemory(uint64(max(s.d.max, ZstdMaxWindow))+1))
		} else {
			err = zd.Reset(src)
		}
		if err != nil {
			return s.readErr(src, err)
		}
		defer func() {
			_ = zd.Reset(nil) // drop the source; no goroutine to stop at concurrency 1
			s.d.readers[Zstd].Put(zd)
		}()
		rd = zd
	}
	var buf [decodeReadSize]byte
	for {
		n, err := rd.Read(buf[:])
		if n > 0 {
			s.total += int64(n)
			if s.total > s.d.max {
				return fmt.Errorf("compress: decoding %s: %w (%d bytes)", s.coding, ErrTooLarge, s.d.max)
			}
			s.out = append(s.out, buf[:n]...)
		}
		if err == io.EOF {
			if src.rest() {
				return fmt.Errorf("compress: decoding %s: %w: data after the end of the stream", s.coding, ErrCorrupt)
			}
			return nil
		}
		if err != nil {
			return s.readErr(src, err)
		}
	}
}

// readErr turns a decoder's error into the stream's: stopped, or corrupt.
func (s *DecodeStream) readErr(src *pieceReader, err error) error {
	if src.stopped {
		return errStopped
	}
	if errors.Is(err, zstd.ErrWindowSizeExceeded) {
		return fmt.Errorf("compress: decoding %s: %w: its window is over the %d bytes allowed: %w", s.coding, ErrTooLarge, ZstdMaxWindow, err)
	}
	if errors.Is(err, zstd.ErrDecoderSizeExceeded) {
		return fmt.Errorf("compress: decoding %s: %w (%d bytes): %w", s.coding, ErrTooLarge, s.d.max, err)
	}
	return fmt.Errorf("compress: decoding %s: %w: %w", s.coding, ErrCorrupt, err)
}

// pieceReader is the decoder's source on the decoding goroutine: it reads the piece at
// hand, then tells Decode it needs the next one and waits for it.
type pieceReader struct {
	s       *DecodeStream
	got     bool // it has had a piece (so Decode is waiting when it runs dry)
	eof     bool
	stopped bool
}

func (r *pieceReader) Read(p []byte) (int, error) {
	s := r.s
	for len(s.pending) == 0 {
		if r.eof {
			return 0, io.EOF
		}
		if r.got {
			select {
			case s.need <- struct{}{}:
			case <-s.quit:
				r.stopped = true
				return 0, errStopped
			}
		}
		select {
		case c, ok := <-s.in:
			if !ok {
				r.eof = true
				return 0, io.EOF
			}
			r.got = true
			s.pending = c
		case <-s.quit:
			r.stopped = true
			return 0, errStopped
		}
	}
	n := copy(p, s.pending)
	s.pending = s.pending[n:]
	return n, nil
}

// rest reports whether bytes remain after the decoder's end: in the piece at hand (the
// decoder stopped inside it). Later pieces are caught by Decode.
func (r *pieceReader) rest() bool { return len(r.s.pending) > 0 }
