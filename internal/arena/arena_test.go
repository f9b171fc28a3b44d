package arena

import (
	"bytes"
	"testing"
)

func TestStringsStayValid(t *testing.T) {
	var a Arena
	src := []byte("hello")
	s1 := a.String(src)
	copy(src, "XXXXX")
	s2 := a.String(src)
	if s1 != "hello" || s2 != "XXXXX" {
		t.Fatalf("got %q %q", s1, s2)
	}
	// Fill past a chunk: earlier strings must not change.
	big := bytes.Repeat([]byte("a"), 1000)
	var keep []string
	for range 200 {
		keep = append(keep, a.String(big))
	}
	if s1 != "hello" {
		t.Fatalf("s1 changed: %q", s1)
	}
	for _, s := range keep {
		if s != string(big) {
			t.Fatal("string changed")
		}
	}
	if got := a.String(bytes.Repeat([]byte("b"), DefaultChunk)); len(got) != DefaultChunk {
		t.Fatal("large string")
	}
	if a.String(nil) != "" {
		t.Fatal("empty")
	}
}

func TestAmortisedAllocs(t *testing.T) {
	var a Arena
	b := []byte("Content-Type: text/plain")
	allocs := testing.AllocsPerRun(1000, func() { _ = a.String(b) })
	if allocs > 0.01 {
		t.Fatalf("allocs per string = %v", allocs)
	}
}

func BenchmarkString(b *testing.B) {
	var a Arena
	src := []byte("application/json; charset=utf-8")
	b.ReportAllocs()
	for b.Loop() {
		_ = a.String(src)
	}
}
