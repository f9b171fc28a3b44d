package disk

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/cache"
)

var _ cache.Storage = (*Store)(nil)

// body returns the body of version v of key: n bytes derived from both, so a truncated,
// extended or mixed-up body does not match.
func body(key string, v, n int) []byte {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%d", key, v)
	r := rand.New(rand.NewPCG(h.Sum64(), uint64(n)))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		x := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(x >> (8 * j))
		}
	}
	return b
}

// metaFor is the head stored with version v of key: it names both and the body's
// length, so a reader can tell which body belongs with it.
func metaFor(key string, v, n int) *cache.Meta {
	m := &cache.Meta{
		RequestTime:  time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
		ResponseTime: time.Date(2026, 1, 2, 3, 4, 6, 7, time.UTC),
		Size:         -1,
	}
	m.Response.Status = 200
	m.Response.Header.Add("Content-Type", "application/octet-stream")
	m.Response.Header.Add("ETag", fmt.Sprintf(`"%d"`, v))
	m.Response.Header.Add("X-Key", key)
	m.Response.Header.Add("X-Version", strconv.Itoa(v))
	m.Response.Header.Add("X-Length", strconv.Itoa(n))
	return m
}

// put writes version v of key, n bytes, in chunks of up to 4 KiB.
func put(t testing.TB, s *Store, key string, v, n int) {
	t.Helper()
	if err := write(s, key, v, n); err != nil {
		t.Fatalf("put %s v%d: %v", key, v, err)
	}
}

func write(s *Store, key string, v, n int) error {
	w, err := s.Create(key, metaFor(key, v, n))
	if err != nil {
		return err
	}
	b := body(key, v, n)
	for len(b) > 0 {
		c := min(len(b), 4096)
		if _, err := w.Write(b[:c]); err != nil {
			w.Abort()
			return err
		}
		b = b[c:]
	}
	return w.Commit()
}

// check reads obj whole and verifies it is a complete, unmixed version of key; it
// returns the version.
func check(obj cache.Object, key string) (int, error) {
	m := obj.Meta()
	if got := m.Response.Header.Get("X-Key"); got != key {
		return 0, fmt.Errorf("object of key %q served for %q", got, key)
	}
	v, err1 := strconv.Atoi(m.Response.Header.Get("X-Version"))
	n, err2 := strconv.Atoi(m.Response.Header.Get("X-Length"))
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%s: bad head %q", key, m.Response.Header.String())
	}
	if obj.Size() != int64(n) || m.Size != int64(n) {
		return v, fmt.Errorf("%s v%d: Size() %d, Meta.Size %d, want %d", key, v, obj.Size(), m.Size, n)
	}
	got := make([]byte, n+10)
	k, err := obj.ReadAt(got, 0)
	if err != io.EOF {
		return v, fmt.Errorf("%s v%d: ReadAt past the end: %v, want io.EOF", key, v, err)
	}
	if k != n || !bytes.Equal(got[:k], body(key, v, n)) {
		return v, fmt.Errorf("%s v%d: body of %d bytes does not match the version's %d", key, v, k, n)
	}
	return v, nil
}

// lookup looks key up and checks the object; it returns the version, or -1 if none.
func lookup(t testing.TB, s *Store, key string) int {
	t.Helper()
	obj, err := s.Lookup(key)
	if errors.Is(err, cache.ErrNotFound) {
		return -1
	}
	if err != nil {
		t.Fatalf("Lookup(%s): %v", key, err)
	}
	defer obj.Close()
	v, err := check(obj, key)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func open(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// files lists the regular files under dir (relative names) and their total size.
func files(t testing.TB, dir string) (map[string]int64, int64) {
	t.Helper()
	out := make(map[string]int64)
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = fi.Size()
		total += fi.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out, total
}

func TestOpenOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no MaxBytes", Options{}, "MaxBytes"},
		{"negative MaxBytes", Options{MaxBytes: -1}, "MaxBytes"},
		{"negative MaxObjectBytes", Options{MaxBytes: 10, MaxObjectBytes: -1}, "MaxObjectBytes"},
		{"MaxObjectBytes over MaxBytes", Options{MaxBytes: 10, MaxObjectBytes: 11}, "MaxObjectBytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(t.TempDir(), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open = %v, want an error naming %s", err, tt.want)
			}
		})
	}
	s := open(t, t.TempDir(), Options{MaxBytes: 800})
	if s.opts.MaxObjectBytes != 100 {
		t.Errorf("default MaxObjectBytes = %d, want MaxBytes/8", s.opts.MaxObjectBytes)
	}
}

func TestRoundTrip(t *testing.T) {
	s := open(t, t.TempDir(), Options{MaxBytes: 8 << 20})
	for _, n := range []int{0, 1, 1000, 4096, 100000} {
		key := "https://example.com/obj?n=" + strconv.Itoa(n)
		put(t, s, key, 1, n)
		obj, err := s.Lookup(key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := check(obj, key); err != nil {
			t.Fatal(err)
		}
		m := obj.Meta()
		want := metaFor(key, 1, n)
		if m.Response.Status != 200 || !m.RequestTime.Equal(want.RequestTime) || !m.ResponseTime.Equal(want.ResponseTime) {
			t.Errorf("meta = %+v", m)
		}
		if n > 10 {
			p := make([]byte, 5)
			if k, err := obj.ReadAt(p, 7); k != 5 || err != nil || !bytes.Equal(p, body(key, 1, n)[7:12]) {
				t.Errorf("ReadAt(5 bytes at 7) = %d, %v", k, err)
			}
		}
		if k, err := obj.ReadAt(make([]byte, 1), int64(n)); k != 0 || err != io.EOF {
			t.Errorf("ReadAt at the end = %d, %v, want 0, io.EOF", k, err)
		}
		if _, err := obj.ReadAt(make([]byte, 1), -1); err == nil {
			t.Error("ReadAt at a negative offset succeeded")
		}
		if err := obj.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Lookup("https://example.com/absent"); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("Lookup of an absent key = %v, want ErrNotFound", err)
	}
	st := s.Stats()
	_, total := files(t, s.dir)
	if st.Objects != 5 || st.Hits != 5 || st.Misses != 1 || st.Bytes != total {
		t.Errorf("Stats = %+v, want 5 objects, 5 hits, 1 miss, %d bytes", st, total)
	}
}

func TestUncommittedInvisible(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{MaxBytes: 1 << 20})
	w, err := s.Create("k", metaFor("k", 1, 10))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(body("k", 1, 10)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup("k"); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("Lookup before Commit = %v, want ErrNotFound", err)
	}
	w.Abort()
	w.Abort()
	if err := w.Commit(); err == nil {
		t.Error("Commit after Abort succeeded")
	}
	if fs, _ := files(t, dir); len(fs) != 1 {
		t.Errorf("files after Abort = %v, want only the lock file", fs)
	}
}

func TestReplace(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{MaxBytes: 1 << 20})
	put(t, s, "k", 1, 5000)
	old, err := s.Lookup("k")
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	put(t, s, "k", 2, 3000)
	if v := lookup(t, s, "k"); v != 2 {
		t.Fatalf("after replace: version %d, want 2", v)
	}
	// The reader that held the old object still reads it whole.
	if v, err := check(old, "k"); err != nil || v != 1 {
		t.Fatalf("old reader: v%d, %v", v, err)
	}
	fs, total := files(t, dir)
	if len(fs) != 3 { // LOCK, head, body
		t.Errorf("files after replace = %v, want the lock file, one head and one body", fs)
	}
	if st := s.Stats(); st.Objects != 1 || st.Bytes != total {
		t.Errorf("Stats = %+v, want 1 object of %d bytes", st, total)
	}
}

func TestUpdateMeta(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{MaxBytes: 1 << 20})
	put(t, s, "k", 1, 5000)
	before, _ := files(t, dir)

	m := metaFor("k", 1, 5000)
	m.Response.Header.Add("Cache-Control", "max-age=600")
	m.ResponseTime = m.ResponseTime.Add(time.Hour)
	m.Size = 12345 // ignored: the body keeps its length
	if err := s.UpdateMeta("k", m); err != nil {
		t.Fatal(err)
	}
	obj, err := s.Lookup("k")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := check(obj, "k"); err != nil {
		t.Fatal(err)
	}
	if got := obj.Meta(); got.Response.Header.Get("Cache-Control") != "max-age=600" || !got.ResponseTime.Equal(m.ResponseTime) {
		t.Errorf("meta after UpdateMeta = %q %v", got.Response.Header.String(), got.ResponseTime)
	}
	obj.Close()

	after, total := files(t, dir)
	for name, size := range before {
		if strings.HasSuffix(name, bodySuffix) && after[name] != size {
			t.Errorf("body %s changed: UpdateMeta must keep the body file", name)
		}
	}
	if len(after) != len(before) {
		t.Errorf("files after UpdateMeta = %v, before %v", after, before)
	}
	if st := s.Stats(); st.Bytes != total {
		t.Errorf("Stats.Bytes = %d, files hold %d", st.Bytes, total)
	}
	if err := s.UpdateMeta("absent", m); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("UpdateMeta of an absent key = %v, want ErrNotFound", err)
	}

	// The update survives a restart.
	s.Close()
	s = open(t, dir, Options{MaxBytes: 1 << 20})
	obj, err = s.Lookup("k")
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	if obj.Meta().Response.Header.Get("Cache-Control") != "max-age=600" {
		t.Error("UpdateMeta lost across a restart")
	}
	if _, err := check(obj, "k"); err != nil {
		t.Fatal(err)
	}
}

func TestUpdateMetaOfReplacedObject(t *testing.T) {
	s := open(t, t.TempDir(), Options{MaxBytes: 1 << 20})
	put(t, s, "k", 1, 5000)
	obj, err := s.Lookup("k")
	if err != nil {
		t.Fatal(err)
	}
	validated := obj.Meta().Clone() // the head a 304 for v1 would update
	obj.Close()
	validated.Response.Header.Add("Cache-Control", "max-age=600")
	put(t, s, "k", 2, 3000) // replaced meanwhile

	if err := s.UpdateMeta("k", validated); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("UpdateMeta with v1's head over v2 = %v, want ErrNotFound", err)
	}
	if v := lookup(t, s, "k"); v != 2 {
		t.Fatalf("after the refused update: version %d, want 2", v)
	}
	withLength := metaFor("k", 3, 100)
	withLength.Response.Header.Set("Content-Length", "100")
	w, err := s.Create("k", withLength)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(body("k", 3, 100))
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	wrongLength := metaFor("k", 3, 100)
	wrongLength.Response.Header.Set("Content-Length", "5000")
	if err := s.UpdateMeta("k", wrongLength); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("UpdateMeta changing Content-Length = %v, want ErrNotFound", err)
	}
	weak := metaFor("k", 3, 100)
	weak.Response.Header.Set("Content-Length", "100")
	weak.Response.Header.Set("ETag", `W/"3"`)
	if err := s.UpdateMeta("k", weak); err != nil {
		t.Fatalf("UpdateMeta with a weakly equal ETag = %v", err)
	}
	if v := lookup(t, s, "k"); v != 3 {
		t.Fatalf("version %d, want 3", v)
	}
}

func TestPurge(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{MaxBytes: 1 << 20})
	put(t, s, "k", 1, 5000)
	put(t, s, "other", 1, 10)
	obj, err := s.Lookup("k")
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	if ok, err := s.Purge("k"); !ok || err != nil {
		t.Fatalf("Purge = %v, %v, want true, nil", ok, err)
	}
	if v := lookup(t, s, "k"); v != -1 {
		t.Fatalf("Lookup after Purge found v%d", v)
	}
	if _, err := check(obj, "k"); err != nil {
		t.Fatalf("a reader holding the purged object: %v", err)
	}
	if ok, err := s.Purge("k"); ok || err != nil {
		t.Fatalf("second Purge = %v, %v, want false, nil", ok, err)
	}
	fs, total := files(t, dir)
	if len(fs) != 3 {
		t.Errorf("files after Purge = %v, want the lock file and the other object", fs)
	}
	if st := s.Stats(); st.Objects != 1 || st.Bytes != total {
		t.Errorf("Stats = %+v, want 1 object of %d bytes", st, total)
	}
	s.Close()
	s = open(t, dir, Options{MaxBytes: 1 << 20})
	if v := lookup(t, s, "k"); v != -1 {
		t.Fatal("a purged object came back after a restart")
	}
}

func TestRestart(t *testing.T) {
	dir := t.TempDir()
	opts := Options{MaxBytes: 64 << 20}
	s := open(t, dir, opts)
	want := make(map[string]int)
	for i := range 200 {
		key := fmt.Sprintf("https://example.com/%d", i)
		put(t, s, key, 1, i*97)
		want[key] = 1
	}
	for i := 0; i < 200; i += 7 {
		key := fmt.Sprintf("https://example.com/%d", i)
		put(t, s, key, 2, i*31)
		want[key] = 2
	}
	for i := 3; i < 200; i += 11 {
		key := fmt.Sprintf("https://example.com/%d", i)
		if _, err := s.Purge(key); err != nil {
			t.Fatal(err)
		}
		delete(want, key)
	}
	st1 := s.Stats()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup("https://example.com/1"); !errors.Is(err, ErrClosed) {
		t.Errorf("Lookup after Close = %v, want ErrClosed", err)
	}

	s = open(t, dir, opts)
	for i := range 200 {
		key := fmt.Sprintf("https://example.com/%d", i)
		if got := lookup(t, s, key); got != max(want[key], 0) && !(got == -1 && want[key] == 0) {
			t.Errorf("%s: version %d after restart, want %d", key, got, want[key])
		}
	}
	st2 := s.Stats()
	if st2.Objects != int64(len(want)) || st2.Bytes != st1.Bytes || st2.Discarded != 0 {
		t.Errorf("Stats after restart = %+v, before %+v", st2, st1)
	}
	// New writes after a restart do not reuse a generation of an existing body.
	put(t, s, "https://example.com/new", 1, 100)
	if got := lookup(t, s, "https://example.com/1"); got != 1 {
		t.Errorf("an old object after a new write: version %d", got)
	}
}

func TestLockExclusive(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{MaxBytes: 1 << 20})
	if _, err := Open(dir, Options{MaxBytes: 1 << 20}); err == nil {
		t.Fatal("a second Open of an open directory succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	open(t, dir, Options{MaxBytes: 1 << 20})
}

func TestClosed(t *testing.T) {
	s := open(t, t.TempDir(), Options{MaxBytes: 1 << 20})
	put(t, s, "k", 1, 10)
	w, err := s.Create("pending", metaFor("pending", 1, 10))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(body("pending", 1, 10)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := w.Commit(); !errors.Is(err, ErrClosed) {
		t.Errorf("Commit after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Create("x", metaFor("x", 1, 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Create after Close = %v", err)
	}
	if err := s.UpdateMeta("k", metaFor("k", 1, 10)); !errors.Is(err, ErrClosed) {
		t.Errorf("UpdateMeta after Close = %v", err)
	}
	if _, err := s.Purge("k"); !errors.Is(err, ErrClosed) {
		t.Errorf("Purge after Close = %v", err)
	}
}

func TestTooLarge(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{MaxBytes: 1 << 20, MaxObjectBytes: 1000})
	if _, err := s.Create("k", &cache.Meta{Size: 1001}); !errors.Is(err, cache.ErrTooLarge) {
		t.Errorf("Create announcing 1001 bytes = %v, want ErrTooLarge", err)
	}
	w, err := s.Create("k", &cache.Meta{Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 600)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 401)); !errors.Is(err, cache.ErrTooLarge) {
		t.Fatalf("Write past the limit = %v, want ErrTooLarge", err)
	}
	w.Abort()
	if err := w.Commit(); err == nil {
		t.Error("Commit after a too-large Write succeeded")
	}
	if fs, _ := files(t, dir); len(fs) != 1 {
		t.Errorf("files after a too-large write = %v", fs)
	}
	if _, err := s.Create(strings.Repeat("k", maxKeyLen+1), &cache.Meta{}); !errors.Is(err, cache.ErrTooLarge) {
		t.Errorf("Create with a key over %d bytes = %v, want ErrTooLarge", maxKeyLen, err)
	}
	put(t, s, "exact", 1, 1000)
}

// collide maps every key to one slot.
func collide(string) uint64 { return 0xabcdef0123456789 }

func TestHashCollision(t *testing.T) {
	dir := t.TempDir()
	opts := Options{MaxBytes: 1 << 20, hash: collide}
	s := open(t, dir, opts)
	put(t, s, "a", 1, 300)
	if v := lookup(t, s, "b"); v != -1 {
		t.Fatalf("b served a's object (v%d)", v)
	}
	if err := s.UpdateMeta("b", metaFor("b", 1, 300)); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("UpdateMeta(b) over a's object = %v, want ErrNotFound", err)
	}
	if ok, err := s.Purge("b"); ok || err != nil {
		t.Fatalf("Purge(b) = %v, %v: it must not remove a's object", ok, err)
	}
	if v := lookup(t, s, "a"); v != 1 {
		t.Fatalf("a: version %d, want 1", v)
	}
	// b takes the slot: a is gone, b is served, and neither serves the other.
	put(t, s, "b", 7, 500)
	if v := lookup(t, s, "a"); v != -1 {
		t.Fatalf("a served b's object (v%d)", v)
	}
	if v := lookup(t, s, "b"); v != 7 {
		t.Fatalf("b: version %d, want 7", v)
	}
	s.Close()
	s = open(t, dir, opts)
	if lookup(t, s, "a") != -1 || lookup(t, s, "b") != 7 {
		t.Fatal("after a restart the colliding keys are mixed up")
	}
	if st := s.Stats(); st.Objects != 1 {
		t.Errorf("Stats = %+v, want 1 object", st)
	}
}

func TestBound(t *testing.T) {
	dir := t.TempDir()
	const maxBytes = 256 << 10
	s := open(t, dir, Options{MaxBytes: maxBytes, MaxObjectBytes: 32 << 10, NoSync: true})
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 400 {
		key := fmt.Sprintf("k%d", i)
		put(t, s, key, 1, r.IntN(32<<10))
		_, total := files(t, dir)
		st := s.Stats()
		if total > maxBytes {
			t.Fatalf("after %d objects the files hold %d bytes, over %d", i+1, total, maxBytes)
		}
		if st.Bytes != total {
			t.Fatalf("Stats.Bytes = %d, files hold %d", st.Bytes, total)
		}
		if v := lookup(t, s, key); v != 1 && s.Stats().Rejections == 0 {
			t.Fatalf("%s is not served, and the policy refused nothing", key)
		}
	}
	st := s.Stats()
	if st.Evictions == 0 || st.Objects+st.Evictions+st.Rejections != 400 {
		t.Errorf("Stats = %+v: want evictions, and objects + evictions + rejections = 400", st)
	}
	// An object asked for often outlives ones written once after it.
	// (A new key is admitted once it was asked for more than what it would displace:
	// each commit counts.)
	for i := 0; lookup(t, s, "hot") != 1; i++ {
		if i == 10 {
			t.Fatal("the policy never admitted an object written 10 times")
		}
		put(t, s, "hot", 1, 1000)
	}
	for i := range 100 {
		if lookup(t, s, "hot") != 1 {
			t.Fatalf("the hot object was evicted after %d more writes", i)
		}
		put(t, s, fmt.Sprintf("cold%d", i), 1, 16<<10)
	}
	// Reopening with a smaller bound evicts down to it.
	s.Close()
	s = open(t, dir, Options{MaxBytes: 64 << 10, MaxObjectBytes: 32 << 10})
	if _, total := files(t, dir); total > 64<<10 || s.Stats().Bytes != total {
		t.Errorf("after reopening with MaxBytes 64 KiB the files hold %d bytes (Stats %+v)", total, s.Stats())
	}
	// What the reopened store serves is what its index holds, and each object whole.
	n := 0
	for i := range 100 {
		if v := lookup(t, s, fmt.Sprintf("cold%d", i)); v == 1 {
			n++
		}
	}
	if lookup(t, s, "hot") == 1 {
		n++
	}
	if st := s.Stats(); int64(n) > st.Objects || st.Objects == 0 {
		t.Errorf("after reopening: %d objects served, Stats %+v", n, st)
	}
}

func TestConcurrent(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{MaxBytes: 512 << 10, MaxObjectBytes: 64 << 10, NoSync: true})
	const workers, ops, keys = 8, 400, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 7))
			var held []cache.Object
			defer func() {
				for _, o := range held {
					o.Close()
				}
			}()
			for i := range ops {
				key := fmt.Sprintf("k%d", r.IntN(keys))
				switch op := r.IntN(10); {
				case op < 3:
					if err := write(s, key, w*ops+i, r.IntN(64<<10)); err != nil {
						errs <- err
						return
					}
				case op < 8:
					obj, err := s.Lookup(key)
					if errors.Is(err, cache.ErrNotFound) {
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					if _, err := check(obj, key); err != nil {
						errs <- err
						return
					}
					if len(held) < 4 {
						held = append(held, obj) // read again after others replaced it
					} else {
						obj.Close()
					}
				case op < 9:
					obj, err := s.Lookup(key)
					if err != nil {
						continue
					}
					m := obj.Meta().Clone()
					obj.Close()
					m.Response.Header.Set("X-Updated", strconv.Itoa(i))
					if err := s.UpdateMeta(key, m); err != nil && !errors.Is(err, cache.ErrNotFound) {
						errs <- err
						return
					}
				default:
					if _, err := s.Purge(key); err != nil {
						errs <- err
						return
					}
				}
			}
			for _, o := range held {
				if _, err := check(o, o.Meta().Response.Header.Get("X-Key")); err != nil {
					errs <- fmt.Errorf("a held object: %w", err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	fs, total := files(t, dir)
	st := s.Stats()
	if total > 512<<10 || st.Bytes != total {
		t.Errorf("after the run: files hold %d bytes, Stats %+v", total, st)
	}
	// Every file left is an indexed object's: no orphan from a race.
	var heads, bodies int64
	for name := range fs {
		switch {
		case strings.HasSuffix(name, headSuffix):
			heads++
		case strings.HasSuffix(name, bodySuffix):
			bodies++
		case name != lockName:
			t.Errorf("unexpected file %s after the run", name)
		}
	}
	if heads != st.Objects || bodies != st.Objects {
		t.Errorf("%d heads and %d bodies for %d objects", heads, bodies, st.Objects)
	}
	s.Close()
	s = open(t, dir, Options{MaxBytes: 512 << 10, MaxObjectBytes: 64 << 10})
	for i := range keys {
		lookup(t, s, fmt.Sprintf("k%d", i))
	}
	if st := s.Stats(); st.Discarded != 0 {
		t.Errorf("reopening after a clean run discarded %d files", st.Discarded)
	}
}
