package h1

import (
	"bytes"
	"io"
	"testing"
)

// typicalRequest is a browser-like request head with 10 fields.
const typicalRequest = "GET /static/app.js?v=1234 HTTP/1.1\r\n" +
	"Host: www.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
	"Accept: */*\r\n" +
	"Accept-Language: en-US,en;q=0.5\r\n" +
	"Accept-Encoding: gzip, deflate, br, zstd\r\n" +
	"Referer: https://www.example.com/\r\n" +
	"Connection: keep-alive\r\n" +
	"Cookie: session=0123456789abcdef0123456789abcdef; theme=dark\r\n" +
	"Sec-Fetch-Dest: script\r\n" +
	"If-None-Match: \"5f2b-1c8a\"\r\n" +
	"\r\n"

// typicalResponse is an origin response head with 10 fields.
const typicalResponse = "HTTP/1.1 200 OK\r\n" +
	"Date: Tue, 15 Nov 1994 08:12:31 GMT\r\n" +
	"Server: origin\r\n" +
	"Content-Type: application/javascript; charset=utf-8\r\n" +
	"Content-Length: 14872\r\n" +
	"Cache-Control: public, max-age=31536000, immutable\r\n" +
	"ETag: \"5f2b-1c8a\"\r\n" +
	"Last-Modified: Mon, 14 Nov 1994 08:12:31 GMT\r\n" +
	"Vary: Accept-Encoding\r\n" +
	"X-Request-Id: 8d1c2f3e-4b5a-6978-8091-a2b3c4d5e6f7\r\n" +
	"Connection: keep-alive\r\n" +
	"\r\n"

func TestAllocs(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts")
	}
	req, resp := []byte(typicalRequest), []byte(typicalResponse)
	var rh RequestHead
	var sh ResponseHead
	get := []byte("GET")
	pool := NewBufPool(0)
	br := bytes.NewReader(req)
	r := NewReader(br, pool, Limits{})
	w := NewWriter(io.Discard, pool)
	chunked := []byte(chunkedHead + "5;a=b\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX: y\r\n\r\n")
	trailers := []Field{{Name: []byte("X-T"), Value: []byte("1")}}
	tests := []struct {
		name string
		fn   func()
	}{
		{"ParseRequestHead", func() {
			if _, err := ParseRequestHead(req, &rh, nil); err != nil {
				t.Fatal(err)
			}
		}},
		{"ParseResponseHead", func() {
			if _, err := ParseResponseHead(resp, get, &sh, nil); err != nil {
				t.Fatal(err)
			}
		}},
		{"Reader.ReadRequestHead", func() {
			br.Reset(req)
			r.Reset(br)
			if err := r.ReadRequestHead(&rh); err != nil {
				t.Fatal(err)
			}
			r.Release()
		}},
		{"Reader chunked body", func() {
			br.Reset(chunked)
			r.Reset(br)
			if err := r.ReadRequestHead(&rh); err != nil {
				t.Fatal(err)
			}
			for {
				if _, err := r.ReadBody(); err == io.EOF {
					break
				} else if err != nil {
					t.Fatal(err)
				}
			}
			r.Release()
		}},
		{"Writer head", func() {
			w.WriteStatusLine(1, 200, "")
			w.WriteField("Content-Type", "text/plain")
			w.WriteField("Content-Length", "12")
			w.EndHead()
			w.WriteRequestLine("GET", "/x", 1)
			w.WriteField("Host", "example.com")
			w.EndHead()
			w.StartBody(BodyChunked, 0)
			w.WriteBody(req[:10])
			w.FinishBody(trailers)
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			w.Release()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn() // warm up: Fields capacity, pooled buffers
			if n := testing.AllocsPerRun(200, tt.fn); n != 0 {
				t.Errorf("%v allocs per run, want 0", n)
			}
		})
	}
}

func BenchmarkParseRequestHead(b *testing.B) {
	req := []byte(typicalRequest)
	var h RequestHead
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRequestHead(req, &h, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseResponseHead(b *testing.B) {
	resp := []byte(typicalResponse)
	get := []byte("GET")
	var h ResponseHead
	b.SetBytes(int64(len(resp)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseResponseHead(resp, get, &h, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadChunkedBody(b *testing.B) {
	var in bytes.Buffer
	in.WriteString(chunkedHead)
	chunk := bytes.Repeat([]byte("x"), 4096)
	for range 16 {
		in.WriteString("1000\r\n")
		in.Write(chunk)
		in.WriteString("\r\n")
	}
	in.WriteString("0\r\n\r\n")
	data := in.Bytes()
	br := bytes.NewReader(data)
	r := NewReader(br, NewBufPool(0), Limits{})
	var h RequestHead
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		br.Reset(data)
		r.Reset(br)
		if err := r.ReadRequestHead(&h); err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := r.ReadBody(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkWriterHead(b *testing.B) {
	w := NewWriter(io.Discard, NewBufPool(0))
	b.ReportAllocs()
	for b.Loop() {
		w.WriteStatusLine(1, 200, "")
		w.WriteField("Date", "Tue, 15 Nov 1994 08:12:31 GMT")
		w.WriteField("Content-Type", "application/javascript; charset=utf-8")
		w.WriteField("Content-Length", "14872")
		w.WriteField("Cache-Control", "public, max-age=31536000, immutable")
		w.WriteField("ETag", "\"5f2b-1c8a\"")
		w.WriteField("Vary", "Accept-Encoding")
		w.WriteField("Connection", "keep-alive")
		w.EndHead()
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
	}
}
