package memory

import (
	"fmt"
	"io"
	"strings"
	"unsafe"

	"github.com/gotthard-proxy/gotthard/cache"
	"github.com/gotthard-proxy/gotthard/message"
)

// object is a committed response: immutable, shared by every reader that looked it up.
// A new head (UpdateMeta) makes a new object around the same body.
type object struct {
	meta   *cache.Meta
	body   []byte
	weight int64
}

var _ cache.BytesObject = (*object)(nil)

// Meta returns the stored head. The caller must not change it.
func (o *object) Meta() *cache.Meta { return o.meta }

// Size returns the body's length.
func (o *object) Size() int64 { return int64(len(o.body)) }

// Bytes returns the body without a copy. The caller must not change it.
func (o *object) Bytes() []byte { return o.body }

// ReadAt reads the body as io.ReaderAt does.
func (o *object) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("memory: ReadAt at negative offset %d", off)
	}
	if off >= int64(len(o.body)) {
		return 0, io.EOF
	}
	n := copy(p, o.body[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Close does nothing: the body is in the heap and is freed with the last reference.
func (o *object) Close() error { return nil }

// Fixed costs of an object, in bytes, beyond its body, key and head strings:
//   - the object and its Meta;
//   - the eviction policy's entry (key, value, hash, weight, links, counter: 64 bytes),
//     its table slots (at most four of 16 bytes: 64),
//     its sketch counters (four to eight words: 64) and a ghost queue item with its map
//     entry (at most 72 while both have spare room after growing).
const (
	// objectBytes is the allocator's size class for an object (40 bytes);
	// TestSizeClasses checks that it still fits. metaBytes is a cache.Meta with what
	// the cache derives from it (cache.MetaOverhead).
	objectBytes    = 48
	metaBytes      = cache.MetaOverhead
	policyOverhead = 64 + 64 + 64 + 72
	fixedOverhead  = objectBytes + metaBytes + policyOverhead
	fieldSize      = int64(unsafe.Sizeof(message.Field{}))
)

// allocSize bounds what the Go allocator takes for an n-byte object: small sizes round up
// to a size class (at most 12.5% more, or 16 bytes), large ones to 8 KiB pages.
func allocSize(n int64) int64 {
	switch {
	case n <= 0:
		return 0
	case n <= 32<<10:
		return n + n/8 + 16
	default:
		return (n + 8191) &^ 8191
	}
}

// weigh returns what an object with this head, key and body costs the heap.
func weigh(key string, meta *cache.Meta, headBytes int64, body []byte) int64 {
	return fixedOverhead +
		allocSize(int64(len(key))) +
		allocSize(headBytes) +
		allocSize(int64(meta.Response.Header.Len())*fieldSize) +
		int64(cap(body))
}

// compactMeta returns a deep copy of m whose strings all lie in one allocation (so that it
// pins no buffer of the caller's and its size is known) with a field slice of exactly
// the needed length, and the size of the strings' allocation.
func compactMeta(m *cache.Meta) (*cache.Meta, int64) {
	h := &m.Response.Header
	n := len(m.Response.Reason)
	for name, value := range h.All() {
		n += len(name) + len(value)
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(m.Response.Reason)
	for name, value := range h.All() {
		b.WriteString(name)
		b.WriteString(value)
	}
	all := b.String()

	c := &cache.Meta{RequestTime: m.RequestTime, ResponseTime: m.ResponseTime, Size: m.Size}
	c.Response.Status = m.Response.Status
	c.Response.Version = m.Response.Version
	off := len(m.Response.Reason)
	c.Response.Reason = all[:off]
	var tmp message.Header
	for name, value := range h.All() {
		nm := all[off : off+len(name)]
		off += len(name)
		tmp.Add(nm, all[off:off+len(value)])
		off += len(value)
	}
	if tmp.Len() > 0 {
		c.Response.Header = tmp.Clone() // exactly Len fields
	}
	return c, int64(n)
}
