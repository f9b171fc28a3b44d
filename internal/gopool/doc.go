// Package gopool runs work on goroutines that outlive it: a goroutine that finished one
// piece waits for the next for a while, so that its stack, grown by the first piece's
// deep calls (a dial, a TLS handshake, a request's phases), is not grown again from
// the minimum by the next goroutine's, and so that state of its own (a request's
// buffers, say) is kept for the next piece. For work that comes and goes at a high
// rate, connections or requests, that saves the copying of stacks as they grow.
//
// A Pool keeps at most a given number of idle goroutines, each for at most about
// IdleTimeout, and none once stopped.
package gopool
