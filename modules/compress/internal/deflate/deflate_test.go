package deflate

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	kgzip "github.com/klauspost/compress/gzip"
)

// roundTrip writes data in pieces of the given sizes (flushing after each if flush),
// checks that each flush makes what was written so far readable, and that the whole
// stream decodes to data with Go's reader.
func roundTrip(t testing.TB, level int, data []byte, piece int, flush bool) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := NewWriter(&out, level)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(data); i += piece {
		if _, err := w.Write(data[i:min(i+piece, len(data))]); err != nil {
			t.Fatal(err)
		}
		if flush {
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			zr, err := gzip.NewReader(bytes.NewReader(out.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, min(i+piece, len(data)))
			if _, err := io.ReadFull(zr, got); err != nil || !bytes.Equal(got, data[:len(got)]) {
				t.Fatalf("level %d, piece %d: after a flush at %d: %v", level, piece, len(got), err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("level %d, piece %d, flush %v: %v", level, piece, flush, err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("level %d, piece %d, flush %v: decoded %d bytes, not the %d written", level, piece, flush, len(got), len(data))
	}
	// A second reader, written apart from Go's.
	kr, err := kgzip.NewReader(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(kr); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("level %d, piece %d, flush %v: klauspost's reader: %d bytes, %v", level, piece, flush, len(got), err)
	}
	return out.Bytes()
}

func samples() map[string][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 100<<10)
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	words := strings.Fields("the quick brown fox jumps over the lazy dog proxy request response header <div> </div> {\"id\": 1}")
	var text bytes.Buffer
	for text.Len() < 200<<10 {
		text.WriteString(words[r.IntN(len(words))])
		text.WriteByte(" \n"[r.IntN(2)])
	}
	skewed := make([]byte, 100<<10)
	for i := range skewed {
		skewed[i] = "aab"[r.IntN(3)]
	}
	return map[string][]byte{
		"empty":  nil,
		"one":    []byte("x"),
		"short":  []byte("hello, hello, hello world"),
		"zeros":  make([]byte, 200<<10),
		"random": random,
		"text":   text.Bytes(),
		"skewed": skewed,
	}
}

func TestRoundTrip(t *testing.T) {
	for name, data := range samples() {
		for level := MinLevel; level <= MaxLevel; level++ {
			for _, piece := range []int{1 << 30, 16 << 10, 4093} {
				roundTrip(t, level, data, piece, false)
			}
			// Flushed: each flush decodes all before it, so fewer.
			roundTrip(t, level, data, 16<<10, true)
			if level == 6 {
				roundTrip(t, level, data, 4093, true)
			}
			if len(data) < 2000 {
				roundTrip(t, level, data, 1, true)
			}
		}
		_ = name
	}
}

// TestIncompressible: random bytes are sent stored, 5 bytes over their size per block
// of maxTokens, and a flush of a few bytes costs a few bytes.
func TestIncompressible(t *testing.T) {
	data := samples()["random"]
	out := roundTrip(t, 6, data, 1<<30, false)
	if over := len(out) - len(data); over > 18+5*(len(data)/maxTokens+2) {
		t.Errorf("%d random bytes coded to %d", len(data), len(out))
	}
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, 6)
	w.Write([]byte("data: 1\n\n"))
	w.Flush()
	if n := buf.Len(); n > 10+9+8 {
		t.Errorf("a flushed event of 9 bytes coded to %d", n)
	}
}

// TestText: text codes to well under its size at every level, each level no larger
// than the one below by more than a little, and a Reset writer codes a second stream
// byte for byte as a new one does.
func TestText(t *testing.T) {
	data := samples()["text"]
	prev := len(data)
	for level := MinLevel; level <= MaxLevel; level++ {
		n := len(roundTrip(t, level, data, 1<<30, false))
		if n > len(data)/2 || n > prev+prev/100 {
			t.Errorf("level %d: %d bytes of text coded to %d (level before: %d)", level, len(data), n, prev)
		}
		prev = n
	}
	w, _ := NewWriter(io.Discard, 6)
	w.Write(samples()["random"])
	w.Close()
	codesAsNew(t, w, data, "after Reset")
}

// codesAsNew resets w, codes data with it and checks that the stream is the one a new
// writer at level 6 makes of data.
func codesAsNew(t *testing.T, w *Writer, data []byte, what string) {
	t.Helper()
	var a, b bytes.Buffer
	w.Reset(&a)
	w.Write(data)
	w.Close()
	w2, _ := NewWriter(&b, 6)
	w2.Write(data)
	w2.Close()
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Errorf("%s: %d bytes, new writer: %d", what, a.Len(), b.Len())
	}
}

func TestLevelsAndErrors(t *testing.T) {
	for _, level := range []int{-1, 0, 1, 3, 10} {
		if _, err := NewWriter(io.Discard, level); err == nil {
			t.Errorf("level %d taken", level)
		}
	}
	w, _ := NewWriter(io.Discard, 6)
	w.Close()
	if _, err := w.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("write after close: %v", err)
	}
	broken := errors.New("broken pipe")
	w.Reset(failWriter{broken})
	w.Write([]byte("x"))
	if err := w.Flush(); !errors.Is(err, broken) {
		t.Errorf("flush to a failing writer: %v", err)
	}
	if _, err := w.Write([]byte("y")); !errors.Is(err, broken) {
		t.Errorf("write after a failed flush: %v", err)
	}
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

// FuzzRoundTrip: any input, in any pieces, flushed or not, at any level, decodes to
// itself with Go's reader.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("hello, hello, hello world"), uint16(7), true, uint8(6))
	f.Add(bytes.Repeat([]byte("abcabcabd"), 5000), uint16(4000), false, uint8(9))
	f.Fuzz(func(t *testing.T, data []byte, piece uint16, flush bool, level uint8) {
		p := int(piece) + 1
		if flush { // each flush decodes what came before: at most 64 of them
			p = max(p, len(data)/64+1)
		}
		roundTrip(t, MinLevel+int(level)%(MaxLevel-MinLevel+1), data, p, flush)
	})
}

// TestPositionsStartAgain: a writer whose positions near an int32's end clears its
// tables and starts them again, and codes the next stream as a new writer does.
func TestPositionsStartAgain(t *testing.T) {
	w, _ := NewWriter(io.Discard, 6)
	w.base = posLimit - windowSize
	w.Reset(io.Discard)
	if w.base != posStart {
		t.Fatalf("base %d after a Reset past the limit", w.base)
	}
	w.base = posLimit - windowSize
	codesAsNew(t, w, samples()["text"], "after starting again")
}

// TestLengths: the code lengths are a complete prefix code within the limit, and as
// short in total as Huffman's code where that fits the limit.
func TestLengths(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var h huffCoder
	for round := range 2000 {
		n := 2 + r.IntN(numLitCodes-1)
		limit := []int{maxCLCodeBits, 9, maxCodeBits}[round%3]
		if n > 1<<limit {
			n = 1 << limit
		}
		freq := make([]uint32, n)
		for i := range freq {
			switch r.IntN(4) {
			case 0: // unused
			case 1: // skewed, so that Huffman's code goes deep
				freq[i] = 1 << r.IntN(20)
			default:
				freq[i] = uint32(r.IntN(1000))
			}
		}
		lens := make([]uint8, n)
		h.lengths(freq, limit, lens)
		kraft, cost, used := 0.0, 0, 0
		for s, l := range lens {
			if int(l) > limit {
				t.Fatalf("round %d: symbol %d has length %d over %d", round, s, l, limit)
			}
			if freq[s] > 0 {
				used++
				if l == 0 {
					t.Fatalf("round %d: symbol %d (freq %d) has no code", round, s, freq[s])
				}
			}
			if l > 0 {
				kraft += 1 / float64(uint(1)<<l)
			}
			cost += int(freq[s]) * int(l)
		}
		if kraft != 1 {
			t.Fatalf("round %d: Kraft sum %v, not a complete code", round, kraft)
		}
		if used < 2 {
			continue
		}
		hcost, depth := huffmanCost(freq)
		if depth <= limit && cost != hcost {
			t.Fatalf("round %d: cost %d, Huffman's %d within the limit", round, cost, hcost)
		}
		if cost < hcost {
			t.Fatalf("round %d: cost %d under Huffman's %d", round, cost, hcost)
		}
	}
}

// huffmanCost returns the cost (sum of frequency times length) of Huffman's code for
// the used symbols of freq, and its greatest length.
func huffmanCost(freq []uint32) (cost, depth int) {
	type node struct{ w, d int }
	var q []node
	for _, f := range freq {
		if f > 0 {
			q = append(q, node{int(f), 0})
		}
	}
	for len(q) > 1 {
		slices.SortFunc(q, func(a, b node) int { return a.w - b.w })
		a, b := q[0], q[1]
		cost += a.w + b.w
		q = append(q[2:], node{a.w + b.w, max(a.d, b.d) + 1})
	}
	return cost, q[0].d
}

// TestLongWrite: one write of many megabytes goes on to the writer below as it is
// coded, not held until the write ends.
func TestLongWrite(t *testing.T) {
	data := bytes.Repeat(samples()["random"], 80) // 8 MB, stored
	var most int
	w, _ := NewWriter(writerFunc(func(p []byte) (int, error) {
		most = max(most, len(p))
		return len(p), nil
	}), 6)
	w.Write(data)
	w.Close()
	if most > 4*outFlush || cap(w.bw.out) > 4*outFlush {
		t.Errorf("largest write below %d bytes, output buffer %d, for one write of %d", most, cap(w.bw.out), len(data))
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
