package h1

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

const chunkedHead = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"

// readAllBody reads the whole body of the request or response at the start of r.
func readAllBody(r *Reader) ([]byte, error) {
	var body []byte
	for range 1 << 20 {
		p, err := r.ReadBody()
		body = append(body, p...)
		if err != nil {
			return body, err
		}
	}
	panic("ReadBody loops")
}

func TestChunkedBody(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		want     string
		err      error // io.EOF for success
		status   int   // for *Error
		trailers string
	}{
		{"basic", "5\r\nhello\r\n0\r\n\r\n", "hello", io.EOF, 0, ""},
		{"two chunks", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world", io.EOF, 0, ""},
		{"upper hex", "A\r\n0123456789\r\n0\r\n\r\n", "0123456789", io.EOF, 0, ""},
		{"leading zeros", "0005\r\nhello\r\n000\r\n\r\n", "hello", io.EOF, 0, ""},
		{"extensions", "5;a=b;c=\"d e\";f\r\nhello\r\n0;x=1\r\n\r\n", "hello", io.EOF, 0, ""},
		{"BWS before ext", "5 ;a = b\r\nhello\r\n0\r\n\r\n", "hello", io.EOF, 0, ""},
		{"quoted pair", "5;a=\"\\\"\"\r\nhello\r\n0\r\n\r\n", "hello", io.EOF, 0, ""},
		{"trailers", "5\r\nhello\r\n0\r\nX-A: 1\r\nX-B:  two \r\n\r\n", "hello", io.EOF, 0, "X-A=1;X-B=two;"},
		{"trailers bare LF", "5\r\nhello\r\n0\r\nX-A: 1\n\n", "hello", io.EOF, 0, "X-A=1;"},

		{"0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", "", nil, 400, ""},
		{"plus", "+5\r\nhello\r\n0\r\n\r\n", "", nil, 400, ""},
		{"leading space", " 5\r\nhello\r\n0\r\n\r\n", "", nil, 400, ""},
		{"trailing space", "5 \r\nhello\r\n0\r\n\r\n", "", nil, 400, ""},
		{"empty size line", "\r\nhello\r\n0\r\n\r\n", "", nil, 400, ""},
		{"17 hex digits", "00000000000000005\r\nhello\r\n0\r\n\r\n", "", nil, 400, ""},
		{"size overflows int63", "8000000000000000\r\nhello\r\n0\r\n\r\n", "", nil, 400, ""},
		{"size overflows uint64", "fffffffffffffffff\r\nhello\r\n0\r\n\r\n", "", nil, 400, ""},
		{"huge size then EOF", "7fffffffffffffff\r\nhello", "hello", io.ErrUnexpectedEOF, 0, ""},
		{"size line bare LF", "5\nhello\r\n0\r\n\r\n", "", nil, 400, ""},
		{"size line bare CR", "5\rX\r\nhello\r\n0\r\n\r\n", "", nil, 400, ""},
		{"empty ext", "5;\r\nhello\r\n0\r\n\r\n", "", nil, 400, ""},
		{"ext empty value", "5;a=\r\nhello\r\n0\r\n\r\n", "", nil, 400, ""},
		{"ext unterminated quote", "5;a=\"x\r\nhello\r\n0\r\n\r\n", "", nil, 400, ""},
		{"ext space in name", "5;a b\r\nhello\r\n0\r\n\r\n", "", nil, 400, ""},
		{"ext trailing space", "5;a \r\nhello\r\n0\r\n\r\n", "", nil, 400, ""},
		{"ext NUL", "5;a=\x00\r\nhello\r\n0\r\n\r\n", "", nil, 400, ""},
		{"size line too long", "5;" + strings.Repeat("a=b;", 3000) + "a\r\nhello\r\n0\r\n\r\n", "", nil, 400, ""},
		{"data too long", "5\r\nhelloX\r\n0\r\n\r\n", "hello", nil, 400, ""},
		{"data bare LF", "5\r\nhello\n0\r\n\r\n", "hello", nil, 400, ""},
		{"data bare CR", "5\r\nhello\r0\r\n\r\n", "hello", nil, 400, ""},
		{"trailer obs-fold", "5\r\nhello\r\n0\r\nX: a\r\n b\r\n\r\n", "hello", nil, 400, ""},
		{"trailer NUL", "5\r\nhello\r\n0\r\nX: \x00\r\n\r\n", "hello", nil, 400, ""},
		{"trailer no colon", "5\r\nhello\r\n0\r\nX\r\n\r\n", "hello", nil, 400, ""},
		{"too many trailers", "0\r\n" + strings.Repeat("X: y\r\n", 101) + "\r\n", "", nil, 431, ""},
		{"EOF in size line", "5", "", io.ErrUnexpectedEOF, 0, ""},
		{"EOF in data", "5\r\nhel", "hel", io.ErrUnexpectedEOF, 0, ""},
		{"EOF after data", "5\r\nhello", "hello", io.ErrUnexpectedEOF, 0, ""},
		{"EOF before last chunk", "5\r\nhello\r\n", "hello", io.ErrUnexpectedEOF, 0, ""},
		{"EOF in trailers", "5\r\nhello\r\n0\r\nX: y\r\n", "hello", io.ErrUnexpectedEOF, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, one := range []bool{false, true} {
				var rd io.Reader = strings.NewReader(chunkedHead + tt.body)
				if one {
					rd = iotest.OneByteReader(rd)
				}
				r := NewReader(rd, NewBufPool(64), Limits{})
				var h RequestHead
				if err := r.ReadRequestHead(&h); err != nil {
					t.Fatal(err)
				}
				body, err := readAllBody(r)
				if tt.status != 0 {
					if got := statusOf(err); got != tt.status {
						t.Fatalf("one=%v: err %v, want status %d", one, err, tt.status)
					}
				} else if err != tt.err {
					t.Fatalf("one=%v: err %v, want %v", one, err, tt.err)
				}
				if string(body) != tt.want {
					t.Errorf("one=%v: body %q, want %q", one, body, tt.want)
				}
				var tr strings.Builder
				for _, f := range r.Trailers() {
					tr.WriteString(string(f.Name) + "=" + string(f.Value) + ";")
				}
				if tr.String() != tt.trailers {
					t.Errorf("one=%v: trailers %q, want %q", one, tr.String(), tt.trailers)
				}
			}
		})
	}
}

func TestChunkedResponseErrorIs502(t *testing.T) {
	in := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
	r := NewReader(strings.NewReader(in), NewBufPool(0), Limits{})
	var h ResponseHead
	if err := r.ReadResponseHead([]byte("GET"), &h); err != nil {
		t.Fatal(err)
	}
	if _, err := readAllBody(r); statusOf(err) != 502 {
		t.Fatalf("err = %v, want status 502", err)
	}
}
