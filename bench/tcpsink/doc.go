// Command tcpsink is the upstream of the TCP load benchmark, bench/tcp.sh. It serves
// three kinds of connection, one per listener, each cheap enough to share a core with
// the load generator (bench/tcpload):
//
//	-count ADDR  reads until the client half-closes, then writes the number of bytes it
//	             read as a decimal line ("1073741824\n") and closes: the bulk scenario,
//	             whose client checks that every byte it sent arrived
//	-rr ADDR     reads exactly -req bytes, writes -reply bytes and closes (the server
//	             closes first, so TIME_WAIT stays on this side, not on the proxy's or the
//	             client's ephemeral ports): the connection-rate scenario
//	-echo ADDR   echoes what it reads and keeps the connection open until the client
//	             closes it: the idle scenario, which holds thousands of them
//
// Any listener may be left out. It runs until SIGINT or SIGTERM, then closes its
// listeners and every connection and exits. Errors on single connections are counted
// and printed on exit on stderr ("errors N"); they are not fatal.
package main
