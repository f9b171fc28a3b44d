// Package bufpool is the pool of fixed-size byte buffers that the HTTP codecs
// (internal/h1, internal/h2) read and write through: buffers are taken when there are
// bytes to handle and given back when a connection idles. Get and Put do not allocate:
// a buffer goes through sync.Pool as a pointer to its first byte, which an interface
// holds without a box. It uses the standard library only.
package bufpool

import (
	"sync"
	"sync/atomic"
	"unsafe"
)

// DefaultSize is the buffer size of a [Pool] created with size 0.
const DefaultSize = 16 << 10

// Pool hands out buffers of one fixed size. It is safe for concurrent use. Its user
// creates it (one per service, say) and passes it on; there is no package-level pool.
type Pool struct {
	size  int
	bufs  sync.Pool // *byte: the first byte of a buffer of size bytes
	inUse atomic.Int64
}

// New returns a pool of buffers of size bytes. If size is 0 (or negative),
// [DefaultSize].
func New(size int) *Pool {
	if size <= 0 {
		size = DefaultSize
	}
	return &Pool{size: size}
}

// Size returns the length of the buffers the pool hands out.
func (p *Pool) Size() int { return p.size }

// Get returns a buffer of length and capacity Size.
func (p *Pool) Get() []byte {
	p.inUse.Add(1)
	if first, ok := p.bufs.Get().(*byte); ok {
		// The pool holds only buffers of exactly p.size bytes (see Put).
		return unsafe.Slice(first, p.size)
	}
	return make([]byte, p.size)
}

// Put gives back a buffer that Get returned; the caller must not use it afterwards.
// Buffers of another capacity are dropped.
func (p *Pool) Put(b []byte) {
	if cap(b) != p.size {
		return
	}
	p.inUse.Add(-1)
	p.bufs.Put(unsafe.SliceData(b))
}

// InUse returns the number of buffers handed out by Get and not yet returned by Put.
// It is a gauge of the buffer memory held by connections (InUse × Size bytes).
func (p *Pool) InUse() int64 { return p.inUse.Load() }
