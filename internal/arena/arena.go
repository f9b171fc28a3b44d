package arena

import (
	"sync"
	"unsafe"
)

// DefaultChunk is the size of the chunks an arena allocates. Every request in progress
// holds its arena's current chunk, so the size bounds memory under concurrency (160
// requests in flight hold 1.3 MiB of chunks at 8 KiB), while the bytes allocated per
// request are those of its strings, whatever the size.
const DefaultChunk = 8 << 10

// Arena copies byte slices into strings. The zero value is ready to use. An Arena is not
// safe for concurrent use.
type Arena struct {
	buf []byte
}

// String returns a string with the contents of b. Strings up to a quarter of a chunk share
// the arena's chunk; longer ones get their own allocation.
func (a *Arena) String(b []byte) string {
	n := len(b)
	if n == 0 {
		return ""
	}
	if n > DefaultChunk/4 {
		return string(b)
	}
	if cap(a.buf)-len(a.buf) < n {
		a.buf = make([]byte, 0, DefaultChunk)
	}
	start := len(a.buf)
	a.buf = append(a.buf, b...)
	return unsafe.String(&a.buf[start], n)
}

// Pool is a set of arenas shared by goroutines; it is safe for concurrent use.
type Pool struct {
	p sync.Pool
}

// Get returns an arena from the pool or a new one.
func (p *Pool) Get() *Arena {
	if a, ok := p.p.Get().(*Arena); ok {
		return a
	}
	return new(Arena)
}

// Put returns a to the pool. Strings made from a stay valid.
func (p *Pool) Put(a *Arena) { p.p.Put(a) }
