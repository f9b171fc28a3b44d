package netio

// BufferPool is where [Conn.ReadBuffer] takes its buffer and gives back one it did not
// use (an h1.BufPool). It is an unnamed interface type, so that a reader that does not
// import this package can name ReadBuffer's signature.
type BufferPool = interface {
	Get() []byte
	Put([]byte)
}
