package ascii

import "testing"

func TestEqualFoldLower(t *testing.T) {
	tests := []struct {
		s, lower string
		want     bool
	}{
		{"Connection", "connection", true},
		{"CONNECTION", "connection", true},
		{"connection", "connection", true},
		{"Connectio", "connection", false},
		{"Connection2", "connection", false},
		{"Conne\xc3\xa7tion", "connection", false},
		{"", "", true},
		{"[", "{", false}, // '[' is not 'Z'+1 folded
		{"@", "`", false},
	}
	for _, tt := range tests {
		if got := EqualFoldLower(tt.s, tt.lower); got != tt.want {
			t.Errorf("EqualFoldLower(%q, %q) = %v", tt.s, tt.lower, got)
		}
		if got := EqualFoldLower([]byte(tt.s), tt.lower); got != tt.want {
			t.Errorf("EqualFoldLower([]byte(%q), %q) = %v", tt.s, tt.lower, got)
		}
	}
}
