package proxy

import (
	"net/netip"
	"strings"
	"testing"
)

func TestServiceOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		opts ServiceOptions
		bad  string // a part of the error, or "" for valid options
	}{
		{"zero", ServiceOptions{}, ""},
		{"negatives select defaults", ServiceOptions{KeepaliveTimeout: -1, BufferSize: -1, MaxRetries: -1}, ""},
		{"via", ServiceOptions{Via: "edge-1", TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, ""},
		{"via with a line break", ServiceOptions{Via: "edge\r\nX-Injected: 1"}, "Via"},
		{"via with edge space", ServiceOptions{Via: " edge"}, "Via"},
		{"body rate", ServiceOptions{MinRequestBodyRate: 1 << 30, MinRequestBodyRateGrace: -1}, ""},
		{"body rate too high", ServiceOptions{MinRequestBodyRate: 1<<30 + 1}, "MinRequestBodyRate"},
		{"zero prefix", ServiceOptions{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("::1/128"), {}}}, "TrustedProxies[1]"},
	}
	for _, tt := range tests {
		err := tt.opts.Validate()
		switch {
		case tt.bad == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.bad != "" && (err == nil || !strings.Contains(err.Error(), tt.bad)):
			t.Errorf("%s: err = %v, want one about %s", tt.name, err, tt.bad)
		}
	}
}

// TestNewServiceRefuses checks that NewService returns no service, and an error naming
// the problem once, for an empty name, a nil app and options that cannot work.
func TestNewServiceRefuses(t *testing.T) {
	app := fixedProxy{peer: testPeer("127.0.0.1:1")}
	for _, tt := range []struct {
		name, svc string
		app       ProxyHTTP[*testCtx]
		opts      ServiceOptions
		want      string
	}{
		{"empty name", "", app, ServiceOptions{}, "proxy: NewService: empty service name"},
		{"nil app", "gw", nil, ServiceOptions{}, `proxy: NewService "gw": nil ProxyHTTP`},
		{"bad options", "gw", app, ServiceOptions{Via: "a\nb"}, `proxy: Via "a\nb" is not a valid header field value`},
	} {
		svc, err := NewService(tt.svc, tt.app, tt.opts)
		if svc != nil || err == nil || err.Error() != tt.want {
			t.Errorf("%s: NewService = %v, %v; want nil, %q", tt.name, svc, err, tt.want)
		}
	}
}

// TestNewPeerRefuses checks that NewPeer validates the address it is given.
func TestNewPeerRefuses(t *testing.T) {
	for _, addr := range []string{"127.0.0.1", "http://host:80", "host:0", ""} {
		if p, err := NewPeer(addr); p != nil || err == nil || !strings.Contains(err.Error(), "Address") {
			t.Errorf("NewPeer(%q) = %v, %v; want nil and an error about Address", addr, p, err)
		}
	}
	if p, err := NewPeer("[::1]:8080"); err != nil || p.Address != "[::1]:8080" || p.Network != "tcp" {
		t.Errorf(`NewPeer("[::1]:8080") = %+v, %v`, p, err)
	}
}
