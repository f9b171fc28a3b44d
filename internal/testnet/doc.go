// Package testnet has helpers for tests and benchmarks that need real sockets: a
// connected pair of TCP connections on loopback, an address that refuses connections, a
// listener whose first accepts fail as a loaded machine's do, and a redis-server of a
// test's own.
package testnet
