package h2

import (
	"sync"
	"sync/atomic"
)

// DefaultBufSize is the buffer size of a [BufPool] created with size 0.
const DefaultBufSize = 16 << 10

// BufPool hands out read and write buffers of one fixed size. It is safe for
// concurrent use. The user of the package creates it (one per service, say) and passes
// it to [NewReader] and [NewWriter]; there is no package-level pool.
type BufPool struct {
	size  int
	bufs  sync.Pool // *[]byte holding a buffer
	boxes sync.Pool // empty *[]byte, so that Put does not allocate a new box
	inUse atomic.Int64
}

// NewBufPool returns a pool of buffers of size bytes. If size is 0 (or negative),
// [DefaultBufSize].
func NewBufPool(size int) *BufPool {
	if size <= 0 {
		size = DefaultBufSize
	}
	return &BufPool{size: size}
}

// Size returns the length of the buffers the pool hands out.
func (p *BufPool) Size() int { return p.size }

// Get returns a buffer of length and capacity Size.
func (p *BufPool) Get() []byte {
	p.inUse.Add(1)
	if v, ok := p.bufs.Get().(*[]byte); ok {
		b := *v
		*v = nil
		p.boxes.Put(v)
		return b[:p.size]
	}
	return make([]byte, p.size)
}

// Put returns b to the pool. Buffers whose capacity is not Size (not from this pool)
// are dropped. b must not be used after Put.
func (p *BufPool) Put(b []byte) {
	if cap(b) != p.size {
		return
	}
	p.inUse.Add(-1)
	v, _ := p.boxes.Get().(*[]byte)
	if v == nil {
		v = new([]byte)
	}
	*v = b[:p.size]
	p.bufs.Put(v)
}

// InUse returns the number of buffers handed out by Get and not yet returned by Put.
// It is a gauge of the buffer memory held by connections (InUse × Size bytes).
func (p *BufPool) InUse() int64 { return p.inUse.Load() }
