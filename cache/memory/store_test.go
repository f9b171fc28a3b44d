package memory

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/gotthard-proxy/gotthard/cache"
)

func newStore(t testing.TB, o Options) *Store {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testMeta(status int, fields ...string) *cache.Meta {
	m := &cache.Meta{RequestTime: time.Unix(1000, 0), ResponseTime: time.Unix(1001, 0), Size: -1}
	m.Response.Status = status
	for i := 0; i+1 < len(fields); i += 2 {
		m.Response.Header.Add(fields[i], fields[i+1])
	}
	return m
}

func put(t testing.TB, s *Store, key string, meta *cache.Meta, body []byte) {
	t.Helper()
	w, err := s.Create(key, meta)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

func get(t testing.TB, s *Store, key string) cache.BytesObject {
	t.Helper()
	o, err := s.Lookup(key)
	if err != nil {
		t.Fatalf("Lookup(%q): %v", key, err)
	}
	return o.(cache.BytesObject)
}

func TestNewOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want string // the option the error names; "" for none
	}{
		{"zero", Options{}, "MaxBytes"},
		{"negative max", Options{MaxBytes: -1}, "MaxBytes"},
		{"negative object", Options{MaxBytes: 100, MaxObjectBytes: -1}, "MaxObjectBytes"},
		{"object over max", Options{MaxBytes: 100, MaxObjectBytes: 101}, "MaxObjectBytes"},
		{"default object", Options{MaxBytes: 100}, ""},
		{"object equal max", Options{MaxBytes: 100, MaxObjectBytes: 100}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.o)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tc.o.MaxObjectBytes == 0 && s.maxObject != tc.o.MaxBytes/8 {
					t.Fatalf("default MaxObjectBytes %d", s.maxObject)
				}
				return
			}
			if !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), tc.want+" ") {
				t.Fatalf("error %v, want ErrOptions naming %s", err, tc.want)
			}
		})
	}
}

func TestCommitLookup(t *testing.T) {
	s := newStore(t, Options{MaxBytes: 1 << 20})
	meta := testMeta(200, "Content-Type", "text/plain", "Cache-Control", "max-age=60")
	meta.Response.Reason = "OK"
	w, err := s.Create("k", meta)
	if err != nil {
		t.Fatal(err)
	}
	// The store keeps its own copy of the head.
	meta.Response.Header.Set("Content-Type", "changed")
	for _, p := range []string{"hello, ", "world"} {
		if _, err := io.WriteString(w, p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Lookup("k"); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("Lookup before Commit: %v, want ErrNotFound", err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err == nil {
		t.Fatal("a second Commit succeeded")
	}
	o := get(t, s, "k")
	defer o.Close()
	if string(o.Bytes()) != "hello, world" || o.Size() != 12 || o.Meta().Size != 12 {
		t.Fatalf("body %q, Size %d, Meta.Size %d", o.Bytes(), o.Size(), o.Meta().Size)
	}
	m := o.Meta()
	if m.Response.Status != 200 || m.Response.Reason != "OK" || m.Response.Header.Get("content-type") != "text/plain" ||
		m.Response.Header.Get("Cache-Control") != "max-age=60" || !m.RequestTime.Equal(time.Unix(1000, 0)) {
		t.Fatalf("stored head %+v", m)
	}
	buf := make([]byte, 5)
	if n, err := o.ReadAt(buf, 7); n != 5 || err != nil || string(buf) != "world" {
		t.Fatalf("ReadAt(7) = %d, %v, %q", n, err, buf)
	}
	if n, err := o.ReadAt(buf, 10); n != 2 || err != io.EOF {
		t.Fatalf("ReadAt(10) = %d, %v; want 2, EOF", n, err)
	}
	if n, err := o.ReadAt(buf, 12); n != 0 || err != io.EOF {
		t.Fatalf("ReadAt(12) = %d, %v; want 0, EOF", n, err)
	}
	if _, err := o.ReadAt(buf, -1); err == nil {
		t.Fatal("ReadAt(-1) succeeded")
	}
	if got, err := io.ReadAll(io.NewSectionReader(o, 0, o.Size())); err != nil || string(got) != "hello, world" {
		t.Fatalf("SectionReader: %q, %v", got, err)
	}
}

func TestAbort(t *testing.T) {
	s := newStore(t, Options{MaxBytes: 1 << 20})
	w, err := s.Create("k", testMeta(200))
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("x"))
	w.Abort()
	if err := w.Commit(); err == nil {
		t.Fatal("Commit after Abort succeeded")
	}
	if _, err := s.Lookup("k"); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("aborted object found: %v", err)
	}
}

func TestTooLarge(t *testing.T) {
	s := newStore(t, Options{MaxBytes: 1 << 20, MaxObjectBytes: 10})
	m := testMeta(200)
	m.Size = 11
	if _, err := s.Create("k", m); !errors.Is(err, cache.ErrTooLarge) {
		t.Fatalf("Create of an announced 11 bytes: %v, want ErrTooLarge", err)
	}
	m.Size = 10
	w, err := s.Create("k", m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 6)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 5)); !errors.Is(err, cache.ErrTooLarge) {
		t.Fatalf("Write past the limit: %v, want ErrTooLarge", err)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Fatal("Write after a failed Write succeeded")
	}
	w.Abort() // safe after a failed Write
	if err := w.Commit(); err == nil {
		t.Fatal("Commit after a failed Write succeeded")
	}
	if _, err := s.Lookup("k"); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("aborted object found: %v", err)
	}
	// Exactly the limit fits.
	put(t, s, "k", testMeta(200), make([]byte, 10))
	if get(t, s, "k").Size() != 10 {
		t.Fatal("10-byte object not stored")
	}
}

func TestReplaceAndUpdateMeta(t *testing.T) {
	s := newStore(t, Options{MaxBytes: 1 << 20})
	put(t, s, "k", testMeta(200, "ETag", `"1"`), []byte("one"))
	first := get(t, s, "k")
	put(t, s, "k", testMeta(200, "ETag", `"2"`), []byte("two!"))
	second := get(t, s, "k")
	if string(first.Bytes()) != "one" || first.Meta().Response.Header.Get("ETag") != `"1"` {
		t.Fatal("an object handed out changed when its key was committed again")
	}
	if string(second.Bytes()) != "two!" {
		t.Fatalf("after the second commit: %q", second.Bytes())
	}

	upd := testMeta(200, "ETag", `"2"`, "Date", "now")
	upd.Size = 999 // ignored: the body is kept
	if err := s.UpdateMeta("k", upd); err != nil {
		t.Fatal(err)
	}
	upd.Response.Header.Set("Date", "changed after") // the store copied it
	third := get(t, s, "k")
	if second.Meta().Response.Header.Has("Date") {
		t.Fatal("UpdateMeta changed the head of an object already handed out")
	}
	if third.Meta().Response.Header.Get("Date") != "now" || string(third.Bytes()) != "two!" || third.Meta().Size != 4 {
		t.Fatalf("after UpdateMeta: head %v, body %q, Size %d", third.Meta().Response.Header.String(), third.Bytes(), third.Meta().Size)
	}
	if &third.Bytes()[0] != &second.Bytes()[0] {
		t.Fatal("UpdateMeta copied the body")
	}
	if err := s.UpdateMeta("absent", upd); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("UpdateMeta of an absent key: %v, want ErrNotFound", err)
	}
}

func TestPurge(t *testing.T) {
	s := newStore(t, Options{MaxBytes: 1 << 20})
	put(t, s, "k", testMeta(200), []byte("body"))
	held := get(t, s, "k")
	if ok, err := s.Purge("k"); !ok || err != nil {
		t.Fatalf("Purge = %v, %v", ok, err)
	}
	if ok, _ := s.Purge("k"); ok {
		t.Fatal("second Purge found the object")
	}
	if _, err := s.Lookup("k"); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("purged object found: %v", err)
	}
	if string(held.Bytes()) != "body" || held.Close() != nil {
		t.Fatal("an object handed out broke when purged")
	}
	if st := s.Stats(); st.Objects != 0 || st.Bytes != 0 {
		t.Fatalf("after Purge: %+v", st)
	}
}

func TestStats(t *testing.T) {
	// Room for four objects of about 10 KiB each.
	s := newStore(t, Options{MaxBytes: 50 << 10, MaxObjectBytes: 20 << 10})
	body := make([]byte, 10<<10)
	for i := range 20 {
		key := "k" + strconv.Itoa(i)
		if _, err := s.Lookup(key); !errors.Is(err, cache.ErrNotFound) {
			t.Fatalf("Lookup(%s) before storing: %v", key, err)
		}
		put(t, s, key, testMeta(200), body)
		if i >= 10 {
			// Committed twice, so asked for more often than the first ten: TinyLFU
			// admits them over those.
			put(t, s, key, testMeta(200), body)
		}
	}
	st := s.Stats()
	if st.Objects != 4 || st.Bytes > 50<<10 || st.Bytes < 4*(10<<10) {
		t.Fatalf("stats %+v: want 4 objects within 50 KiB", st)
	}
	if st.Misses != 20 || st.Hits != 0 || st.Evictions < 4 || st.Rejections == 0 {
		t.Fatalf("stats %+v: want 20 misses, no hits, evictions and rejections", st)
	}
	found := 0
	for i := range 20 {
		if _, err := s.Lookup("k" + strconv.Itoa(i)); err == nil {
			found++
			if i < 10 {
				t.Errorf("k%d, committed once, outlived keys committed twice", i)
			}
		}
	}
	if st := s.Stats(); found != 4 || st.Hits != 4 || st.Misses != 36 {
		t.Fatalf("found %d; stats %+v: want 4 hits and 36 misses", found, st)
	}
}

// TestWeight checks the accounting against what an object's parts are.
func TestWeight(t *testing.T) {
	s := newStore(t, Options{MaxBytes: 1 << 30})
	m := testMeta(200, "Content-Type", "text/html", "Cache-Control", "public, max-age=3600")
	body := bytes.Repeat([]byte("x"), 100_000)
	put(t, s, "https://example.com/big", m, body)
	w := s.Stats().Bytes
	min := int64(len(body)) + int64(len("https://example.com/big")) + int64(len("Content-Typetext/htmlCache-Controlpublic, max-age=3600")) + fixedOverhead
	if w < min || w > min+8192+512 {
		t.Fatalf("weight %d, want %d plus rounding", w, min)
	}
}

func TestSizeClasses(t *testing.T) {
	if n := unsafe.Sizeof(object{}); n > objectBytes {
		t.Errorf("object is %d bytes, objectBytes %d", n, objectBytes)
	}

}

func TestLookupAllocs(t *testing.T) {
	s := newStore(t, Options{MaxBytes: 1 << 20})
	put(t, s, "k", testMeta(200, "A", "b"), []byte("body"))
	if a := testing.AllocsPerRun(1000, func() {
		o, err := s.Lookup("k")
		if err != nil {
			t.Fatal(err)
		}
		_ = o.(cache.BytesObject).Bytes()
		o.Close()
	}); a != 0 {
		t.Fatalf("Lookup hit: %v allocs, want 0", a)
	}
	if a := testing.AllocsPerRun(1000, func() { s.Lookup("absent") }); a != 0 {
		t.Fatalf("Lookup miss: %v allocs, want 0", a)
	}
}

func BenchmarkLookup(b *testing.B) {
	s := newStore(b, Options{MaxBytes: 64 << 20})
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("https://example.com/objects/%d", i)
		put(b, s, keys[i], testMeta(200, "Content-Type", "text/plain"), make([]byte, 1024))
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			o, _ := s.Lookup(keys[i&1023])
			o.Close()
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				o, _ := s.Lookup(keys[i&1023])
				o.Close()
				i++
			}
		})
	})
}

func BenchmarkCommit(b *testing.B) {
	s := newStore(b, Options{MaxBytes: 16 << 20})
	body := make([]byte, 4096)
	m := testMeta(200, "Content-Type", "text/plain", "Cache-Control", "max-age=60")
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	i := 0
	for b.Loop() {
		w, _ := s.Create("https://example.com/objects/"+strconv.Itoa(i&8191), m)
		w.Write(body)
		w.Commit()
		i++
	}
}
