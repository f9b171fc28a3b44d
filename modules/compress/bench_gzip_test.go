package compress

import (
	"bytes"
	stdgzip "compress/gzip"
	"fmt"
	"io"
	"strings"
	"testing"

	kflate "github.com/klauspost/compress/flate"
	kgzip "github.com/klauspost/compress/gzip"

	"github.com/gotthard-proxy/gotthard/modules/compress/internal/deflate"
)

// benchSample returns the body bench/compress.sh serves: size bytes of words, markup
// and numbers from its fixed list, in the order its Park-Miller generator gives.
func benchSample(size int) []byte {
	w := strings.Fields("the of and to in is that for it as was with be by on not he this are or his from at which but have an they you were their one all we can her has there been if more when will would who so no out up into do than time only could new other some these two may first then any like my now over such our man me even most made after also did many before must through back years where much your way well down should because each just those people how too little state good very make world still own see men work long get here between both life being under never day same another know while last might us great old year off come since against go came right used take three proxy request response header body stream server client upstream origin cache <div class=\"item\"> </div> <p> </p> <a href=\"/page/\"> </a> <span> </span> <li> </li> {\"id\": \"name\": \"value\": [ ] , true false null 0 1 2 3 4 5 6 7 8 9 10 100 2026")
	var b bytes.Buffer
	x := int64(20261207)
	for b.Len() < size {
		x = x * 16807 % 2147483647
		s := w[x/256%int64(len(w))]
		if x/7%11 == 0 {
			s += "\n"
		} else {
			s += " "
		}
		b.WriteString(s)
	}
	return b.Bytes()[:size]
}

// flushWriter is what the gzip writers compared here have in common.
type flushWriter interface {
	io.WriteCloser
	Flush() error
}

// stateless is klauspost's stateless deflate writer, whose every Write ends
// byte-aligned: a Flush has nothing to do.
type stateless struct{ io.WriteCloser }

func (stateless) Flush() error { return nil }

func (s stateless) Reset(w io.Writer) { s.WriteCloser.(interface{ Reset(io.Writer) }).Reset(w) }

// gzipEncoders are the gzip and deflate writers klauspost/compress and the standard
// library offer, at and around level 6.
func gzipEncoders() []struct {
	name string
	new  func(w io.Writer) flushWriter
} {
	type enc = struct {
		name string
		new  func(w io.Writer) flushWriter
	}
	var encs []enc
	for _, level := range []int{5, 6, 7, 8, 9} {
		encs = append(encs, enc{fmt.Sprintf("std-%d", level), func(w io.Writer) flushWriter {
			zw, _ := stdgzip.NewWriterLevel(w, level)
			return zw
		}})
	}
	for _, level := range []int{5, 6, 7, 8, 9} {
		encs = append(encs, enc{fmt.Sprintf("klauspost-%d", level), func(w io.Writer) flushWriter {
			zw, _ := kgzip.NewWriterLevel(w, level)
			return zw
		}})
	}
	for level := deflate.MinLevel; level <= deflate.MaxLevel; level++ {
		encs = append(encs, enc{fmt.Sprintf("gotthard-%d", level), func(w io.Writer) flushWriter {
			zw, _ := deflate.NewWriter(w, level)
			return zw
		}})
	}
	for _, window := range []int{32 << 10} {
		encs = append(encs, enc{fmt.Sprintf("klauspost-window-%dK", window>>10), func(w io.Writer) flushWriter {
			zw, _ := kgzip.NewWriterWindow(w, window)
			return zw
		}})
	}
	encs = append(encs, enc{"klauspost-stateless", func(w io.Writer) flushWriter {
		return stateless{kflate.NewStatelessWriter(w)}
	}})
	return encs
}

// BenchmarkGzipEncoders codes bench/compress.sh's 100 KiB body with each gzip (or, for
// the stateless writer, raw deflate) writer on offer, in 16 KiB pieces each flushed as
// the module does ("pieces") and in one go ("whole"), and reports the output's size.
// zlib's level 6 (gzip -6, nginx's gzip_comp_level 6) codes it to 36,043 bytes.
func BenchmarkGzipEncoders(b *testing.B) {
	body := benchSample(100 << 10)
	for _, e := range gzipEncoders() {
		for _, piece := range []int{16 << 10, len(body)} {
			mode := "pieces"
			if piece == len(body) {
				mode = "whole"
			}
			b.Run(e.name+"/"+mode, func(b *testing.B) {
				var buf bytes.Buffer
				w := e.new(&buf)
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				for b.Loop() {
					buf.Reset()
					if r, ok := w.(interface{ Reset(io.Writer) }); ok {
						r.Reset(&buf) // as the module's pools do
					} else {
						w = e.new(&buf)
					}
					for i := 0; i < len(body); i += piece {
						w.Write(body[i:min(i+piece, len(body))])
						if i+piece < len(body) {
							w.Flush()
						}
					}
					w.Close()
				}
				b.ReportMetric(float64(buf.Len()), "out-bytes")
			})
		}
	}
}

// BenchmarkGzipSmall codes small text bodies (an API's JSON, a short page) whole, with
// the module's level-6 writer and klauspost's, reused through Reset as the pools do:
// the cost of a response's start and its one block.
func BenchmarkGzipSmall(b *testing.B) {
	body := benchSample(16 << 10)
	encs := []struct {
		name string
		new  func(io.Writer) flushWriter
	}{
		{"gotthard-6", func(w io.Writer) flushWriter { zw, _ := deflate.NewWriter(w, 6); return zw }},
		{"klauspost-6", func(w io.Writer) flushWriter { zw, _ := kgzip.NewWriterLevel(w, 6); return zw }},
		{"klauspost-5", func(w io.Writer) flushWriter { zw, _ := kgzip.NewWriterLevel(w, 5); return zw }},
	}
	for _, size := range []int{300, 1 << 10, 4 << 10, 16 << 10} {
		for _, e := range encs {
			b.Run(fmt.Sprintf("%s/%d", e.name, size), func(b *testing.B) {
				var buf bytes.Buffer
				w := e.new(&buf)
				r := w.(interface{ Reset(io.Writer) })
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					buf.Reset()
					r.Reset(&buf)
					w.Write(body[:size])
					w.Close()
				}
				b.ReportMetric(float64(buf.Len()), "out-bytes")
			})
		}
	}
}
