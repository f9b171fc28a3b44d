package disk

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// BenchmarkLookup measures a hit: Lookup, reading the whole body with ReadAt into a
// reused buffer, and Close.
func BenchmarkLookup(b *testing.B) {
	for _, bc := range []struct {
		name string
		size int
	}{
		{"1KiB", 1 << 10},
		{"1MiB", 1 << 20},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := open(b, b.TempDir(), Options{MaxBytes: 64 << 20, MaxObjectBytes: 2 << 20})
			const key = "https://example.com/static/app.js"
			put(b, s, key, 1, bc.size)
			buf := make([]byte, 256<<10)
			b.SetBytes(int64(bc.size))
			b.ReportAllocs()
			for b.Loop() {
				obj, err := s.Lookup(key)
				if err != nil {
					b.Fatal(err)
				}
				var off int64
				for {
					n, err := obj.ReadAt(buf, off)
					off += int64(n)
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				if off != int64(bc.size) {
					b.Fatalf("read %d bytes, want %d", off, bc.size)
				}
				obj.Close()
			}
		})
	}
}

// BenchmarkOSFile is the floor BenchmarkLookup is measured against: os.Open, ReadAt
// of the whole file and Close, with no store.
func BenchmarkOSFile(b *testing.B) {
	for _, bc := range []struct {
		name string
		size int
	}{
		{"1KiB", 1 << 10},
		{"1MiB", 1 << 20},
	} {
		b.Run(bc.name, func(b *testing.B) {
			name := filepath.Join(b.TempDir(), "f")
			if err := os.WriteFile(name, body("f", 1, bc.size), 0o600); err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 256<<10)
			b.SetBytes(int64(bc.size))
			b.ReportAllocs()
			for b.Loop() {
				f, err := os.Open(name)
				if err != nil {
					b.Fatal(err)
				}
				var off int64
				for {
					n, err := f.ReadAt(buf, off)
					off += int64(n)
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				f.Close()
			}
		})
	}
}

// BenchmarkMiss measures a lookup of an absent key.
func BenchmarkMiss(b *testing.B) {
	s := open(b, b.TempDir(), Options{MaxBytes: 1 << 20})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Lookup("https://example.com/absent"); err == nil {
			b.Fatal("found")
		}
	}
}

// BenchmarkCommit measures writing and committing a 16 KiB object, with and without
// fsync.
func BenchmarkCommit(b *testing.B) {
	for _, bc := range []struct {
		name   string
		noSync bool
	}{{"fsync", false}, {"nosync", true}} {
		b.Run(bc.name, func(b *testing.B) {
			s := open(b, b.TempDir(), Options{MaxBytes: 64 << 20, NoSync: bc.noSync})
			b.SetBytes(16 << 10)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				put(b, s, "https://example.com/"+string(rune('a'+i%26)), i, 16<<10)
				i++
			}
		})
	}
}

// BenchmarkOpen measures rebuilding the index of 1,000 objects of 16 KiB, reading every
// body to check its CRC-32C or only the heads, and reports the heap the index keeps
// per object.
func BenchmarkOpen(b *testing.B) {
	const objects, size = 1000, 16 << 10
	dir := b.TempDir()
	s, err := Open(dir, Options{MaxBytes: 64 << 20, NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	for i := range objects {
		put(b, s, fmt.Sprintf("https://example.com/assets/%d/app.js?v=%d", i, i*7), 1, size)
	}
	s.Close()
	for _, bc := range []struct {
		name string
		skip bool
	}{{"check", false}, {"skipcheck", true}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(objects * size)
			var heap float64
			for b.Loop() {
				var m0, m1 runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&m0)
				s, err := Open(dir, Options{MaxBytes: 64 << 20, SkipBodyCheck: bc.skip})
				if err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				runtime.ReadMemStats(&m1)
				heap = float64(m1.HeapAlloc) - float64(m0.HeapAlloc)
				if st := s.Stats(); st.Objects != objects {
					b.Fatalf("reopened %d objects", st.Objects)
				}
				s.Close()
			}
			b.ReportMetric(heap/objects, "heap-B/object")
		})
	}
}
