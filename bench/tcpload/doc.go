// Command tcpload is the load generator of the TCP load benchmark, bench/tcp.sh. It
// talks to a TCP proxy whose upstream is bench/tcpsink, and checks every byte count:
//
//	-mode bulk  sends -bytes through -c connections (split evenly), half-closes each and
//	            reads the sink's count of what arrived (its -count listener); a
//	            connection whose count differs from what it sent is an error
//	-mode rr    for -d, each of -c workers in a loop connects, writes -req bytes, reads
//	            the reply to EOF and closes (the sink's -rr listener); a reply of any
//	            length but -reply is an error
//	-mode idle  opens -n connections, sends one byte on each and reads its echo (the
//	            sink's -echo listener), prints "ready N", then holds them idle until
//	            -hold passes or SIGINT/SIGTERM, and prints "open M": how many the proxy
//	            had not closed by then
//
// Bulk and rr print one line of space-separated key=value pairs on stdout, e.g.
//
//	mode=rr conns=61234 errors=0 seconds=5.001 rate=12244.3 p50_ms=4.102 p99_ms=9.870
//
// and exit 1 if any error occurred (the first few are printed on stderr). Every wait is
// bounded: dials and I/O by -timeout, the whole run by -d, -hold or the transfer itself.
package main
