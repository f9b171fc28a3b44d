// Package netio reads and writes sockets for the HTTP codec with fewer runtime costs
// than net.Conn's methods.
//
// On Linux, [Wrap] returns a reader and writer that issue read(2) and write(2) on the
// non-blocking socket directly through its syscall.RawConn, as raw system calls. Such a
// call never blocks (the socket is non-blocking; waiting is left to the runtime poller,
// which also enforces the connection's deadlines), so the runtime need not treat it as a
// blocking system call: the goroutine keeps its P, and the runtime's monitor thread does
// not hand the P to another thread when a loopback write takes a few tens of
// microseconds. A busy proxy saves the thread hand-offs and lets the monitor sleep.
//
// Elsewhere (macOS and the BSDs; or on Linux with the netio_portable build tag, which
// CI uses to test this code) Wrap returns a Conn with the same contract built on the
// connection's own Read and Write. For connections without a file descriptor (TLS,
// pipes) Wrap returns the connection itself.
package netio
