package compress

import (
	"bytes"
	"fmt"
	"io"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/gotthard-proxy/gotthard/modules/compress/internal/deflate"
)

// maxPooledBuf is the largest output buffer given back to a pool: a stream that once
// produced a larger piece (a huge chunk of incompressible bytes) lets its buffer go.
const maxPooledBuf = 256 << 10

// lazyGzipLevel is the lowest gzip level coded by the module's own writer, which runs
// zlib's lazy matching with zlib's parameters; the levels below are klauspost's
// single-pass matchers, several times cheaper for a few percent more bytes.
const lazyGzipLevel = 6

// encoder is what the writers have in common.
type encoder interface {
	io.WriteCloser
	Flush() error
	Reset(w io.Writer)
}

// stream is one pooled encoder and the buffer it writes into, which always belong
// together: the encoder's output is the buffer.
type stream struct {
	enc encoder
	buf bytes.Buffer
}

// encoders holds one pool of streams per coding, at the module's levels.
type encoders struct {
	pools [numCodings]sync.Pool
}

func newEncoders(c *config) *encoders {
	e := &encoders{}
	gzipLevel, brQuality := c.gzipLevel, c.brQuality
	zlevel := zstd.EncoderLevelFromZstd(c.zstdLevel)
	e.pools[Gzip].New = func() any {
		s := &stream{}
		var w encoder
		var err error
		if gzipLevel >= lazyGzipLevel {
			w, err = deflate.NewWriter(&s.buf, gzipLevel)
		} else {
			w, err = gzip.NewWriterLevel(&s.buf, gzipLevel)
		}
		if err != nil { // the level was validated
			panic(fmt.Sprintf("compress: gzip level %d: %v", gzipLevel, err))
		}
		s.enc = w
		return s
	}
	e.pools[Brotli].New = func() any {
		s := &stream{}
		s.enc = brotli.NewWriterOptions(&s.buf, brotli.WriterOptions{Quality: brQuality, LGWin: BrotliWindowBits})
		return s
	}
	e.pools[Zstd].New = func() any {
		s := &stream{}
		// One goroutine-free encoder per stream (concurrency 1 encodes on the
		// caller's goroutine), with a small window and the smaller tables.
		w, err := zstd.NewWriter(&s.buf,
			zstd.WithEncoderLevel(zlevel),
			zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(ZstdWindowSize),
			zstd.WithLowerEncoderMem(true),
			zstd.WithEncoderCRC(true))
		if err != nil { // the options are constants and a validated level
			panic(fmt.Sprintf("compress: zstd: %v", err))
		}
		s.enc = w
		return s
	}
	return e
}

// get returns a stream for c, reset to start a new body.
func (e *encoders) get(c Coding) *stream {
	s := e.pools[c].Get().(*stream)
	s.buf.Reset()
	s.enc.Reset(&s.buf)
	return s
}

// put gives s back to c's pool.
func (e *encoders) put(c Coding, s *stream) {
	if s.buf.Cap() > maxPooledBuf {
		s.buf = bytes.Buffer{}
		s.enc.Reset(&s.buf)
	}
	s.buf.Reset()
	e.pools[c].Put(s)
}
