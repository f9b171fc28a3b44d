package accesslog

import (
	"io"
	"testing"
)

// BenchmarkLine measures one request's line, from RequestEnd to the buffer (and the
// buffer's writes to io.Discard, a share of one per 64 KiB).
func BenchmarkLine(b *testing.B) {
	for _, f := range []Format{Combined, JSON} {
		b.Run(f.String(), func(b *testing.B) {
			l, err := New(Options{Writer: io.Discard, Format: f})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			r := request()
			b.ReportAllocs()
			for b.Loop() {
				l.RequestEnd(r)
			}
		})
	}
}

// BenchmarkLineParallel is BenchmarkLine from all the Ps at once, sharing one Logger.
func BenchmarkLineParallel(b *testing.B) {
	for _, f := range []Format{Combined, JSON} {
		b.Run(f.String(), func(b *testing.B) {
			l, err := New(Options{Writer: io.Discard, Format: f})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				r := request()
				for pb.Next() {
					l.RequestEnd(r)
				}
			})
		})
	}
}

// BenchmarkFormat measures the formatting of a line alone.
func BenchmarkFormat(b *testing.B) {
	for _, f := range []Format{Combined, JSON} {
		b.Run(f.String(), func(b *testing.B) {
			r := request()
			buf := make([]byte, 0, 1024)
			b.ReportAllocs()
			for b.Loop() {
				buf = appendLine(buf[:0], f, r, r.Start.Location())
			}
		})
	}
}
