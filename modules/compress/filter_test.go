package compress

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/gotthard-proxy/gotthard/message"
)

// newTestRequest is the module's state for a request with these Accept-Encoding
// values (none: no field), as NewRequest makes it.
func newTestRequest(m *Module, method string, ranged bool, ae ...string) *request {
	r := m.reqs.Get().(*request)
	r.accept = ParseAcceptEncoding(ae...)
	r.head = method == "HEAD"
	r.ranged = ranged
	return r
}

func response(status int, fields ...string) *message.ResponseHeader {
	resp := &message.ResponseHeader{Status: status, Version: message.HTTP11}
	for i := 0; i+1 < len(fields); i += 2 {
		resp.Header.Add(fields[i], fields[i+1])
	}
	return resp
}

// decodeAll decodes body coded with c by the coding's reference reader.
func decodeAll(t testing.TB, c Coding, body []byte) []byte {
	t.Helper()
	var rd io.Reader
	switch c {
	case Identity:
		return body
	case Gzip:
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		rd = zr
	case Brotli:
		rd = brotli.NewReader(bytes.NewReader(body))
	case Zstd:
		zd, err := zstd.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("zstd: %v", err)
		}
		defer zd.Close()
		rd = zd
	}
	out, err := io.ReadAll(rd)
	if err != nil {
		t.Fatalf("decoding %v: %v", c, err)
	}
	return out
}

// words are what text is made of.
var words = strings.Fields(`the of and to in is that for it as was with be by on not he this are or
his from at which but have an they you were their one all we can her has there been if more when
will would who so no out up into do than time only could new other some these two may first then
any like my now over such our man me even most made after also did many before must through back
years where much your way well down should because each just those people how too little state
good very make world still own see men work long get here between both life being under never day
same another know while last might us great old year off come since against go came right used
take three proxy request response header body stream server client upstream origin cache
<div class="item"> </div> <p> </p> <a href="/page/"> </a> <span> </span> <li> </li>
{"id": "name": "value": [ ] , true false null 0 1 2 3 4 5 6 7 8 9 10 100 2026`)

// text is compressible text of n bytes: words, markup and numbers in a pseudo-random
// order (seeded, so always the same), which gzip 6 codes to about a third.
func text(n int) []byte {
	var b bytes.Buffer
	x := uint32(2463534242)
	for b.Len() < n {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b.WriteString(words[x%uint32(len(words))])
		if x%11 == 0 {
			b.WriteByte('\n')
		} else {
			b.WriteByte(' ')
		}
	}
	return b.Bytes()[:n]
}

func TestHeadRules(t *testing.T) {
	m, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	html := []string{"Content-Type", "text/html; charset=utf-8"}
	with := func(extra ...string) []string { return append(append([]string(nil), html...), extra...) }
	tests := []struct {
		name     string
		method   string
		ranged   bool
		ae       []string
		resp     *message.ResponseHeader
		encoding string // Content-Encoding after the filter
		vary     string // Vary after the filter
		etag     string
		length   bool // Content-Length kept
		ranges   bool // Accept-Ranges kept
	}{
		{name: "compressed", method: "GET", ae: []string{"gzip"},
			resp:     response(200, with("Content-Length", "5000", "ETag", `"abc"`, "Accept-Ranges", "bytes")...),
			encoding: "gzip", vary: "Accept-Encoding", etag: `W/"abc"`},
		{name: "weak etag stays", method: "GET", ae: []string{"br"},
			resp:     response(200, with("ETag", `W/"abc"`)...),
			encoding: "br", vary: "Accept-Encoding", etag: `W/"abc"`},
		{name: "vary merged", method: "GET", ae: []string{"zstd"},
			resp:     response(200, with("Vary", "Origin", "Vary", "Cookie")...),
			encoding: "zstd", vary: "Origin, Cookie, Accept-Encoding"},
		{name: "vary not duplicated", method: "GET", ae: []string{"gzip"},
			resp:     response(200, with("Vary", "origin, accept-encoding")...),
			encoding: "gzip", vary: "origin, accept-encoding"},
		{name: "vary star kept", method: "GET", ae: []string{"gzip"},
			resp:     response(200, with("Vary", "*")...),
			encoding: "gzip", vary: "*"},
		{name: "no accept-encoding: vary still", method: "GET",
			resp: response(200, with("Content-Length", "5000", "ETag", `"abc"`, "Accept-Ranges", "bytes")...),
			vary: "Accept-Encoding", etag: `"abc"`, length: true, ranges: true},
		{name: "refused by q=0: vary still", method: "GET", ae: []string{"gzip;q=0"},
			resp: response(200, with("Content-Length", "5000")...), vary: "Accept-Encoding", length: true},
		{name: "already coded", method: "GET", ae: []string{"gzip"},
			resp: response(200, with("Content-Encoding", "br", "Content-Length", "5000")...), encoding: "br", length: true},
		{name: "identity coding is no coding", method: "GET", ae: []string{"gzip"},
			resp: response(200, with("Content-Encoding", "identity")...), encoding: "gzip", vary: "Accept-Encoding"},
		{name: "no-transform", method: "GET", ae: []string{"gzip"},
			resp: response(200, with("Cache-Control", "public, no-transform", "Content-Length", "5000")...), length: true},
		{name: "HEAD: head as for GET", method: "HEAD", ae: []string{"gzip"},
			resp: response(200, with("Content-Length", "5000", "ETag", `"x"`)...), encoding: "gzip", vary: "Accept-Encoding", etag: `W/"x"`},
		{name: "Range request", method: "GET", ranged: true, ae: []string{"gzip"},
			resp: response(200, with("Content-Length", "5000", "Accept-Ranges", "bytes")...), vary: "Accept-Encoding", length: true, ranges: true},
		{name: "206", method: "GET", ae: []string{"gzip"},
			resp: response(206, with("Content-Length", "5000", "Content-Range", "bytes 0-4999/9000")...), vary: "Accept-Encoding", length: true},
		{name: "204", method: "GET", ae: []string{"gzip"}, resp: response(204, html...)},
		{name: "304", method: "GET", ae: []string{"gzip"}, resp: response(304, with("ETag", `"a"`)...), etag: `"a"`},
		{name: "103", method: "GET", ae: []string{"gzip"}, resp: response(103, html...)},
		{name: "empty body", method: "GET", ae: []string{"gzip"}, resp: response(200, with("Content-Length", "0")...), length: true},
		{name: "small body", method: "GET", ae: []string{"gzip"}, resp: response(200, with("Content-Length", "255")...), length: true},
		{name: "at the minimum", method: "GET", ae: []string{"gzip"}, resp: response(200, with("Content-Length", "256")...), encoding: "gzip", vary: "Accept-Encoding"},
		{name: "unknown length", method: "GET", ae: []string{"gzip"}, resp: response(200, html...), encoding: "gzip", vary: "Accept-Encoding"},
		{name: "image", method: "GET", ae: []string{"gzip"}, resp: response(200, "Content-Type", "image/png", "Content-Length", "5000"), length: true},
		{name: "no content type", method: "GET", ae: []string{"gzip"}, resp: response(200, "Content-Length", "5000"), length: true},
		{name: "error page compressed", method: "GET", ae: []string{"gzip"}, resp: response(404, html...), encoding: "gzip", vary: "Accept-Encoding"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestRequest(m, tt.method, tt.ranged, tt.ae...)
			defer r.Done(nil)
			if err := r.ResponseFilter(context.Background(), nil, tt.resp); err != nil {
				t.Fatal(err)
			}
			h := &tt.resp.Header
			if got := h.Get("Content-Encoding"); got != tt.encoding {
				t.Errorf("Content-Encoding %q, want %q", got, tt.encoding)
			}
			if got := strings.Join(h.Values("Vary"), "|"); got != tt.vary {
				t.Errorf("Vary %q, want %q", got, tt.vary)
			}
			if got := h.Get("ETag"); got != tt.etag {
				t.Errorf("ETag %q, want %q", got, tt.etag)
			}
			if got := h.Has("Content-Length"); got != tt.length {
				t.Errorf("Content-Length present %v, want %v", got, tt.length)
			}
			if got := h.Has("Accept-Ranges"); got != tt.ranges {
				t.Errorf("Accept-Ranges present %v, want %v", got, tt.ranges)
			}
			compressing := r.st != nil
			if want := tt.method == "GET" && tt.encoding != "" && tt.encoding != "br" || tt.name == "weak etag stays"; compressing != want {
				t.Errorf("compressing %v, want %v", compressing, want)
			}
		})
	}
}

// TestStreamingFlush checks each piece's output decodes, with what came before, to
// exactly the input so far, for each coding, and the whole to the body.
func TestStreamingFlush(t *testing.T) {
	m, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	body := text(200 << 10)
	for _, c := range []Coding{Gzip, Brotli, Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			for round := range 2 { // the second round takes the encoder back from the pool
				r := newTestRequest(m, "GET", false, c.String())
				resp := response(200, "Content-Type", "text/plain")
				if err := r.ResponseFilter(context.Background(), nil, resp); err != nil {
					t.Fatal(err)
				}
				var coded []byte
				sent := 0
				for i, size := 0, 1; sent < len(body); i, size = i+1, size*3 {
					piece := body[sent:min(sent+size, len(body))]
					out, err := r.ResponseBodyFilter(context.Background(), nil, piece, false)
					if err != nil {
						t.Fatal(err)
					}
					coded = append(coded, out...)
					sent += len(piece)
					// A fresh reader over what was sent so far decodes all the input so
					// far (and would then wait for more).
					buf := make([]byte, sent)
					if _, err := io.ReadFull(streamReader(t, c, bytes.NewReader(coded)), buf); err != nil {
						t.Fatalf("round %d piece %d: reading the %d bytes flushed so far: %v", round, i, sent, err)
					}
					if !bytes.Equal(buf, body[:sent]) {
						t.Fatalf("round %d piece %d: the decoded prefix differs", round, i)
					}
				}
				out, err := r.ResponseBodyFilter(context.Background(), nil, nil, true)
				if err != nil {
					t.Fatal(err)
				}
				coded = append(coded, out...)
				if got := decodeAll(t, c, coded); !bytes.Equal(got, body) {
					t.Fatal("decoded body differs")
				}
				r.Done(nil)
			}
		})
	}
}

// streamReader decodes c from buf.
func streamReader(t *testing.T, c Coding, buf io.Reader) io.Reader {
	switch c {
	case Gzip:
		zr, err := gzip.NewReader(buf)
		if err != nil {
			t.Fatal(err)
		}
		return zr
	case Brotli:
		return brotli.NewReader(buf)
	default:
		zd, err := zstd.NewReader(buf, zstd.WithDecoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(zd.Close)
		return zd
	}
}

func TestMaxStreams(t *testing.T) {
	m, err := New(Options{MaxStreams: 2})
	if err != nil {
		t.Fatal(err)
	}
	var reqs []*request
	for i := range 3 {
		r := newTestRequest(m, "GET", false, "gzip")
		resp := response(200, "Content-Type", "text/plain")
		if err := r.ResponseFilter(context.Background(), nil, resp); err != nil {
			t.Fatal(err)
		}
		if got, want := resp.Header.Get("Content-Encoding") == "gzip", i < 2; got != want {
			t.Fatalf("response %d: compressed %v, want %v", i, got, want)
		}
		if resp.Header.Get("Vary") != "Accept-Encoding" {
			t.Fatalf("response %d: no Vary", i)
		}
		reqs = append(reqs, r)
	}
	for _, r := range reqs {
		r.Done(nil)
	}
	r := newTestRequest(m, "GET", false, "gzip")
	resp := response(200, "Content-Type", "text/plain")
	if err := r.ResponseFilter(context.Background(), nil, resp); err != nil || resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("after Done: %v, Content-Encoding %q", err, resp.Header.Get("Content-Encoding"))
	}
	r.Done(nil)
	if n := m.active.Load(); n != 0 {
		t.Fatalf("%d streams counted after every Done", n)
	}
}
