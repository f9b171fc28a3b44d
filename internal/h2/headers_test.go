package h2

import "testing"

func TestParseContentLength(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int64
		isOK bool
	}{
		{"0", 0, true}, {"1024", 1024, true}, {"007", 7, true},
		{"999999999999999999", 999999999999999999, true},
		{"", 0, false}, {"-1", 0, false}, {"+5", 0, false}, {"5 ", 0, false}, {"5,5", 0, false},
		{"1e3", 0, false}, {"9999999999999999999", 0, false},
	} {
		n, ok := ParseContentLength(tc.in)
		if n != tc.n || ok != tc.isOK {
			t.Errorf("ParseContentLength(%q) = %d, %v; want %d, %v", tc.in, n, ok, tc.n, tc.isOK)
		}
	}
}
