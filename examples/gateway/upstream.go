package main

import (
	"fmt"

	"github.com/gotthard-proxy/gotthard/proxy"
	gtls "github.com/gotthard-proxy/gotthard/tls"
)

// peerMaker returns how to make the peer of an upstream address from the -upstream-*
// flags. Each peer is made once and shared by every request.
func peerMaker(proto string, useTLS bool, caFile, sni string, skipVerify bool, opts proxy.PeerOptions) (func(string) *proxy.Peer, error) {
	var p proxy.Protocol
	switch proto {
	case "h1", "":
		p = proxy.ProtoHTTP1
	case "h2c":
		p = proxy.ProtoHTTP2
		if useTLS {
			return nil, fmt.Errorf("-upstream-proto h2c is HTTP/2 in clear text; use h2 with -upstream-tls")
		}
	case "h2":
		p = proxy.ProtoHTTP2
		useTLS = true
	default:
		return nil, fmt.Errorf("-upstream-proto %q: want h1, h2c or h2", proto)
	}
	var pt *proxy.PeerTLS
	if useTLS || caFile != "" || sni != "" || skipVerify {
		pt = &proxy.PeerTLS{ServerName: sni, InsecureSkipVerifyDangerous: skipVerify}
		if caFile != "" {
			roots, err := gtls.LoadCAFile(caFile)
			if err != nil {
				return nil, fmt.Errorf("-upstream-ca: %w", err)
			}
			pt.RootCAs = roots
		}
	}
	return func(addr string) *proxy.Peer {
		return &proxy.Peer{Address: addr, Protocol: p, TLS: pt, Options: opts}
	}, nil
}
