package accesslog

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/observe"
)

func TestCombinedLines(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	tests := []struct {
		name string
		loc  *time.Location
		edit func(r *observe.Request)
		want string
	}{
		{
			name: "proxied GET",
			want: `192.0.2.7 - - [06/Dec/2026:21:04:05 +0000] "GET /a/b?x=1 HTTP/1.1" 200 5120 "https://example.com/start" "curl/8.11.0"` + "\n",
		},
		{
			name: "local time zone",
			loc:  cet,
			want: `192.0.2.7 - - [06/Dec/2026:22:04:05 +0100] "GET /a/b?x=1 HTTP/1.1" 200 5120 "https://example.com/start" "curl/8.11.0"` + "\n",
		},
		{
			name: "HTTP/2, no body, no referer or user agent, IPv6 client",
			edit: func(r *observe.Request) {
				r.Proto, r.Method, r.Target, r.Client = "HTTP/2", "HEAD", "/", "2001:db8::1"
				r.BytesSent, r.Status = 0, 304
				r.Header = &fields{"Host", "example.com"}
			},
			want: `2001:db8::1 - - [06/Dec/2026:21:04:05 +0000] "HEAD / HTTP/2" 304 - "-" "-"` + "\n",
		},
		{
			name: "quotes and backslashes",
			edit: func(r *observe.Request) {
				r.Header = &fields{"User-Agent", `Mozilla "quoted" \ back`, "Referer", `"`}
			},
			want: `192.0.2.7 - - [06/Dec/2026:21:04:05 +0000] "GET /a/b?x=1 HTTP/1.1" 200 5120 "\x22" "Mozilla \x22quoted\x22 \x5C back"` + "\n",
		},
		{
			name: "control bytes, DEL, UTF-8 and invalid bytes",
			edit: func(r *observe.Request) {
				r.Target = "/a\x01b\tc\x7f"
				r.Header = &fields{"User-Agent", "Grüße \xff", "Referer", "x\r\ny"}
			},
			want: `192.0.2.7 - - [06/Dec/2026:21:04:05 +0000] "GET /a\x01b\x09c\x7F HTTP/1.1" 200 5120 "x\x0D\x0Ay" "Gr\xC3\xBC\xC3\x9Fe \xFF"` + "\n",
		},
		{
			name: "no status: the client left before one was sent",
			edit: func(r *observe.Request) { r.Status, r.BytesSent = 0, 0 },
			want: `192.0.2.7 - - [06/Dec/2026:21:04:05 +0000] "GET /a/b?x=1 HTTP/1.1" - - "https://example.com/start" "curl/8.11.0"` + "\n",
		},
		{
			name: "empty request",
			edit: func(r *observe.Request) { *r = observe.Request{} },
			want: `- - - [01/Jan/0001:00:00:00 +0000] "-" - - "-" "-"` + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := request()
			if tt.edit != nil {
				tt.edit(r)
			}
			loc := tt.loc
			if loc == nil {
				loc = time.UTC
			}
			got := string(appendLine(nil, Combined, r, newStamps(loc)))
			if got != tt.want {
				t.Errorf("line\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestJSONLines(t *testing.T) {
	tests := []struct {
		name string
		loc  *time.Location
		edit func(r *observe.Request)
		want string
	}{
		{
			name: "proxied GET",
			want: `{"time":"2026-12-06T21:04:05.123Z","service":"gateway","client":"192.0.2.7","method":"GET","target":"/a/b?x=1","proto":"HTTP/1.1","host":"example.com","status":200,"upstream_status":200,"upstream":"10.0.0.7:8080","bytes_sent":5120,"bytes_received":17,"duration_ms":12.345,"ttfb_ms":3.456,"attempts":1,"reused":true,"cache":"","error":"","error_type":"","user_agent":"curl/8.11.0","referer":"https://example.com/start"}` + "\n",
		},
		{
			name: "failed after a retry, in another time zone",
			loc:  time.FixedZone("", -5*3600-30*60),
			edit: func(r *observe.Request) {
				r.Status, r.UpstreamStatus, r.Attempts, r.Reused = 502, 0, 2, false
				r.BytesSent, r.BytesReceived = 0, 0
				r.FirstByte = time.Time{}
				r.End = start.Add(2 * time.Second)
				r.Err, r.ErrType, r.ErrSource = errors.New(`dial tcp 10.0.0.7:8080: "connection refused"`), "ConnectRefused", "upstream"
			},
			want: `{"time":"2026-12-06T15:34:05.123-05:30","service":"gateway","client":"192.0.2.7","method":"GET","target":"/a/b?x=1","proto":"HTTP/1.1","host":"example.com","status":502,"upstream_status":0,"upstream":"10.0.0.7:8080","bytes_sent":0,"bytes_received":0,"duration_ms":2000.000,"ttfb_ms":0.000,"attempts":2,"reused":false,"cache":"","error":"dial tcp 10.0.0.7:8080: \"connection refused\"","error_type":"ConnectRefused","user_agent":"curl/8.11.0","referer":"https://example.com/start"}` + "\n",
		},
		{
			name: "escapes",
			edit: func(r *observe.Request) {
				r.Target = "/a\x01b\tc\x7f\"\\"
				r.Header = &fields{"User-Agent", "Grüße \xff\xfe \u2028", "Referer", "x\r\ny\b\f"}
			},
			want: `{"time":"2026-12-06T21:04:05.123Z","service":"gateway","client":"192.0.2.7","method":"GET","target":"/a\u0001b\tc\u007f\"\\","proto":"HTTP/1.1","host":"example.com","status":200,"upstream_status":200,"upstream":"10.0.0.7:8080","bytes_sent":5120,"bytes_received":17,"duration_ms":12.345,"ttfb_ms":3.456,"attempts":1,"reused":true,"cache":"","error":"","error_type":"","user_agent":"Grüße \ufffd\ufffd \u2028","referer":"x\r\ny\b\f"}` + "\n",
		},
		{
			name: "empty request",
			edit: func(r *observe.Request) { *r = observe.Request{} },
			want: `{"time":"0001-01-01T00:00:00.000Z","service":"","client":"","method":"","target":"","proto":"","host":"","status":0,"upstream_status":0,"upstream":"","bytes_sent":0,"bytes_received":0,"duration_ms":0.000,"ttfb_ms":0.000,"attempts":0,"reused":false,"cache":"","error":"","error_type":"","user_agent":"","referer":""}` + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := request()
			if tt.edit != nil {
				tt.edit(r)
			}
			loc := tt.loc
			if loc == nil {
				loc = time.UTC
			}
			got := string(appendLine(nil, JSON, r, newStamps(loc)))
			if got != tt.want {
				t.Errorf("line\n got %s\nwant %s", got, tt.want)
			}
			checkJSONLine(t, got, r)
		})
	}
}

// checkJSONLine checks that line is one JSON object, ending in a newline, whose fields
// are r's as encoding/json reads them.
func checkJSONLine(t *testing.T, line string, r *observe.Request) {
	t.Helper()
	if !strings.HasSuffix(line, "\n") || strings.Count(line, "\n") != 1 {
		t.Fatalf("line %q is not one line", line)
	}
	var got JSONLine[time.Time]
	dec := json.NewDecoder(strings.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("encoding/json cannot read %s: %v", line, err)
	}
	errText := ""
	if r.Err != nil {
		errText = r.Err.Error()
	}
	for _, c := range []struct {
		field     string
		got, want any
	}{
		{"time", got.Time.UnixMilli(), r.Start.UnixMilli()},
		{"service", got.Service, valid(r.Service)},
		{"client", got.Client, valid(r.Client)},
		{"method", got.Method, valid(r.Method)},
		{"target", got.Target, valid(r.Target)},
		{"proto", got.Proto, valid(r.Proto)},
		{"host", got.Host, valid(r.Host)},
		{"status", got.Status, r.Status},
		{"upstream_status", got.UpstreamStatus, r.UpstreamStatus},
		{"upstream", got.Upstream, valid(r.Upstream)},
		{"bytes_sent", got.BytesSent, r.BytesSent},
		{"bytes_received", got.BytesReceived, r.BytesReceived},
		{"duration_ms", got.DurationMS, float64(max(r.Duration().Microseconds(), 0)) / 1000},
		{"ttfb_ms", got.TTFBMS, float64(r.TTFB().Microseconds()) / 1000},
		{"attempts", got.Attempts, r.Attempts},
		{"reused", got.Reused, r.Reused},
		{"cache", got.Cache, r.Cache},
		{"error", got.Error, valid(errText)},
		{"error_type", got.ErrorType, valid(r.ErrType)},
		{"user_agent", got.UserAgent, valid(header(r, "User-Agent"))},
		{"referer", got.Referer, valid(header(r, "Referer"))},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.field, c.got, c.want)
		}
	}
}

// valid returns s with each byte that is not part of valid UTF-8 replaced by U+FFFD,
// as encoding/json decodes it.
func valid(s string) string {
	var out strings.Builder
	for _, r := range s {
		out.WriteRune(r) // ranging yields U+FFFD for each invalid byte
	}
	return out.String()
}

// TestJSONStringAsEncodingJSON checks that encoding/json reads every string back as it
// reads its own encoding of the string.
func TestJSONStringAsEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", `"`, `\`, "\x00\x1f\x7f", "\n\r\t\b\f", "é€😀", "\xff", "\xc3", "a\xc3(b",
		"\xed\xa0\x80", // an encoded surrogate: invalid UTF-8
		"\u2028\u2029", "<script>&", "\xef\xbf\xbd",
	} {
		checkJSONString(t, s)
	}
}

func checkJSONString(t *testing.T, s string) {
	t.Helper()
	enc := appendJSONString(nil, s)
	var got string
	if err := json.Unmarshal(enc, &got); err != nil {
		t.Fatalf("encoding/json cannot read %s (from %q): %v", enc, s, err)
	}
	ref, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var want string
	if err := json.Unmarshal(ref, &want); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("%q encoded as %s reads back as %q; encoding/json reads its own as %q", s, enc, got, want)
	}
	for _, c := range enc {
		if c < 0x20 || c == 0x7f {
			t.Errorf("%q encoded as %q holds the control byte %#x", s, enc, c)
		}
	}
}

func FuzzJSONString(f *testing.F) {
	for _, s := range []string{"", "a\"b\\c", "\x00\x7f\n", "é\xff", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkJSONString(t, s) })
}

// unescapeCLF reverses appendEscaped.
func unescapeCLF(t *testing.T, s string) string {
	t.Helper()
	var out strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			out.WriteByte(s[i])
			continue
		}
		if i+3 >= len(s) || s[i+1] != 'x' {
			t.Fatalf("bad escape in %q at %d", s, i)
		}
		var c byte
		for _, h := range []byte{s[i+2], s[i+3]} {
			j := strings.IndexByte(hexUpper, h)
			if j < 0 {
				t.Fatalf("bad hex digit in %q at %d", s, i)
			}
			c = c<<4 | byte(j)
		}
		out.WriteByte(c)
		i += 3
	}
	return out.String()
}

func FuzzCombinedEscape(f *testing.F) {
	for _, s := range []string{"", `a"b\c`, "\x00\x7f\n", "é\xff", "\\x41"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := string(appendEscaped(nil, s))
		for i := 0; i < len(enc); i++ {
			if c := enc[i]; c < 0x20 || c >= 0x7f || c == '"' {
				t.Fatalf("%q escaped as %q holds %#x", s, enc, c)
			}
		}
		if got := unescapeCLF(t, enc); got != s {
			t.Fatalf("%q escaped as %q unescapes to %q", s, enc, got)
		}
	})
}

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in   string
		want Format
		err  bool
	}{
		{"combined", Combined, false},
		{"JSON", JSON, false},
		{"Combined", Combined, false},
		{"json", JSON, false},
		{"", 0, true},
		{"common", 0, true},
		{"jsonl", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseFormat(tt.in)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("ParseFormat(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.err)
		}
		if err != nil && !errors.Is(err, ErrUnknownFormat) {
			t.Errorf("ParseFormat(%q) error %v is not ErrUnknownFormat", tt.in, err)
		}
		if err == nil && got.String() != strings.ToLower(tt.in) {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
}

// TestTimeFormats compares the hand-written time formats with time.Time.AppendFormat.
func TestTimeFormats(t *testing.T) {
	zones := []*time.Location{
		time.UTC, time.FixedZone("", 3600), time.FixedZone("", -(5*3600 + 30*60)),
		time.FixedZone("", 13*3600+45*60), time.FixedZone("", -30), time.FixedZone("", 59),
	}
	if ny, err := time.LoadLocation("America/New_York"); err == nil {
		zones = append(zones, ny)
	}
	times := []time.Time{
		{}, start, time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2024, 2, 29, 0, 0, 0, 1_000_000, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for i := range 1000 {
		times = append(times, time.Unix(int64(i)*7_777_777, int64(i)*1_234_567))
	}
	for _, tm := range times {
		for _, z := range zones {
			tz := tm.In(z)
			if got, want := string(appendCLFTime(nil, tz)), tz.Format(clfTime); got != want {
				t.Errorf("CLF time of %v: %s, want %s", tz, got, want)
			}
			if got, want := string(appendJSONTime(nil, tz)), tz.Format(jsonTime); got != want {
				t.Errorf("JSON time of %v: %s, want %s", tz, got, want)
			}
		}
	}
}

// TestStampsReuse checks the stamps a logger reuses within a second against
// AppendFormat: the same second with other milliseconds, the next second, a second
// back, and a zone's change of offset between two seconds.
func TestStampsReuse(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		ny = time.FixedZone("EST", -5*3600)
	}
	// 2026-03-08 06:59:59 UTC is 01:59:59 EST; a second later it is 03:00:00 EDT.
	base := time.Date(2026, 3, 8, 6, 59, 59, 0, time.UTC)
	steps := []time.Duration{0, 123 * time.Millisecond, 999 * time.Millisecond, time.Second, 1500 * time.Millisecond, -2 * time.Second, 3 * time.Second}
	for _, loc := range []*time.Location{time.UTC, ny, time.FixedZone("", 5*3600+30*60)} {
		js, clf := newStamps(loc), newStamps(loc)
		for _, d := range steps {
			at := base.Add(d)
			if got, want := string(js.appendJSON(nil, at)), at.In(loc).Format(jsonTime); got != want {
				t.Errorf("%v %v: JSON stamp %q, want %q", loc, d, got, want)
			}
			if got, want := string(clf.appendCLF(nil, at)), at.In(loc).Format(clfTime); got != want {
				t.Errorf("%v %v: CLF stamp %q, want %q", loc, d, got, want)
			}
		}
	}
}
