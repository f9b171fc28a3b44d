// Package proxyproto reads and writes the PROXY protocol header (HAProxy's
// specification, versions 1 and 2) that a load balancer in front of a server puts at
// the start of a connection to pass on the client's original address.
//
// [Parse] reads one header from a *bufio.Reader, strictly and within bounds: a version
// 1 (text) header is at most 107 bytes, its line included; a version 2 (binary) header
// at most 16 bytes plus its length field, which [MaxV2Payload] (4096 bytes) bounds.
// [Append] writes one for a source and a destination address. [NewListener] wraps a
// net.Listener so that connections from trusted load balancers report the addresses of
// their header as RemoteAddr and LocalAddr.
//
//	ln, err := net.Listen("tcp", "127.0.0.1:8080")
//	...
//	ln, err = proxyproto.NewListener(ln, proxyproto.Options{
//		Trusted:  []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
//		Required: true,
//	})
//
// When not to use it: for a listener no load balancer speaks the PROXY protocol to.
// Trust only the addresses of the balancers themselves: the header is believed, so a
// client that may send one can claim any address.
package proxyproto
