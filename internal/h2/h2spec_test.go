package h2

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/gotthard-proxy/gotthard/internal/h2spec"
)

// TestH2Spec runs the h2spec conformance suite (RFC 7540/9113 and RFC 7541, 145
// cases) against a server in this test binary, over h2c with prior knowledge and over
// TLS with ALPN h2. Every case must pass.
func TestH2Spec(t *testing.T) {
	if testing.Short() {
		t.Skip("h2spec takes a while")
	}
	for _, tc := range []struct {
		name string
		tls  bool
	}{
		{name: "h2c", tls: false},
		{name: "tls", tls: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var conf *tls.Config
			if tc.tls {
				conf = testTLSConfig(t)
			}
			srv := startServer(t, Options{}, echoHandler, conf)
			_, port, _ := strings.Cut(srv.addr(), ":")
			h2spec.Run(t, port, tc.tls)
		})
	}
}
