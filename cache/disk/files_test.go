package disk

import (
	"errors"
	"hash/crc32"
	"testing"
)

func FuzzDecodeHead(f *testing.F) {
	s := &Store{crc: crc32.MakeTable(crc32.Castagnoli)}
	for _, h := range []*head{
		{key: "k", gen: 1, bodySize: 10, bodyCRC: 7, meta: metaFor("k", 1, 10)},
		{key: "", gen: 0, bodySize: 0, meta: metaFor("", 0, 0)},
	} {
		h.meta.Size = h.bodySize
		b, err := s.encodeHead(h)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(headMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := s.decodeHead(data)
		if err != nil {
			if !errors.Is(err, errHeadFile) {
				t.Fatalf("error %v does not wrap errHeadFile", err)
			}
			return
		}
		b, err := s.encodeHead(h)
		if err != nil {
			t.Fatalf("re-encoding a decoded head: %v", err)
		}
		again, err := s.decodeHead(b)
		if err != nil {
			t.Fatalf("decoding a re-encoded head: %v", err)
		}
		if again.key != h.key || again.gen != h.gen || again.bodySize != h.bodySize ||
			again.bodyCRC != h.bodyCRC || again.meta.Response.Header.String() != h.meta.Response.Header.String() {
			t.Fatalf("round trip changed the head: %+v, then %+v", h, again)
		}
	})
}

func TestDecodeHeadRejects(t *testing.T) {
	s := &Store{crc: crc32.MakeTable(crc32.Castagnoli)}
	m := metaFor("k", 1, 10)
	m.Size = 10
	good, err := s.encodeHead(&head{key: "k", gen: 3, bodySize: 10, meta: m})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.decodeHead(good); err != nil {
		t.Fatal(err)
	}
	mismatch := metaFor("k", 1, 10)
	mismatch.Size = 11
	sizeOff, _ := s.encodeHead(&head{key: "k", gen: 3, bodySize: 10, meta: mismatch})
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"truncated", good[:len(good)-1]},
		{"extended", append(append([]byte(nil), good...), 0)},
		{"bad magic", append([]byte("XTDH"), good[4:]...)},
		{"flipped bit", func() []byte { b := append([]byte(nil), good...); b[40] ^= 1; return b }()},
		{"Meta.Size differs from the body's", sizeOff},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.decodeHead(tt.in); !errors.Is(err, errHeadFile) {
				t.Fatalf("decodeHead = %v, want errHeadFile", err)
			}
		})
	}
}
