package disk

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenDiscardsDamage(t *testing.T) {
	for _, skip := range []bool{false, true} {
		t.Run(fmt.Sprintf("SkipBodyCheck=%v", skip), func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{MaxBytes: 1 << 20, SkipBodyCheck: skip}
			s := open(t, dir, opts)
			keys := []string{"truncated", "flipped", "badhead", "nobody", "good", "longer"}
			for _, k := range keys {
				put(t, s, k, 1, 2000)
			}
			bodyOf := func(k string) string {
				e := s.index[s.hash(k)]
				return s.bodyPath(s.hash(k), e.gen)
			}
			damage := map[string]func(){
				"truncated": func() { os.Truncate(bodyOf("truncated"), 1999) },
				"longer": func() {
					f, _ := os.OpenFile(bodyOf("longer"), os.O_WRONLY|os.O_APPEND, 0)
					f.Write([]byte("x"))
					f.Close()
				},
				"flipped": func() { flip(t, bodyOf("flipped"), 1000) },
				"badhead": func() { flip(t, s.headPath(s.hash("badhead")), headFixedLen+3) },
				"nobody":  func() { os.Remove(bodyOf("nobody")) },
			}
			goodBody := bodyOf("good")
			s.Close()
			for _, f := range damage {
				f()
			}
			// Leftovers of interrupted writes, and a file that is not the store's.
			leaf := filepath.Dir(goodBody)
			for _, name := range []string{
				"00000000000000ff-0000000000000099.b.tmp",
				"00000000000000ff-000000000000009a.m.tmp",
				fmt.Sprintf("%016x-%016x.b", s.hash("good"), uint64(1)<<60), // an orphan body
			} {
				os.WriteFile(filepath.Join(leaf, name), []byte("partial"), 0o600)
			}
			os.WriteFile(filepath.Join(leaf, "README"), []byte("not ours"), 0o600)

			s = open(t, dir, opts)
			wantGone := []string{"truncated", "badhead", "nobody", "longer"}
			if !skip {
				wantGone = append(wantGone, "flipped")
			}
			for _, k := range wantGone {
				if v := lookup(t, s, k); v != -1 {
					t.Errorf("%s: a damaged object was served (v%d)", k, v)
				}
			}
			if lookup(t, s, "good") != 1 {
				t.Error("the undamaged object was lost")
			}
			fs, total := files(t, dir)
			for name := range fs {
				if strings.HasSuffix(name, tmpSuffix) {
					t.Errorf("leftover %s not removed", name)
				}
			}
			if _, ok := fs[filepath.Join(filepath.Base(filepath.Dir(leaf)), filepath.Base(leaf), "README")]; !ok {
				t.Error("a file that is not the store's was removed")
			}
			st := s.Stats()
			if st.Bytes != total-int64(len("not ours")) {
				t.Errorf("Stats.Bytes = %d, the store's files hold %d", st.Bytes, total-int64(len("not ours")))
			}
			// 5 or 4 damaged heads, their 4 or 3 bodies (one was deleted), 3 leftovers.
			want := int64(len(wantGone) + len(wantGone) - 1 + 3)
			if st.Discarded != want {
				t.Errorf("Stats.Discarded = %d, want %d", st.Discarded, want)
			}
			// New writes work where the damaged objects were.
			for _, k := range keys {
				put(t, s, k, 2, 100)
				if lookup(t, s, k) != 2 {
					t.Errorf("%s: rewrite not served", k)
				}
			}
		})
	}
}

func flip(t *testing.T, name string, off int64) {
	t.Helper()
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}
