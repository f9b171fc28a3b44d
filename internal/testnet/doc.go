// Package testnet has helpers for tests and benchmarks that need real sockets: a
// connected pair of TCP connections on loopback.
package testnet
