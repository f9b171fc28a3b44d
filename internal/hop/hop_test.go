package hop

import (
	"strings"
	"testing"
)

func TestField(t *testing.T) {
	for _, tt := range []struct {
		name      string
		field, te bool
	}{
		{"Connection", true, false},
		{"connection", true, false},
		{"PROXY-CONNECTION", true, false},
		{"Keep-Alive", true, false},
		{"Transfer-Encoding", true, false},
		{"upgrade", true, false},
		{"TE", false, true},
		{"te", false, true},
		{"Trailer", false, false},
		{"Content-Length", false, false},
		{"Connectiom", false, false},
		{"Keep_Alive", false, false},
		{"", false, false},
	} {
		if got := Field(tt.name); got != tt.field {
			t.Errorf("Field(%q) = %v, want %v", tt.name, got, tt.field)
		}
		if got := Field([]byte(tt.name)); got != tt.field {
			t.Errorf("Field([]byte(%q)) = %v, want %v", tt.name, got, tt.field)
		}
		if got := TE(tt.name); got != tt.te {
			t.Errorf("TE(%q) = %v, want %v", tt.name, got, tt.te)
		}
	}
}

// TestFieldEveryCase checks every case variant of each field, and that no other byte in
// any position matches.
func TestFieldEveryCase(t *testing.T) {
	for _, name := range []string{"connection", "proxy-connection", "keep-alive", "transfer-encoding", "upgrade"} {
		b := []byte(name)
		for i := range b {
			orig := b[i]
			for c := range 256 {
				b[i] = byte(c)
				want := strings.EqualFold(string(b), name) && (c < 0x80)
				if got := Field(b); got != want {
					t.Fatalf("Field(%q) = %v, want %v", b, got, want)
				}
			}
			b[i] = orig
		}
	}
}

func BenchmarkField(b *testing.B) {
	names := [][]byte{[]byte("Host"), []byte("User-Agent"), []byte("Accept"), []byte("Connection"), []byte("Content-Length")}
	n := 0
	for b.Loop() {
		for _, name := range names {
			if Field(name) {
				n++
			}
		}
	}
	_ = n
}
