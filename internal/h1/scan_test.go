package h1

import (
	"math/rand/v2"
	"testing"
)

// The word-at-a-time scanners against the byte-at-a-time definitions they replace.

func refBadValueByte(v []byte) int {
	for i, c := range v {
		if charClass[c]&cValue == 0 {
			return i
		}
	}
	return -1
}

func refRun(s []byte, class uint8) int {
	for i, c := range s {
		if charClass[c]&class == 0 {
			return i
		}
	}
	return len(s)
}

func checkScanners(t *testing.T, b []byte) {
	t.Helper()
	if got, want := badValueByte(b), refBadValueByte(b); got != want {
		t.Fatalf("badValueByte(%q) = %d, want %d", b, got, want)
	}
	if got, want := badValueByte(string(b)), refBadValueByte(b); got != want {
		t.Fatalf("badValueByte(string %q) = %d, want %d", b, got, want)
	}
	if got, want := vcharLen(b), refRun(b, cVchar); got != want {
		t.Fatalf("vcharLen(%q) = %d, want %d", b, got, want)
	}
	if got, want := tokenLen(string(b)), refRun(b, cToken); got != want {
		t.Fatalf("tokenLen(%q) = %d, want %d", b, got, want)
	}
}

// TestScannersEveryByte puts each of the 256 byte values at each position of runs of
// otherwise valid bytes of every length up to 24, so every byte meets every position in
// a word and in the tail.
func TestScannersEveryByte(t *testing.T) {
	for n := 1; n <= 24; n++ {
		for pos := 0; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				for _, fill := range []byte{'a', '~', ' ', 0x80} {
					b := make([]byte, n)
					for i := range b {
						b[i] = fill
					}
					b[pos] = byte(c)
					checkScanners(t, b)
				}
			}
		}
	}
}

// TestScannersRandom checks random strings over bytes near the classes' edges.
func TestScannersRandom(t *testing.T) {
	edges := []byte{0x00, 0x08, 0x09, 0x0a, 0x0d, 0x1f, 0x20, 0x21, 0x22, 0x2c, 0x3a, 0x7e, 0x7f, 0x80, 0xff, 'a', 'Z', '0', '-'}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			if r.IntN(8) == 0 {
				b[i] = edges[r.IntN(len(edges))]
			} else {
				b[i] = 'a' + byte(r.IntN(26))
			}
		}
		checkScanners(t, b)
	}
}

func BenchmarkValidateFields(b *testing.B) {
	names := []string{"Host", "X-Forwarded-For", "X-Forwarded-Proto", "Content-Type", "Content-Length"}
	values := []string{"127.0.0.1:19502", "127.0.0.1", "http", "application/octet-stream", "1024"}
	for b.Loop() {
		for i := range names {
			if !ValidFieldName(names[i]) || !ValidFieldValue(values[i]) {
				b.Fatal("invalid")
			}
		}
	}
}
