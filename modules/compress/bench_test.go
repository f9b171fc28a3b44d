package compress

import (
	"context"
	"runtime"
	"testing"
)

// variants are the codings at their default levels, and the cheaper levels the docs
// compare them with.
var variants = []struct {
	name string
	c    Coding
	opts Options
}{
	{"gzip", Gzip, Options{}},
	{"br", Brotli, Options{}},
	{"zstd", Zstd, Options{}},
	{"gzip-level5", Gzip, Options{GzipLevel: 5}},
	{"gzip-level7", Gzip, Options{GzipLevel: 7}},
	{"gzip-level8", Gzip, Options{GzipLevel: 8}},
	{"br-quality4", Brotli, Options{BrotliQuality: 4}},
	{"zstd-level1", Zstd, Options{ZstdLevel: 1}},
}

// BenchmarkCompress100K compresses a 100 KiB text response through the module's
// filters as the proxy calls them (the head, then the body in 16 KiB pieces, then the
// end), one response per iteration, for each coding at its default level and a few
// other levels.
func BenchmarkCompress100K(b *testing.B) {
	body := text(100 << 10)
	for _, v := range variants {
		m, err := New(v.opts)
		if err != nil {
			b.Fatal(err)
		}
		c := v.c
		b.Run(v.name, func(b *testing.B) {
			ctx := context.Background()
			var out int
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				r := newTestRequest(m, "GET", false, c.String())
				resp := response(200, "Content-Type", "text/html", "Content-Length", "102400")
				if err := r.ResponseFilter(ctx, nil, resp); err != nil {
					b.Fatal(err)
				}
				out = 0
				for i := 0; i < len(body); i += 16 << 10 {
					o, err := r.ResponseBodyFilter(ctx, nil, body[i:min(i+16<<10, len(body))], false)
					if err != nil {
						b.Fatal(err)
					}
					out += len(o)
				}
				o, err := r.ResponseBodyFilter(ctx, nil, nil, true)
				if err != nil {
					b.Fatal(err)
				}
				out += len(o)
				r.Done(nil)
			}
			b.ReportMetric(float64(out), "out-bytes")
		})
	}
}

// BenchmarkStreamMemory measures the heap one compressing stream holds, for each
// coding at its default level and a few other levels: 200 streams are opened at once,
// each after one flushed 16 KiB piece, and the heap in use grows by heap-bytes/stream
// per stream.
func BenchmarkStreamMemory(b *testing.B) {
	const n = 200
	body := text(16 << 10)
	for _, v := range variants {
		c := v.c
		b.Run(v.name, func(b *testing.B) {
			var per float64
			for b.Loop() {
				m, err := New(v.opts)
				if err != nil {
					b.Fatal(err)
				}
				reqs := make([]*request, n)
				runtime.GC()
				runtime.GC() // twice: pooled objects survive one collection
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				for i := range reqs {
					r := newTestRequest(m, "GET", false, c.String())
					if err := r.ResponseFilter(context.Background(), nil, response(200, "Content-Type", "text/html")); err != nil {
						b.Fatal(err)
					}
					if _, err := r.ResponseBodyFilter(context.Background(), nil, body, false); err != nil {
						b.Fatal(err)
					}
					reqs[i] = r
				}
				runtime.GC()
				runtime.GC() // twice: pooled objects survive one collection
				runtime.ReadMemStats(&after)
				per = float64(after.HeapAlloc-before.HeapAlloc) / n
				for _, r := range reqs {
					r.Done(nil)
				}
			}
			b.ReportMetric(per, "heap-bytes/stream")
		})
	}
}

// BenchmarkDecodeStreamMemory measures the heap one decoding stream holds in the
// middle of a body, for each coding, the body coded by this package's encoders at
// their defaults (a 32 KiB window for gzip, 256 KiB for Brotli and zstd): 100 streams
// are opened at once, each given one 16 KiB piece of coded body.
func BenchmarkDecodeStreamMemory(b *testing.B) {
	const n = 100
	m, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	d, err := NewDecoder(DecoderOptions{})
	if err != nil {
		b.Fatal(err)
	}
	body := text(1 << 20)
	for _, c := range []Coding{Gzip, Brotli, Zstd} {
		r := newTestRequest(m, "GET", false, c.String())
		if err := r.ResponseFilter(context.Background(), nil, response(200, "Content-Type", "text/html")); err != nil {
			b.Fatal(err)
		}
		coded, err := r.ResponseBodyFilter(context.Background(), nil, body, true)
		if err != nil {
			b.Fatal(err)
		}
		coded = append([]byte(nil), coded...)
		r.Done(nil)
		b.Run(c.String(), func(b *testing.B) {
			var per float64
			for b.Loop() {
				streams := make([]*DecodeStream, n)
				runtime.GC()
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				for i := range streams {
					s := d.NewStream(c)
					if _, err := s.Decode(coded[:16<<10], false); err != nil {
						b.Fatal(err)
					}
					streams[i] = s
				}
				runtime.GC()
				runtime.GC()
				runtime.ReadMemStats(&after)
				per = float64(after.HeapAlloc-before.HeapAlloc) / n
				for _, s := range streams {
					s.Close()
				}
			}
			b.ReportMetric(per, "heap-bytes/stream")
		})
	}
}
