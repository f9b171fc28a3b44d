package accesslog

import (
	"encoding/json"
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
			st := newStamps(r.Start.Location())
			buf := make([]byte, 0, 1024)
			b.ReportAllocs()
			for b.Loop() {
				buf = appendLine(buf[:0], f, r, st)
			}
		})
	}
}

// BenchmarkFormatEncodingJSON formats the JSON line's fields with encoding/json, for
// comparison with BenchmarkFormat/json.
func BenchmarkFormatEncodingJSON(b *testing.B) {
	r := request()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		v := JSONLine[string]{
			Time: r.Start.Format(jsonTime), Service: r.Service, Client: r.Client,
			Method: r.Method, Target: r.Target, Proto: r.Proto, Host: r.Host,
			Status: r.Status, UpstreamStatus: r.UpstreamStatus, Upstream: r.Upstream,
			BytesSent: r.BytesSent, BytesReceived: r.BytesReceived,
			DurationMS: float64(r.Duration().Microseconds()) / 1000,
			TTFBMS:     float64(r.TTFB().Microseconds()) / 1000,
			Attempts:   r.Attempts, Reused: r.Reused,
			UserAgent: header(r, "User-Agent"), Referer: header(r, "Referer"),
		}
		out, err := json.Marshal(&v)
		if err != nil {
			b.Fatal(err)
		}
		buf = append(append(buf[:0], out...), '\n')
	}
}
