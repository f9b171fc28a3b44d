package proxy

import (
	"testing"
	"unsafe"

	"github.com/gotthard-proxy/gotthard/internal/arena"
)

// TestIntern checks that every common field name comes back as the constant itself,
// with no copy in the arena, and that other names are copied intact.
func TestIntern(t *testing.T) {
	var a arena.Arena
	for _, name := range commonNames {
		got := intern([]byte(name), &a)
		if got != name || unsafe.StringData(got) != unsafe.StringData(name) {
			t.Errorf("intern(%q) = %q, not the constant", name, got)
		}
	}
	for _, name := range []string{"HOST", "X-Custom", "x", "A-Field-Name-Longer-Than-Any-Common-One"} {
		b := []byte(name)
		got := intern(b, &a)
		b[0] = '#' // the interned copy must not alias the input
		if got != name {
			t.Errorf("intern(%q) = %q", name, got)
		}
	}
}
