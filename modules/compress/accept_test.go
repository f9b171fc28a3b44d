package compress

import (
	"strings"
	"testing"
)

func TestNegotiate(t *testing.T) {
	def := []Coding{Zstd, Brotli, Gzip}
	tests := []struct {
		name   string
		values []string // nil: no Accept-Encoding field
		prefs  []Coding
		want   Coding
	}{
		{"no field", nil, def, Identity},
		{"empty field", []string{""}, def, Identity},
		{"gzip only", []string{"gzip"}, def, Gzip},
		{"x-gzip", []string{"x-gzip"}, def, Gzip},
		{"browser, server order wins ties", []string{"gzip, deflate, br, zstd"}, def, Zstd},
		{"browser without zstd", []string{"gzip, deflate, br"}, def, Brotli},
		{"client weight beats server order", []string{"zstd;q=0.5, br;q=0.8, gzip;q=0.9"}, def, Gzip},
		{"q=0 refuses", []string{"gzip;q=0, br"}, def, Brotli},
		{"q=0 refuses all", []string{"gzip;q=0, br;q=0.000, zstd;q=0"}, def, Identity},
		{"star counts", []string{"*"}, def, Zstd},
		{"star with refusal", []string{"*, zstd;q=0"}, def, Brotli},
		{"star q=0 and a named coding", []string{"*;q=0, gzip"}, def, Gzip},
		{"star zero only", []string{"*;q=0"}, def, Identity},
		{"identity preferred explicitly", []string{"gzip;q=0.5, identity"}, def, Identity},
		{"identity equal weight: a coding", []string{"gzip, identity"}, def, Gzip},
		{"identity refused", []string{"identity;q=0, gzip;q=0.2"}, def, Gzip},
		{"case and spaces", []string{" GZip ; Q=0.7 ,\tBR;q=0.7 "}, def, Brotli},
		{"two fields", []string{"br;q=0.1", "gzip;q=0.2"}, def, Gzip},
		{"same coding twice: better weight", []string{"gzip;q=0, gzip;q=0.5"}, def, Gzip},
		{"bad q ignored", []string{"br;q=2, gzip;q=abc, zstd;q=0.1234, deflate"}, def, Identity},
		{"q=1.000", []string{"gzip;q=1.000"}, def, Gzip},
		{"other parameters ignored", []string{"gzip;level=9;q=0.5"}, def, Gzip},
		{"unknown coding only", []string{"compress, deflate"}, def, Identity},
		{"server without br", []string{"br, gzip;q=0.9"}, []Coding{Gzip}, Gzip},
		{"server prefers gzip", []string{"gzip, br, zstd"}, []Coding{Gzip, Brotli, Zstd}, Gzip},
		{"empty elements", []string{",, ,gzip,"}, def, Gzip},
		{"not a token", []string{"gz\"ip, br"}, def, Brotli},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := ParseAcceptEncoding(tt.values...)
			if got := a.Negotiate(tt.prefs); got != tt.want {
				t.Errorf("Accept-Encoding %q: got %v, want %v", tt.values, got, tt.want)
			}
		})
	}
}

func TestAcceptQ(t *testing.T) {
	a := ParseAcceptEncoding("gzip;q=0.25, *;q=0.5")
	for c, want := range map[Coding]int{Gzip: 250, Brotli: 500, Zstd: 500, Identity: 500} {
		if got := a.Q(c); got != want {
			t.Errorf("Q(%v) = %d, want %d", c, got, want)
		}
	}
	if !a.Present() || ParseAcceptEncoding().Present() {
		t.Error("Present is wrong")
	}
	if q := ParseAcceptEncoding("identity;q=0").Q(Identity); q != 0 {
		t.Errorf("identity;q=0: Q(identity) = %d", q)
	}
}

func TestParseAcceptEncodingAllocs(t *testing.T) {
	v := "gzip;q=0.8, deflate, br;q=1.0, zstd, *;q=0"
	if n := testing.AllocsPerRun(100, func() { ParseAcceptEncoding(v) }); n != 0 {
		t.Errorf("ParseAcceptEncoding allocates %v times", n)
	}
}

func FuzzParseAcceptEncoding(f *testing.F) {
	for _, s := range []string{"", "gzip", "gzip, deflate, br, zstd", "br;q=0.5, *;q=0", "identity;q=0",
		"gzip;q=1.000", "x-gzip;q=0.001", " ,;=, ", "*;q=", "gzip;q=1.0001", "br;level=3;q=0.2"} {
		f.Add(s)
	}
	prefs := []Coding{Zstd, Brotli, Gzip}
	f.Fuzz(func(t *testing.T, v string) {
		a := ParseAcceptEncoding(v)
		c := a.Negotiate(prefs)
		for _, x := range []Coding{Identity, Zstd, Brotli, Gzip} {
			if q := a.Q(x); q < 0 || q > 1000 {
				t.Fatalf("%q: Q(%v) = %d", v, x, q)
			}
		}
		if c != Identity {
			if a.Q(c) == 0 {
				t.Fatalf("%q: chose %v, which the client refuses", v, c)
			}
			for _, x := range prefs {
				if a.Q(x) > a.Q(c) {
					t.Fatalf("%q: chose %v (q %d) over %v (q %d)", v, c, a.Q(c), x, a.Q(x))
				}
			}
		}
		// A name this parser takes appears in the value, whatever its case.
		if c != Identity && !strings.Contains(strings.ToLower(v), c.String()) && !strings.Contains(v, "*") {
			t.Fatalf("%q: chose %v, which it does not name", v, c)
		}
	})
}
