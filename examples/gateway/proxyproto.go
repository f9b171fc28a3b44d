package main

import (
	"flag"
	"fmt"
	"net/netip"
	"strings"

	"github.com/gotthard-proxy/gotthard/proxy"
)

// ppFlags are the gateway's PROXY protocol flags: accepting the header from load
// balancers in front (-proxy-protocol-from), and sending it to the upstreams
// (-upstream-proxy-protocol).
type ppFlags struct {
	from     string
	required bool
	upstream uint
}

func addPPFlags(fs *flag.FlagSet) *ppFlags {
	f := &ppFlags{}
	fs.StringVar(&f.from, "proxy-protocol-from", "", "accept a PROXY protocol header (v1 or v2) from these load balancers, comma-separated prefixes or addresses (e.g. 10.0.0.0/8,127.0.0.1); clients and X-Forwarded-For are then the ones it names")
	fs.BoolVar(&f.required, "proxy-protocol-required", false, "with -proxy-protocol-from: a connection from those addresses must start with the header")
	fs.UintVar(&f.upstream, "upstream-proxy-protocol", 0, "send a PROXY protocol header of this version (1 or 2) to the upstreams on each new connection (0: none)")
	return f
}

// options returns the service's PROXY protocol options.
func (f *ppFlags) options() (proxy.ProxyProtocolOptions, error) {
	var o proxy.ProxyProtocolOptions
	if f.from == "" {
		if f.required {
			return o, fmt.Errorf("-proxy-protocol-required needs -proxy-protocol-from")
		}
		return o, nil
	}
	for _, s := range strings.Split(f.from, ",") {
		s = strings.TrimSpace(s)
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return o, fmt.Errorf("-proxy-protocol-from: %q is not an address or a prefix", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		o.Trusted = append(o.Trusted, p.Masked())
	}
	o.Required = f.required
	return o, nil
}

// peerVersion returns the version to send upstream, checked.
func (f *ppFlags) peerVersion() (uint8, error) {
	if f.upstream > 2 {
		return 0, fmt.Errorf("-upstream-proxy-protocol %d: want 0, 1 or 2", f.upstream)
	}
	return uint8(f.upstream), nil
}
