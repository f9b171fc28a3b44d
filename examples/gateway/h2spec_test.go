package main

import (
	"strings"
	"testing"

	"github.com/gotthard-proxy/gotthard/internal/h2spec"
)

// TestH2Spec runs the h2spec conformance suite (145 cases of RFC 9113 and RFC 7541)
// against the gateway as a user runs it: its plain listener (h2c by prior knowledge,
// shared with HTTP/1.1) and its TLS listener (h2 by ALPN), in front of the demo origin.
// Every case must pass on both.
func TestH2Spec(t *testing.T) {
	if testing.Short() {
		t.Skip("h2spec takes a while")
	}
	dir := t.TempDir()
	_, cert, key := certFiles(t, dir, "localhost", "127.0.0.1")
	plain, secure := freeAddr(t), freeAddr(t)
	gw := startGateway(t, "-listen", plain, "-tls-listen", secure, "-cert", cert, "-key", key)
	for _, addr := range []string{plain, secure} {
		gw.waitAccepting(t, addr)
	}
	for _, tc := range []struct {
		name string
		addr string
		tls  bool
	}{{"h2c", plain, false}, {"tls", secure, true}} {
		t.Run(tc.name, func(t *testing.T) {
			_, port, _ := strings.Cut(tc.addr, ":")
			h2spec.Run(t, port, tc.tls)
		})
	}
}
