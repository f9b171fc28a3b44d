package cache

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestParseRange: RFC 9110 §14.1.1 (byte ranges), §14.1.2 and §14.2 (satisfiable
// ranges, coalescing, ignoring).
func TestParseRange(t *testing.T) {
	r := func(start, length int64) ByteRange { return ByteRange{start, length} }
	tests := []struct {
		name    string
		policy  Policy
		value   string
		size    int64
		want    []ByteRange
		wantErr error
	}{
		{"§14.1.1 first-last", Policy{}, "bytes=0-499", 10000, []ByteRange{r(0, 500)}, nil},
		{"§14.1.1 open-ended first-", Policy{}, "bytes=9500-", 10000, []ByteRange{r(9500, 500)}, nil},
		{"§14.1.1 suffix", Policy{}, "bytes=-500", 10000, []ByteRange{r(9500, 500)}, nil},
		{"§14.1.1 suffix longer than the body: all of it", Policy{}, "bytes=-50000", 10000, []ByteRange{r(0, 10000)}, nil},
		{"§14.1.1 last past the end is cut to it", Policy{}, "bytes=9000-20000", 10000, []ByteRange{r(9000, 1000)}, nil},
		{"§14.1.1 last past the end, by a huge number", Policy{}, "bytes=5-99999999999999999999999", 10, []ByteRange{r(5, 5)}, nil},
		{"§14.1.1 unit case-insensitive, whitespace in the list", Policy{}, "Bytes=0-0 , -1", 10000, []ByteRange{r(0, 1), r(9999, 1)}, nil},
		{"§14.1.1 several ranges in order kept", Policy{}, "bytes=0-9,20-29,40-", 50, []ByteRange{r(0, 10), r(20, 10), r(40, 10)}, nil},
		{"§14.2 overlapping ranges coalesced", Policy{}, "bytes=0-99,50-149", 1000, []ByteRange{r(0, 150)}, nil},
		{"§14.2 adjacent ranges coalesced", Policy{}, "bytes=0-9,10-19", 1000, []ByteRange{r(0, 20)}, nil},
		{"§14.2 out of order ranges sorted", Policy{}, "bytes=20-29,0-9", 1000, []ByteRange{r(0, 10), r(20, 10)}, nil},
		{"§14.2 the same range many times sent once", Policy{}, "bytes=0-99,0-99,0-99,-1000", 1000, []ByteRange{r(0, 1000)}, nil},
		{"§14.1.2 range past the end left out", Policy{}, "bytes=0-9,2000-3000", 1000, []ByteRange{r(0, 10)}, nil},
		{"§14.1.2 all ranges past the end: 416", Policy{}, "bytes=1000-", 1000, nil, ErrRangeUnsatisfiable},
		{"§14.1.2 first-pos at the length: 416", Policy{}, "bytes=10-20", 10, nil, ErrRangeUnsatisfiable},
		{"§14.1.2 suffix of 0: 416", Policy{}, "bytes=-0", 1000, nil, ErrRangeUnsatisfiable},
		{"§14.1.2 empty body: 416", Policy{}, "bytes=0-", 0, nil, ErrRangeUnsatisfiable},
		{"§14.1.1 last before first: invalid, ignored", Policy{}, "bytes=10-5", 1000, nil, ErrRangeSyntax},
		{"§14.1.1 another unit: ignored", Policy{}, "items=0-5", 1000, nil, ErrRangeSyntax},
		{"§14.1.1 no '=': ignored", Policy{}, "bytes 0-5", 1000, nil, ErrRangeSyntax},
		{"§14.1.1 no dash: ignored", Policy{}, "bytes=5", 1000, nil, ErrRangeSyntax},
		{"§14.1.1 non-digit: ignored", Policy{}, "bytes=0x1-5", 1000, nil, ErrRangeSyntax},
		{"§14.1.1 negative: ignored", Policy{}, "bytes=--5", 1000, nil, ErrRangeSyntax},
		{"§14.1.1 no ranges: ignored", Policy{}, "bytes= , ", 1000, nil, ErrRangeSyntax},
		{"§14.1.1 one bad range spoils the set", Policy{}, "bytes=0-5,x", 1000, nil, ErrRangeSyntax},
		{"§14.2 too many ranges: ignored", Policy{MaxRanges: 2}, "bytes=0-1,3-4,6-7", 1000, nil, ErrRangeTooMany},
		{"§14.2 negative limit: Range always ignored", Policy{MaxRanges: -1}, "bytes=0-1", 1000, nil, ErrRangeTooMany},
		{"§14.2 default limit 16", Policy{}, "bytes=" + strings.Repeat("0-1,", 17), 1000, nil, ErrRangeTooMany},
		{"§14.2 limit counts unsatisfiable ranges too", Policy{MaxRanges: 1}, "bytes=0-1,5000-", 1000, nil, ErrRangeTooMany},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.policy.ParseRange(nil, tt.value, tt.size)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ranges = %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("§14.1.1 appends to dst and keeps it on error", func(t *testing.T) {
		dst := []ByteRange{{1, 1}}
		got, err := Policy{}.ParseRange(dst, "bytes=0-1", 10)
		if err != nil || !slices.Equal(got, []ByteRange{{1, 1}, {0, 2}}) {
			t.Errorf("got %v, %v", got, err)
		}
		got, err = Policy{}.ParseRange(dst, "bytes=0-1,x", 10)
		if err == nil || !slices.Equal(got, dst) {
			t.Errorf("on error got %v, %v", got, err)
		}
	})
}

// TestIfRange: RFC 9110 §13.1.5.
func TestIfRange(t *testing.T) {
	lm := date(-time.Hour)
	tests := []struct {
		name   string
		reqH   []string
		stored []string
		want   bool
	}{
		{"§13.1.5 no If-Range", nil, []string{`ETag: "a"`}, true},
		{"§13.1.5 strong ETag matches", []string{`If-Range: "a"`}, []string{`ETag: "a"`}, true},
		{"§13.1.5 other ETag", []string{`If-Range: "b"`}, []string{`ETag: "a"`}, false},
		{"§13.1.5 weak ETag never matches", []string{`If-Range: W/"a"`}, []string{`ETag: W/"a"`}, false},
		{"§13.1.5 strong If-Range against a weak stored ETag", []string{`If-Range: "a"`}, []string{`ETag: W/"a"`}, false},
		{"§13.1.5 exact date matches", []string{"If-Range: " + lm}, []string{"Last-Modified: " + lm}, true},
		{"§13.1.5 other date", []string{"If-Range: " + date(-2*time.Hour)}, []string{"Last-Modified: " + lm}, false},
		{"§13.1.5 date without a stored Last-Modified", []string{"If-Range: " + lm}, []string{`ETag: "a"`}, false},
		{"§13.1.5 invalid value", []string{"If-Range: yesterday"}, []string{"Last-Modified: " + lm}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IfRangeMatches(newReq(t, "GET", tt.reqH...), stored(t, 200, tt.stored...)); got != tt.want {
				t.Errorf("IfRangeMatches = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestPartial: RFC 9110 §15.3.7, the 206 head for one range, and §15.5.17, the 416.
func TestPartial(t *testing.T) {
	m := stored(t, 200, "Date: "+date(0), "Content-Type: text/plain", "Content-Length: 1000", `ETag: "a"`)
	var dst = newResp(t, 0)
	Partial(dst, m, ByteRange{100, 50}, 1000, t0)
	want := "Date: " + date(0) + "\r\nContent-Type: text/plain\r\nContent-Length: 50\r\nETag: \"a\"\r\nAge: 0\r\nContent-Range: bytes 100-149/1000\r\n"
	if dst.Status != 206 || dst.Header.String() != want {
		t.Errorf("§15.3.7 206 head: %d\n%s\nwant\n%s", dst.Status, dst.Header.String(), want)
	}
	Unsatisfiable(dst, m, 1000, t0)
	want = "Date: " + date(0) + "\r\nETag: \"a\"\r\nContent-Range: bytes */1000\r\nContent-Length: 0\r\n"
	if dst.Status != 416 || dst.Header.String() != want {
		t.Errorf("§15.5.17 416 head: %d\n%s\nwant\n%s", dst.Status, dst.Header.String(), want)
	}
}

// TestMultipart: RFC 9110 §14.6, multipart/byteranges: the body parses as multipart
// with the standard library, each part holds its range, and the length computed up
// front is the length written.
func TestMultipart(t *testing.T) {
	body := make([]byte, 10000)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	tests := []struct {
		name        string
		ranges      []ByteRange
		contentType string
		boundary    string
	}{
		{"§14.6 two parts with a Content-Type", []ByteRange{{0, 10}, {9990, 10}}, "text/plain; charset=utf-8", "SEP"},
		{"§14.6 without Content-Type", []ByteRange{{5, 1}, {100, 1000}, {9000, 1000}}, "", "x-y"},
		{"§14.6 random boundary", []ByteRange{{0, 1}, {2, 1}}, "application/octet-stream", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mp := NewMultipart(tt.ranges, int64(len(body)), tt.contentType, tt.boundary)
			if tt.boundary == "" && len(mp.Boundary()) < 20 {
				t.Fatalf("boundary %q", mp.Boundary())
			}
			var buf bytes.Buffer
			n, err := mp.WriteBody(&buf, bytes.NewReader(body))
			if err != nil || n != int64(buf.Len()) || n != mp.ContentLength() {
				t.Fatalf("WriteBody = %d, %v; wrote %d; ContentLength %d", n, err, buf.Len(), mp.ContentLength())
			}
			m := stored(t, 200, "Date: "+date(0), "Content-Type: "+tt.contentType, "Content-Length: 10000")
			head := newResp(t, 0)
			mp.Header(head, m, t0)
			if head.Status != 206 || head.Header.Get("Content-Length") != strconv.FormatInt(n, 10) || len(head.Header.Values("Content-Type")) != 1 {
				t.Fatalf("head %d\n%s", head.Status, head.Header.String())
			}
			mt, params, err := mime.ParseMediaType(head.Header.Get("Content-Type"))
			if err != nil || mt != "multipart/byteranges" || params["boundary"] != mp.Boundary() {
				t.Fatalf("Content-Type %q: %v", head.Header.Get("Content-Type"), err)
			}
			mr := multipart.NewReader(&buf, mp.Boundary())
			for i, r := range tt.ranges {
				part, err := mr.NextPart()
				if err != nil {
					t.Fatalf("part %d: %v", i, err)
				}
				wantCR := "bytes " + strconv.FormatInt(r.Start, 10) + "-" + strconv.FormatInt(r.Start+r.Length-1, 10) + "/10000"
				if part.Header.Get("Content-Range") != wantCR || part.Header.Get("Content-Type") != tt.contentType {
					t.Errorf("part %d head %v", i, part.Header)
				}
				got, _ := io.ReadAll(part)
				if !bytes.Equal(got, body[r.Start:r.Start+r.Length]) {
					t.Errorf("part %d body %q", i, got)
				}
			}
			if _, err := mr.NextPart(); err != io.EOF {
				t.Errorf("after the last part: %v", err)
			}
		})
	}
	t.Run("§14.6 a short body is an error", func(t *testing.T) {
		mp := NewMultipart([]ByteRange{{0, 10}, {90, 20}}, 110, "", "b")
		_, err := mp.WriteBody(io.Discard, bytes.NewReader(make([]byte, 100)))
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("err = %v", err)
		}
	})
}

func BenchmarkParseRange(b *testing.B) {
	dst := make([]ByteRange, 0, 4)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := (Policy{}).ParseRange(dst[:0], "bytes=0-1023, 4096-", 1<<20); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-499", "bytes=-5", "bytes=5-", "bytes=0-1,1-2,0-9", "bytes=9-1", "bytes= , ,0-0"} {
		f.Add(s, int64(1000))
	}
	f.Fuzz(func(t *testing.T, v string, size int64) {
		if size < 0 {
			size = -size
		}
		rs, err := Policy{MaxRanges: 64}.ParseRange(nil, v, size)
		if err != nil {
			if len(rs) != 0 {
				t.Fatalf("ranges with an error: %v", rs)
			}
			return
		}
		var total int64
		for i, r := range rs {
			if r.Start < 0 || r.Length <= 0 || r.Start+r.Length > size {
				t.Fatalf("%q/%d: range %v out of bounds", v, size, r)
			}
			if i > 0 && r.Start <= rs[i-1].Start+rs[i-1].Length {
				t.Fatalf("%q/%d: ranges overlap or touch: %v", v, size, rs)
			}
			total += r.Length
		}
		if total > size {
			t.Fatalf("%q/%d: %d bytes", v, size, total)
		}
	})
}
