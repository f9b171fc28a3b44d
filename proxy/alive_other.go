//go:build !linux

package proxy

// isAlive reports true: without a non-blocking peek, an idle connection is trusted, and
// a request that finds it closed is retried when that is safe.
func (c *upConn) isAlive() bool { return true }
func (c *upConn) check(uintptr) {}
