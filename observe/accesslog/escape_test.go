package accesslog

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/observe"
)

// firstSpecial returns the index of w's first byte that plain does not mark, or 8.
func firstSpecial(w uint64) int {
	for k := range 8 {
		if !plain[byte(w>>(8*k))] {
			return k
		}
	}
	return 8
}

// TestSpecial checks special's lowest marked byte against the plain table: every byte
// value at every position among plain bytes, and every pair of byte values at several
// pairs of positions (a marked byte's borrow or carry must not move the lowest mark).
func TestSpecial(t *testing.T) {
	check := func(w uint64) {
		t.Helper()
		m, want := special(w), firstSpecial(w)
		if got := bits.TrailingZeros64(m) >> 3; got != want {
			t.Fatalf("special(%#016x) = %#016x: first marked byte %d, want %d", w, m, got, want)
		}
	}
	const filler = uint64('a') * lsb
	for p := range 8 {
		for c := range 256 {
			check(filler&^(0xff<<(8*p)) | uint64(c)<<(8*p))
		}
	}
	for _, pos := range [][2]int{{0, 1}, {2, 3}, {0, 7}, {6, 7}, {3, 5}} {
		for c1 := range 256 {
			for c2 := range 256 {
				w := filler &^ (0xff<<(8*pos[0]) | 0xff<<(8*pos[1]))
				check(w | uint64(c1)<<(8*pos[0]) | uint64(c2)<<(8*pos[1]))
			}
		}
	}
}

// escapeCases are strings for the escapers: every length around the word size, with a
// byte to escape at each place, and the cases of the format docs.
func escapeCases() []string {
	cases := []string{
		"", "plain", `"`, `\`, "\x00\x1f\x7f", "\n\r\t\b\f", "é€😀", "\xff", "\xc3", "a\xc3(b",
		"\xed\xa0\x80", "\u2028\u2029", "<script>&", "\xef\xbf\xbd", "Grüße \xff\xfe \u2028",
		"/a\x01b\tc\x7f\"\\", "https://example.com/start?q=\"x\"&r=\\y", "x\u2028", "€\u2029€",
		"\xe2\x80", "\xe2\x80\xa8\xe2\x80", "\xf0\x9f\x98", "\xf0\x9f\x98\x80\x80",
	}
	const text = "abcdefghijklmnopqrstuvwxyz0123456789"
	for n := range len(text) {
		cases = append(cases, text[:n])
		for _, esc := range []string{`"`, "\x00", "\x7f", "\xff", "é", "\u2028", "\n"} {
			for at := 0; at <= n; at += max(1, n/5) {
				cases = append(cases, text[:at]+esc+text[at:n])
			}
		}
	}
	return cases
}

// TestEscapersAsReference compares the escapers with the reference ones, appending to
// an empty buffer, to one with a prefix and no room, and to one with exactly the room
// the escapers require.
func TestEscapersAsReference(t *testing.T) {
	for _, s := range escapeCases() {
		checkEscapers(t, s)
	}
}

// checkEscapers compares appendJSONString and appendEscaped, and putJSON and
// putCombined in a buffer of exactly the room they require, with the reference
// escapers, for s.
func checkEscapers(t *testing.T, s string) {
	t.Helper()
	want := string(refJSONString(nil, s))
	if got := string(appendJSONString(nil, s)); got != want {
		t.Fatalf("appendJSONString(%q) = %s, want %s", s, got, want)
	}
	if got := string(appendJSONString([]byte("k:"), s)); got != "k:"+want {
		t.Fatalf("appendJSONString(k:, %q) = %s, want k:%s", s, got, want)
	}
	wantCLF := string(refEscaped(nil, s))
	if got := string(appendEscaped(nil, s)); got != wantCLF {
		t.Fatalf("appendEscaped(%q) = %s, want %s", s, got, wantCLF)
	}
	if got := string(appendEscaped([]byte("k:"), s)); got != "k:"+wantCLF {
		t.Fatalf("appendEscaped(k:, %q) = %s, want k:%s", s, got, wantCLF)
	}
	// In place, at an offset, in a buffer with no byte to spare (the tighter of the two
	// bounds the lines use): what is before the offset stays, and a store past the
	// buffer would panic.
	for _, c := range []struct {
		name    string
		perByte int
		put     func(d []byte, i int, s string) int
		want    string
	}{
		{"putJSON", jsonPerByte, putJSON, want[1 : len(want)-1]},
		{"putCombined", combinedPerByte, putCombined, wantCLF},
	} {
		for _, at := range []int{0, 3} {
			d := bytes.Repeat([]byte{'#'}, at+escapedLen(s, c.perByte)+slack)
			n := c.put(d, at, s)
			if got := string(d[at:n]); got != c.want {
				t.Fatalf("%s(%q) = %s, want %s", c.name, s, got, c.want)
			}
			if got := string(d[:at]); got != strings.Repeat("#", at) {
				t.Fatalf("%s(%q) at %d wrote before it: %q", c.name, s, at, got)
			}
		}
	}
}

// FuzzEscapers compares the word-at-a-time escapers with the reference ones, and checks
// that encoding/json reads the JSON string back as it reads its own encoding of s and
// that the combined escaping reverses to s.
func FuzzEscapers(f *testing.F) {
	for _, s := range escapeCases()[:30] {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkEscapers(t, s)
		checkJSONString(t, s)
		if got := unescapeCLF(t, string(appendEscaped(nil, s))); got != s {
			t.Fatalf("%q escaped unescapes to %q", s, got)
		}
	})
}

// FuzzLines compares whole lines in both formats with the reference formatters, for
// requests made of the fuzzer's strings and numbers.
func FuzzLines(f *testing.F) {
	f.Add("GET", "/a/b?x=1", "curl/8.11.0", "https://example.com/start", "example.com", "", int64(200), int64(5120), int64(12345678), true)
	f.Add("", "", "", "", "", "dial: \"refused\"", int64(0), int64(0), int64(-5), false)
	f.Add("G\x00T", "/\xff\u2028", "Grüße", "\"", "\\", "\n", int64(-1), int64(math.MaxInt64), int64(math.MinInt64), true)
	zones := []*time.Location{time.UTC, time.FixedZone("", -(5*3600 + 30*60))}
	f.Fuzz(func(t *testing.T, method, target, ua, ref, host, errText string, status, size, nanos int64, reused bool) {
		h := fields{"User-Agent", ua, "Referer", ref}
		r := &observe.Request{
			Service: host + "svc", Proto: "HTTP/1.1", Method: method, Target: target, Host: host,
			Client: ref, Header: &h, Start: start.Add(time.Duration(nanos % 1e15)),
			End: start.Add(time.Duration(nanos)), Status: int(status), UpstreamStatus: int(status / 7),
			Attempts: int(size % 1000), Upstream: ua, Reused: reused, Cache: method,
			BytesSent: size, BytesReceived: -size, FirstByte: start.Add(time.Duration(size)),
			ErrType: errText,
		}
		if errText != "" {
			r.Err = fmtError(errText)
		}
		for _, f := range []Format{Combined, JSON} {
			for _, loc := range zones {
				st := newStamps(loc)
				want := string(refLine(nil, f, r, st))
				if got := string(appendLine(nil, f, r, st)); got != want {
					t.Fatalf("%v line\n got %q\nwant %q", f, got, want)
				}
				if got := string(appendLine([]byte("x"), f, r, st)); got != "x"+want {
					t.Fatalf("%v line after a byte\n got %q\nwant %q", f, got, "x"+want)
				}
				// A buffer with room for the bound by the strings' lengths alone (as a
				// pooled one has); the ones above grow to the bound by their bytes.
				if got := string(appendLine(make([]byte, 0, 64<<10), f, r, st)); got != want {
					t.Fatalf("%v line in a roomy buffer\n got %q\nwant %q", f, got, want)
				}
			}
		}
	})
}

// fmtError is an error with a given text.
type fmtError string

func (e fmtError) Error() string { return string(e) }

// TestNumbers compares the integer and duration writers with strconv and the
// reference appendMillis.
func TestNumbers(t *testing.T) {
	ints := []int64{0, 1, -1, math.MaxInt64, math.MinInt64, math.MaxInt64 - 1, math.MinInt64 + 1}
	for p := int64(1); p <= 1e18; p *= 10 {
		ints = append(ints, p-1, p, p+1, -p, -(p - 1), 2*p, 5*p-1)
	}
	for n := range int64(1200) {
		ints = append(ints, n)
	}
	for _, n := range ints {
		d := make([]byte, maxInt)
		if got, want := string(d[:putInt(d, 0, n)]), strconv.FormatInt(n, 10); got != want {
			t.Errorf("putInt(%d) = %s, want %s", n, got, want)
		}
		if n > 0 {
			if got, want := string(d[:putPositive(d, 0, n)]), strconv.FormatInt(n, 10); got != want {
				t.Errorf("putPositive(%d) = %s, want %s", n, got, want)
			}
		}
		d = make([]byte, maxMillis)
		dur := time.Duration(n)
		if got, want := string(d[:putMillis(d, 0, dur)]), string(refMillis(nil, dur)); got != want {
			t.Errorf("putMillis(%d) = %s, want %s", n, got, want)
		}
	}
	d := make([]byte, 1)
	if got := string(d[:putPositive(d, 0, 0)]); got != "-" {
		t.Errorf("putPositive(0) = %s, want -", got)
	}
}

// TestLineBounds checks that a line with every string at its worst (each byte
// escaped to the longest form) fits the bound appendJSON and appendCombined grow to:
// formatted into a buffer with exactly that capacity, the buffer is not replaced.
func TestLineBounds(t *testing.T) {
	for _, worst := range []string{"\x01", "\xff", "\u2028", "é"} {
		s := strings.Repeat(worst, 40)
		h := fields{"User-Agent", s, "Referer", s}
		r := &observe.Request{
			Service: s, Proto: s, Method: s, Target: s, Host: s, Client: s, Header: &h,
			Start:  time.Date(2026, 12, 6, 21, 4, 5, 123456789, time.FixedZone("", -(13*3600+45*60))),
			Status: math.MinInt, UpstreamStatus: math.MinInt, Attempts: math.MinInt,
			Upstream: s, Cache: s, ErrType: s, Err: fmtError(s),
			BytesSent: math.MinInt64, BytesReceived: math.MinInt64,
			End: time.Date(2026, 12, 6, 21, 4, 5, 0, time.UTC).Add(math.MaxInt64),
		}
		for _, f := range []Format{Combined, JSON} {
			st := newStamps(r.Start.Location())
			want := refLine(nil, f, r, st)
			strs := 10 * len(s)
			bound := combinedFixed + combinedPerByte*strs
			if f == JSON {
				bound = jsonFixed + jsonPerByte*(strs+len(s)+len(s))
			}
			buf := make([]byte, 0, bound)
			got := appendLine(buf, f, r, st)
			if !bytes.Equal(got, want) {
				t.Fatalf("%v %q: line\n got %q\nwant %q", f, worst, got, want)
			}
			if &got[:1][0] != &buf[:1][0] {
				t.Errorf("%v %q: the line outgrew its bound of %d bytes (%d)", f, worst, bound, len(got))
			}
		}
	}
	// No strings (each "-" in the combined format), the longest numbers.
	for _, n := range []int64{math.MaxInt64, math.MinInt64} {
		r := &observe.Request{
			Start:  time.Date(2026, 12, 6, 21, 4, 5, 0, time.FixedZone("", -(13*3600+45*60))),
			Status: int(n), UpstreamStatus: int(n), Attempts: int(n), BytesSent: n, BytesReceived: n,
			End: time.Date(2026, 12, 6, 21, 4, 5, 0, time.UTC).Add(math.MaxInt64),
		}
		for f, bound := range map[Format]int{Combined: combinedFixed, JSON: jsonFixed} {
			st := newStamps(r.Start.Location())
			buf := make([]byte, 0, bound)
			got := appendLine(buf, f, r, st)
			if want := refLine(nil, f, r, st); !bytes.Equal(got, want) {
				t.Fatalf("%v %d: line\n got %q\nwant %q", f, n, got, want)
			}
			if &got[:1][0] != &buf[:1][0] {
				t.Errorf("%v %d: the line outgrew its bound of %d bytes (%d)", f, n, bound, len(got))
			}
		}
	}
}

// TestLoads checks the word loads against encoding/binary.
func TestLoads(t *testing.T) {
	const s = "\x01\x02\x03\x04\x05\x06\x07\x08\x09"
	if got, want := load64(s), binary.LittleEndian.Uint64([]byte(s)); got != want {
		t.Errorf("load64 = %#x, want %#x", got, want)
	}
	for n := range 8 {
		var want [8]byte
		copy(want[:], s[:n])
		if got := loadShort(s[:n]); got != binary.LittleEndian.Uint64(want[:]) {
			t.Errorf("loadShort(%d bytes) = %#x, want %#x", n, got, binary.LittleEndian.Uint64(want[:]))
		}
	}
}

// TestJSONStringsReadBack checks a few escaped strings with encoding/json, as a line's
// reader sees them.
func TestJSONStringsReadBack(t *testing.T) {
	for _, s := range escapeCases() {
		var got string
		if err := json.Unmarshal(appendJSONString(nil, s), &got); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if got != valid(s) {
			t.Errorf("%q reads back as %q, want %q", s, got, valid(s))
		}
	}
}

// TestLongLineAllocs: a line with long fields (a 4 KiB target, well within a pooled
// buffer's limit, though six times it is not) allocates nothing in steady state.
func TestLongLineAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop buffers")
	}
	for _, f := range []Format{Combined, JSON} {
		l, err := New(Options{Writer: io.Discard, Format: f})
		if err != nil {
			t.Fatal(err)
		}
		r := request()
		r.Target = "/search?q=" + strings.Repeat("abcdefgh", 512)
		if n := testing.AllocsPerRun(100, func() { l.RequestEnd(r) }); n != 0 {
			t.Errorf("%v: %v allocations per line, want 0", f, n)
		}
		l.Close()
	}
}

// TestLongLines compares long lines, bounded by their bytes to escape rather than by
// the length of their strings, with the reference formatters: grown from an empty
// buffer, and formatted in a buffer with exactly the room of that bound.
func TestLongLines(t *testing.T) {
	for _, unit := range []string{"plain/path", "\x01\"", "\xff", "\u2028", "é", "a\"b\\c\u2028d\xfee"} {
		s := strings.Repeat(unit, 4000/len(unit)+1)
		h := fields{"User-Agent", s, "Referer", unit}
		r := request()
		r.Target, r.Header, r.Err, r.Cache = s, &h, fmtError(unit), unit
		for _, f := range []Format{Combined, JSON} {
			st := newStamps(time.UTC)
			want := refLine(nil, f, r, st)
			if got := appendLine(nil, f, r, st); !bytes.Equal(got, want) {
				t.Fatalf("%v %q: line\n got %q\nwant %q", f, unit, got, want)
			}
			bound := combinedFixed
			strs := []string{r.Client, r.Method, r.Target, r.Proto, unit, s}
			perByte := combinedPerByte
			if f == JSON {
				bound, perByte = jsonFixed, jsonPerByte
				strs = append(strs, r.Service, r.Host, r.Upstream, r.Cache, unit, r.ErrType)
			}
			for _, s := range strs {
				bound += escapedLen(s, perByte)
			}
			buf := make([]byte, 0, bound)
			got := appendLine(buf, f, r, st)
			if !bytes.Equal(got, want) {
				t.Fatalf("%v %q: line in its bound\n got %q\nwant %q", f, unit, got, want)
			}
			if &got[:1][0] != &buf[:1][0] {
				t.Errorf("%v %q: the line outgrew its bound of %d bytes (%d)", f, unit, bound, len(got))
			}
		}
	}
}
