package accesslog

import "unsafe"

// A key16 or key32 is a piece of a line's fixed text (a key with the punctuation
// around it), padded with zeros to 16 or 32 bytes, so that put writes it as one
// fixed-size copy (one or two 16-byte moves) with no bounds check: a third of the
// instructions of a checked copy of its length. The padding lands past the key, where
// the next field overwrites it: a line's bound (see appendJSON) keeps room for the
// rest of the line after each key, and its slack, always more than the padding but at
// the line's end, which is written with a checked copy.
type (
	key16 struct {
		text [16]byte
		n    int // the length of the text, without the padding
	}
	key32 struct {
		text [32]byte
		n    int
	}
)

func newKey16(s string) (k key16) {
	k.n = copy(k.text[:], s)
	if k.n != len(s) {
		panic("accesslog: key longer than 16 bytes: " + s)
	}
	return k
}

func newKey32(s string) (k key32) {
	k.n = copy(k.text[:], s)
	if k.n != len(s) {
		panic("accesslog: key longer than 32 bytes: " + s)
	}
	return k
}

// put writes k to d at i, and returns the index after its text (not its padding).
// d must have room for 16 bytes from i: it is not checked.
func (k *key16) put(d []byte, i int) int {
	*(*[16]byte)(unchecked(d, i)) = k.text
	return i + k.n
}

// put writes k to d at i, and returns the index after its text (not its padding).
// d must have room for 32 bytes from i: it is not checked.
func (k *key32) put(d []byte, i int) int {
	*(*[32]byte)(unchecked(d, i)) = k.text
	return i + k.n
}

// unchecked returns the address of d[i] (d's backing array has room for what the
// caller writes there), without a bounds check.
func unchecked(d []byte, i int) unsafe.Pointer {
	return unsafe.Add(unsafe.Pointer(unsafe.SliceData(d)), i)
}
