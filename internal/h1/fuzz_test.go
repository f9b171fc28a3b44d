package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// addCorpus seeds f with the files in testdata/corpus.
func addCorpus(f *testing.F) {
	files, err := filepath.Glob("testdata/corpus/*.txt")
	if err != nil || len(files) == 0 {
		f.Fatalf("no corpus: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzParseRequestHead checks that the parser never panics, that what it accepts is
// well-formed, that the Reader (fed a byte at a time) agrees with it, and that it
// agrees with net/http where both accept.
//
// Intended divergences from net/http (the fuzzer compares only inputs both accept,
// so these do not fail it, but they are listed here on purpose):
//   - We reject what net/http accepts: Host missing in HTTP/1.1, duplicate Host, Host
//     not an authority, TE in HTTP/1.0 (net/http ignores it), CL with TE (net/http
//     drops CL), codings other than chunked, targets whose form does not fit the
//     method, obs-fold, and chunk/field details covered by the table tests.
//   - We accept what net/http rejects: "Content-Length: 5, 5" (RFC 9110 §8.6 allows a
//     list of identical values).
//   - For an absolute-form target, RequestHead.Host is the Host field while net/http's
//     Request.Host is the target's authority; the proxy decides (RFC 9112 §3.2.2).
func FuzzParseRequestHead(f *testing.F) {
	addCorpus(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var h RequestHead
		n, err := ParseRequestHead(data, &h, nil)
		var small RequestHead
		ParseRequestHead(data, &small, &Limits{MaxHeadBytes: 64, MaxFields: 3, MaxLineBytes: 24})

		// The Reader, a byte at a time, must agree with the parser.
		r := NewReader(iotest.OneByteReader(bytes.NewReader(data)), NewBufPool(64), Limits{})
		var rh RequestHead
		rerr := r.ReadRequestHead(&rh)
		var re *Error
		switch {
		case err == nil && (rerr != nil || rh.summary() != h.summary()):
			t.Fatalf("parser ok (%s), Reader %v (%s)", h.summary(), rerr, rh.summary())
		case errors.As(rerr, &re) && statusOf(err) != re.Status:
			t.Fatalf("Reader status %d, parser %v", re.Status, err)
		}
		if err != nil {
			if n != 0 {
				t.Fatalf("n = %d with error", n)
			}
			return
		}
		if n <= 0 || n > len(data) {
			t.Fatalf("n = %d of %d", n, len(data))
		}
		checkRequestInvariants(t, &h)
		if n2, err := ParseRequestHead(data[:n], &h, nil); n2 != n || err != nil {
			t.Fatalf("reparse of head: %d, %v", n2, err)
		}

		req, gerr := http.ReadRequest(bufio.NewReader(bytes.NewReader(data)))
		if gerr != nil {
			return
		}
		if req.Body != nil {
			req.Body.Close()
		}
		if req.Method != string(h.Method) || req.RequestURI != string(h.Target) {
			t.Fatalf("net/http %q %q, we %q %q", req.Method, req.RequestURI, h.Method, h.Target)
		}
		if h.Target[0] == '/' && req.Host != string(h.Host) {
			t.Fatalf("net/http Host %q, we %q", req.Host, h.Host)
		}
		goChunked := len(req.TransferEncoding) > 0 && req.TransferEncoding[len(req.TransferEncoding)-1] == "chunked"
		if goChunked != (h.Body == BodyChunked) {
			t.Fatalf("net/http chunked %v, we %v", goChunked, h.Body)
		}
		if !goChunked {
			want := int64(0)
			if h.Body == BodyLength {
				want = h.ContentLength
			}
			if req.ContentLength != want {
				t.Fatalf("net/http Content-Length %d, we %d (%v)", req.ContentLength, h.ContentLength, h.Body)
			}
		}
	})
}

func checkRequestInvariants(t *testing.T, h *RequestHead) {
	t.Helper()
	if !validToken(h.Method) || !ValidTarget(string(h.Target)) || h.Minor > 1 {
		t.Fatalf("bad request line %q %q %d", h.Method, h.Target, h.Minor)
	}
	if h.Minor == 1 && h.Host == nil {
		t.Fatal("HTTP/1.1 without Host accepted")
	}
	for _, f := range h.Fields {
		if !validToken(f.Name) || !ValidFieldValue(string(f.Value)) {
			t.Fatalf("bad field %q: %q", f.Name, f.Value)
		}
	}
	checkPlainLength(t, h.Fields, h.ContentLength, h.ContentLengthPlain)
	switch h.Body {
	case BodyNone, BodyChunked:
	case BodyLength:
		if h.ContentLength <= 0 {
			t.Fatalf("BodyLength with %d", h.ContentLength)
		}
	default:
		t.Fatalf("request body %v", h.Body)
	}
}

// FuzzParseResponseHead checks that the response parser never panics, that what it
// accepts is well-formed and that the Reader agrees with it.
func FuzzParseResponseHead(f *testing.F) {
	addCorpus(f)
	methods := []string{"GET", "HEAD", "CONNECT", "POST"}
	f.Fuzz(func(t *testing.T, data []byte) {
		method := []byte(methods[len(data)%len(methods)])
		var h ResponseHead
		n, err := ParseResponseHead(data, method, &h, nil)
		r := NewReader(iotest.OneByteReader(bytes.NewReader(data)), NewBufPool(64), Limits{})
		var rh ResponseHead
		rerr := r.ReadResponseHead(method, &rh)
		var re *Error
		switch {
		case err == nil && (rerr != nil || rh.summary() != h.summary()):
			t.Fatalf("parser ok (%s), Reader %v (%s)", h.summary(), rerr, rh.summary())
		case errors.As(rerr, &re) && (statusOf(err) != 502 || re.Status != 502):
			t.Fatalf("Reader %v, parser %v", rerr, err)
		}
		if err != nil {
			return
		}
		if n <= 0 || n > len(data) || h.Status < 100 || h.Status > 599 {
			t.Fatalf("n = %d, status %d", n, h.Status)
		}
		if h.Body == BodyUntilClose && h.KeepAlive {
			t.Fatal("keep-alive with a body delimited by close")
		}
		for _, f := range h.Fields {
			if !validToken(f.Name) || !ValidFieldValue(string(f.Value)) {
				t.Fatalf("bad field %q: %q", f.Name, f.Value)
			}
		}
		checkPlainLength(t, h.Fields, h.ContentLength, h.ContentLengthPlain)
	})
}

// checkPlainLength checks a head's ContentLengthPlain: true exactly when there is one
// Content-Length field and its value is the length in decimal, as the proxy would
// write it.
func checkPlainLength(t *testing.T, fields []Field, cl int64, plain bool) {
	t.Helper()
	var values []string
	for _, f := range fields {
		if eqFold(f.Name, "content-length") {
			values = append(values, string(f.Value))
		}
	}
	want := len(values) == 1 && values[0] == strconv.FormatInt(cl, 10)
	if plain != want {
		t.Fatalf("ContentLengthPlain %v for Content-Length %q (length %d)", plain, values, cl)
	}
}

// FuzzChunkedBody reads arbitrary bytes as a chunked body. It must never panic or
// loop, must decode identically whatever the read sizes, and an accepted body must
// round-trip through the Writer.
func FuzzChunkedBody(f *testing.F) {
	for _, s := range []string{
		"5\r\nhello\r\n0\r\n\r\n",
		"5;a=\"b\"\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-T: 1\r\n\r\n",
		"0\r\n\r\n",
		"ffffffffffffffff\r\n",
		"5\r\nhello\n0\r\n\r\n",
		"5 ;x\r\nhello\r\n0\r\nA: b\nC: d\r\n\r\nGET / HTTP/1.1\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := append([]byte(chunkedHead), data...)
		decode := func(rd io.Reader, pool *BufPool) (body []byte, trailers string, res string) {
			r := NewReader(rd, pool, Limits{MaxLineBytes: 128, MaxHeadBytes: 512, MaxFields: 8})
			var h RequestHead
			if err := r.ReadRequestHead(&h); err != nil {
				t.Fatal(err)
			}
			for calls := 0; ; calls++ {
				if calls > len(data)+2 {
					t.Fatal("ReadBody does not make progress")
				}
				p, err := r.ReadBody()
				body = append(body, p...)
				if err != nil {
					var tb strings.Builder
					for _, f := range r.Trailers() {
						tb.WriteString(string(f.Name) + ": " + string(f.Value) + "\n")
					}
					return body, tb.String(), errString(err)
				}
			}
		}
		body, trailers, res := decode(bytes.NewReader(in), NewBufPool(0))
		body1, trailers1, res1 := decode(iotest.OneByteReader(bytes.NewReader(in)), NewBufPool(64))
		if !bytes.Equal(body, body1) || trailers != trailers1 || res != res1 {
			t.Fatalf("whole: %q %q %s\none byte: %q %q %s", body, trailers, res, body1, trailers1, res1)
		}
		if res != "EOF" {
			return
		}
		// Round trip: re-encode with the Writer and decode again.
		var out bytes.Buffer
		pool := NewBufPool(64)
		w := NewWriter(&out, pool)
		w.WriteString(chunkedHead)
		w.StartBody(BodyChunked, 0)
		for i := 0; i < len(body); i += 7 {
			w.WriteBody(body[i:min(i+7, len(body))])
		}
		r := NewReader(bytes.NewReader(in), pool, Limits{MaxLineBytes: 128, MaxHeadBytes: 512, MaxFields: 8})
		var h RequestHead
		r.ReadRequestHead(&h)
		readAllBody(r)
		if err := w.FinishBody(r.Trailers()); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		body2, trailers2, res2 := decode(&out, pool)
		if !bytes.Equal(body, body2) || trailers != trailers2 || res2 != "EOF" {
			t.Fatalf("round trip: %q %q %s, want %q %q", body2, trailers2, res2, body, trailers)
		}
	})
}
