package cache

import (
	"testing"
)

// TestVarianceKey: RFC 9111 §4.1, selecting a stored response by the request fields
// its Vary names.
func TestVarianceKey(t *testing.T) {
	tests := []struct {
		name      string
		vary      []string // the stored response's Vary lines
		a, b      []string // two requests' fields
		wantMatch bool
	}{
		{"§4.1 no Vary: every request matches", nil, []string{"Accept: a"}, []string{"Accept: b"}, true},
		{"§4.1 same value matches", []string{"Vary: Accept-Encoding"}, []string{"Accept-Encoding: gzip"}, []string{"Accept-Encoding: gzip"}, true},
		{"§4.1 different value does not match", []string{"Vary: Accept-Encoding"}, []string{"Accept-Encoding: gzip"}, []string{"Accept-Encoding: br"}, false},
		{"§4.1 field names case-insensitive", []string{"Vary: accept-encoding"}, []string{"ACCEPT-ENCODING: gzip"}, []string{"Accept-Encoding: gzip"}, true},
		{"§4.1 whitespace around commas normalised", []string{"Vary: Accept-Encoding"}, []string{"Accept-Encoding: gzip,br"}, []string{"Accept-Encoding:  gzip ,  br "}, true},
		{"§4.1 several lines combined like one list", []string{"Vary: Accept-Encoding"}, []string{"Accept-Encoding: gzip, br"}, []string{"Accept-Encoding: gzip", "Accept-Encoding: br"}, true},
		{"§4.1 list order is significant", []string{"Vary: Accept-Encoding"}, []string{"Accept-Encoding: gzip, br"}, []string{"Accept-Encoding: br, gzip"}, false},
		{"§4.1 whitespace runs inside a member collapsed", []string{"Vary: Accept"}, []string{"Accept: text/html;  q=0.9"}, []string{"Accept: text/html; q=0.9"}, true},
		{"§4.1 empty list members dropped", []string{"Vary: Accept"}, []string{"Accept: a,,b"}, []string{"Accept: a, b"}, true},
		{"§4.1 whitespace in a quoted string kept", []string{"Vary: X"}, []string{`X: "a  b"`}, []string{`X: "a b"`}, false},
		{"§4.1 comma in a quoted string is not a separator", []string{"Vary: X"}, []string{`X: "a, b"`}, []string{`X: "a,b"`}, false},
		{"§4.1 several fields, different spacing and order in Vary", []string{"Vary: Accept-Encoding , Accept-Language"},
			[]string{"Accept-Language: en", "Accept-Encoding: gzip"}, []string{"Accept-Encoding: gzip", "Accept-Language: en"}, true},
		{"§4.1 several fields, one differs", []string{"Vary: Accept-Encoding, Accept-Language"},
			[]string{"Accept-Language: en", "Accept-Encoding: gzip"}, []string{"Accept-Encoding: gzip", "Accept-Language: fr"}, false},
		{"§4.1 absent matches absent", []string{"Vary: Origin"}, []string{"Accept: a"}, nil, true},
		{"§4.1 absent does not match empty", []string{"Vary: Origin"}, []string{"Origin:"}, nil, false},
		{"§4.1 absent does not match present", []string{"Vary: Origin"}, []string{"Origin: https://a.example"}, nil, false},
		{"§4.1 values are case-sensitive", []string{"Vary: X"}, []string{"X: A"}, []string{"X: a"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := newResp(t, 200, tt.vary...)
			ka, ok1 := VarianceKey(nil, newReq(t, "GET", tt.a...), resp)
			kb, ok2 := VarianceKey(nil, newReq(t, "GET", tt.b...), resp)
			if !ok1 || !ok2 {
				t.Fatal("VarianceKey reported no match")
			}
			if got := string(ka) == string(kb); got != tt.wantMatch {
				t.Errorf("keys %q and %q: match %v, want %v", ka, kb, got, tt.wantMatch)
			}
		})
	}
}

// TestVarianceKeyForm: RFC 9111 §4.1, the key's form and the responses that never
// match.
func TestVarianceKeyForm(t *testing.T) {
	tests := []struct {
		name   string
		vary   []string
		req    []string
		want   string
		wantOK bool
	}{
		{"§4.1 names lowercased, sorted, deduplicated", []string{"Vary: X-B, x-a", "Vary: X-A"}, []string{"x-a: 1", "X-B: 2"}, "x-a:1\nx-b:2\n", true},
		{"§4.1 Vary: * never matches", []string{"Vary: Accept, *"}, nil, "", false},
		{"§4.1 Vary: * on its own line never matches", []string{"Vary: Accept", "Vary: *"}, nil, "", false},
		{"§4.1 empty Vary: empty key", []string{"Vary: "}, []string{"Accept: a"}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, ok := VarianceKey([]byte("primary|"), newReq(t, "GET", tt.req...), newResp(t, 200, tt.vary...))
			if ok != tt.wantOK || string(k) != "primary|"+tt.want {
				t.Errorf("VarianceKey = %q, %v; want %q, %v", k, ok, "primary|"+tt.want, tt.wantOK)
			}
		})
	}
	t.Run("§4.1 more than 32 names treated like *", func(t *testing.T) {
		resp := newResp(t, 200)
		for i := range 33 {
			resp.Header.Add("Vary", "X-"+string(rune('A'+i%26))+string(rune('a'+i/26)))
		}
		if _, ok := VarianceKey(nil, newReq(t, "GET"), resp); ok {
			t.Error("33 names accepted")
		}
	})
}

// TestHasVary: RFC 9111 §4.1, whether a response varies at all.
func TestHasVary(t *testing.T) {
	tests := []struct {
		name string
		resp []string
		want bool
	}{
		{"§4.1 no Vary", []string{"Content-Type: text/plain"}, false},
		{"§4.1 Vary with a name", []string{"vary: Accept"}, true},
		{"§4.1 Vary: *", []string{"Vary: *"}, true},
		{"§4.1 empty Vary lists nothing", []string{"Vary: ", "Vary: , ,"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HasVary(newResp(t, 200, tt.resp...)); got != tt.want {
				t.Errorf("HasVary = %v, want %v", got, tt.want)
			}
		})
	}
}

func BenchmarkVarianceKey(b *testing.B) {
	req := newReq(b, "GET", "User-Agent: curl/8", "Accept: */*", "Accept-Encoding: gzip, br", "Accept-Language: en")
	resp := newResp(b, 200, "Vary: Accept-Encoding, Accept-Language")
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := VarianceKey(buf[:0], req, resp); !ok {
			b.Fatal("no key")
		}
	}
}
