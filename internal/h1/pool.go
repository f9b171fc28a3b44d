package h1

import "github.com/gotthard-proxy/gotthard/internal/bufpool"

// DefaultBufSize is the buffer size of a [BufPool] created with size 0.
const DefaultBufSize = bufpool.DefaultSize

// BufPool hands out read and write buffers of one fixed size (see package bufpool). It
// is safe for concurrent use. The user of the package creates it and passes it on;
// there is no package-level pool.
type BufPool = bufpool.Pool

// NewBufPool returns a pool of buffers of size bytes. If size is 0 (or negative),
// [DefaultBufSize].
func NewBufPool(size int) *BufPool { return bufpool.New(size) }
