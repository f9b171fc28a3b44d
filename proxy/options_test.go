package proxy

import (
	"errors"
	"net"
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

// TestServeRefusesBadOptions checks that Serve returns the options' error at once and
// closes the listeners it was given.
func TestServeRefusesBadOptions(t *testing.T) {
	svc := NewService[*testCtx]("bad", fixedProxy{peer: NewPeer("127.0.0.1:1")}, ServiceOptions{Via: "a\nb"})
	defer svc.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	err = svc.Serve([]net.Listener{ln})
	if err == nil || !strings.Contains(err.Error(), "Via") {
		t.Fatalf("Serve: %v, want an error about Via", err)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("the listener is still open (Accept: %v)", err)
	}
}
