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

// BenchmarkFormatReference formats the line with the reference formatters (the
// package's first, which append a byte and a field at a time), for comparison with
// BenchmarkFormat in the same run.
func BenchmarkFormatReference(b *testing.B) {
	for _, f := range []Format{Combined, JSON} {
		b.Run(f.String(), func(b *testing.B) {
			r := request()
			st := newStamps(r.Start.Location())
			buf := make([]byte, 0, 1024)
			b.ReportAllocs()
			for b.Loop() {
				buf = refLine(buf[:0], f, r, st)
			}
		})
	}
}

// BenchmarkEscape measures the escapers on the strings of a typical line (plain, most
// shorter than 16 bytes) and on text with bytes to escape, against the reference ones
// (which also write the quotes of a JSON string: two bytes more).
func BenchmarkEscape(b *testing.B) {
	typical := []string{"gateway", "192.0.2.7", "GET", "/a/b?x=1", "HTTP/1.1", "example.com", "10.0.0.7:8080", "", "", "", "curl/8.11.0", "https://example.com/start"}
	escaped := []string{`Mozilla/5.0 "quoted" \ back`, "Grüße aus Zürich", "/search?q=\x01\x7f", "x\r\ny\b\f\t"}
	for _, c := range []struct {
		name   string
		escape func([]byte, string) []byte
	}{
		{"json", func(b []byte, s string) []byte {
			d := b[:cap(b)] // as a line's formatter calls putJSON, in a buffer with room
			return d[:putJSON(d, len(b), s)]
		}},
		{"json-reference", refJSONString},
		{"combined", func(b []byte, s string) []byte {
			d := b[:cap(b)]
			return d[:putCombined(d, len(b), s)]
		}},
		{"combined-reference", refEscaped},
	} {
		for _, set := range []struct {
			name string
			strs []string
		}{{"typical", typical}, {"escaped", escaped}} {
			b.Run(c.name+"/"+set.name, func(b *testing.B) {
				buf := make([]byte, 0, 4096)
				b.ReportAllocs()
				for b.Loop() {
					buf = buf[:0]
					for _, s := range set.strs {
						buf = c.escape(buf, s)
					}
				}
			})
		}
	}
}
