// Package gopool runs functions on goroutines that outlive them: a goroutine that
// finished one function waits for the next one for a while, so that its stack, grown
// by the first function's deep calls (a dial, a TLS handshake), is not grown again from
// the minimum by the next goroutine's. For work that comes and goes at a high rate, a
// connection's set-up say, that saves the copying of stacks as they grow.
//
// A Pool keeps at most a given number of idle goroutines, each for at most about
// IdleTimeout, and none once stopped.
package gopool
