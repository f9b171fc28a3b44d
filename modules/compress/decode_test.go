package compress

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// encodeAll codes body with c by the coding's reference writer.
func encodeAll(t testing.TB, c Coding, body []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	var w io.WriteCloser
	switch c {
	case Gzip:
		w = gzip.NewWriter(&b)
	case Brotli:
		w = brotli.NewWriterLevel(&b, 5)
	case Zstd:
		zw, err := zstd.NewWriter(&b, zstd.WithEncoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		w = zw
	}
	if _, err := w.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// decodePieces feeds coded to a DecodeStream in pieces of size and returns what it
// decoded and its error.
func decodePieces(d *Decoder, c Coding, coded []byte, size int) ([]byte, error) {
	s := d.NewStream(c)
	defer s.Close()
	var got []byte
	for len(coded) > 0 {
		n := min(size, len(coded))
		out, err := s.Decode(coded[:n], false)
		if err != nil {
			return got, err
		}
		got = append(got, out...)
		coded = coded[n:]
	}
	out, err := s.Decode(nil, true)
	return append(got, out...), err
}

func TestDecodeStream(t *testing.T) {
	d, err := NewDecoder(DecoderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	body := text(300 << 10)
	for _, c := range []Coding{Gzip, Brotli, Zstd} {
		coded := encodeAll(t, c, body)
		for _, size := range []int{1, 7, 4096, len(coded)} {
			if size == 1 && len(coded) > 20000 {
				size = 3 // keep it quick
			}
			got, err := decodePieces(d, c, coded, size)
			if err != nil {
				t.Fatalf("%v in pieces of %d: %v", c, size, err)
			}
			if !bytes.Equal(got, body) {
				t.Fatalf("%v in pieces of %d: decoded %d bytes, differ", c, size, len(got))
			}
		}
	}
}

func TestDecodeStreamErrors(t *testing.T) {
	d, err := NewDecoder(DecoderOptions{MaxDecodedSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 64<<20) // a bomb: 64 MiB of zeros, a few KiB coded
	small := text(10 << 10)
	for _, c := range []Coding{Gzip, Brotli, Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			bomb := encodeAll(t, c, zeros)
			if len(bomb) > 256<<10 {
				t.Fatalf("bomb of %d bytes", len(bomb))
			}
			got, err := decodePieces(d, c, bomb, 16<<10)
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("bomb: %v, want ErrTooLarge", err)
			}
			if len(got) > 1<<20 {
				t.Errorf("bomb: %d bytes decoded past the limit", len(got))
			}

			coded := encodeAll(t, c, small)
			if _, err := decodePieces(d, c, coded[:len(coded)-3], 1000); !errors.Is(err, ErrCorrupt) {
				t.Errorf("truncated: %v, want ErrCorrupt", err)
			}
			if _, err := decodePieces(d, c, []byte("this is not coded at all, not at all, no"), 10); !errors.Is(err, ErrCorrupt) {
				t.Errorf("garbage: %v, want ErrCorrupt", err)
			}
			if c != Brotli { // Brotli's reader ignores what follows its last block
				trailing := append(append([]byte(nil), coded...), []byte("garbage after the end")...)
				if _, err := decodePieces(d, c, trailing, len(coded)); !errors.Is(err, ErrCorrupt) {
					t.Errorf("trailing garbage: %v, want ErrCorrupt", err)
				}
			}
			// Closing a stream in the middle stops its goroutine (goleak checks).
			s := d.NewStream(c)
			if _, err := s.Decode(coded[:len(coded)/2], false); err != nil {
				t.Fatal(err)
			}
			s.Close()
			s.Close()
		})
	}
}

// FuzzDecodeStream feeds corrupt coded bodies to a DecodeStream in pieces: whatever the
// input, it ends with its plain bytes or an error wrapping ErrCorrupt or ErrTooLarge,
// never decodes past MaxDecodedSize, and a valid body decodes to what was coded.
func FuzzDecodeStream(f *testing.F) {
	body := text(3000)
	var ref [numCodings][]byte // body, coded
	for c := Zstd; c < numCodings; c++ {
		coded := encodeAll(f, c, body)
		ref[c] = coded
		f.Add(uint8(c), coded, uint16(100), uint16(0), uint8(0))
		f.Add(uint8(c), coded, uint16(7), uint16(len(coded)/2), uint8(0x40)) // a bit flipped
		f.Add(uint8(c), coded[:len(coded)-4], uint16(1000), uint16(0), uint8(0))
		f.Add(uint8(c), encodeAll(f, c, make([]byte, 64<<10)), uint16(512), uint16(0), uint8(0))
	}
	f.Add(uint8(Gzip), []byte("\x1f\x8b\x08\x00garbage"), uint16(3), uint16(0), uint8(0))
	const limit = 32 << 10
	d, err := NewDecoder(DecoderOptions{MaxDecodedSize: limit})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, coding uint8, coded []byte, piece, at uint16, flip uint8) {
		c := Coding(coding%uint8(numCodings-Zstd)) + Zstd
		valid := bytes.Equal(coded, ref[c])
		if len(coded) > 0 && flip != 0 {
			coded = bytes.Clone(coded)
			coded[int(at)%len(coded)] ^= flip
		}
		got, err := decodePieces(d, c, coded, int(piece%4096)+1)
		if len(got) > limit {
			t.Fatalf("%s: %d bytes decoded past the limit of %d", c, len(got), limit)
		}
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("%s: %v, want ErrCorrupt or ErrTooLarge", c, err)
			}
			if valid && flip == 0 {
				t.Fatalf("%s: a valid body failed: %v", c, err)
			}
			return
		}
		if valid && flip == 0 && !bytes.Equal(got, body) {
			t.Fatalf("%s: decoded %d bytes, want %d", c, len(got), len(body))
		}
	})
}
