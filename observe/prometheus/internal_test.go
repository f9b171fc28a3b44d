package prometheus

import (
	"crypto/tls"
	"runtime/debug"
	"testing"
)

func TestModuleVersion(t *testing.T) {
	tests := []struct {
		name string
		bi   debug.BuildInfo
		want string
	}{
		{"own module", debug.BuildInfo{Main: debug.Module{Path: modulePath, Version: "(devel)"}}, "(devel)"},
		{"dependency", debug.BuildInfo{Main: debug.Module{Path: "example.com/gw"},
			Deps: []*debug.Module{{Path: "golang.org/x/net", Version: "v0.62.0"}, {Path: modulePath, Version: "v1.2.3"}}}, "v1.2.3"},
		{"replaced", debug.BuildInfo{Main: debug.Module{Path: "example.com/gw"},
			Deps: []*debug.Module{{Path: modulePath, Version: "v1.2.3", Replace: &debug.Module{Path: "../g", Version: "v1.2.4"}}}}, "v1.2.4"},
		{"absent", debug.BuildInfo{Main: debug.Module{Path: "example.com/gw"}}, "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := moduleVersion(&tt.bi); got != tt.want {
				t.Fatalf("moduleVersion = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLabelValues(t *testing.T) {
	for _, c := range []struct {
		method string
		want   string
	}{{"GET", "GET"}, {"TRACE", "TRACE"}, {"CONNECT", "CONNECT"}, {"get", "other"}, {"PROPFIND", "other"}, {"", "other"}} {
		if got := methodName(methodIndex(c.method)); got != c.want {
			t.Errorf("method %q counted as %q, want %q", c.method, got, c.want)
		}
	}
	for _, c := range []struct {
		status int
		want   string
	}{{0, "0"}, {99, "0"}, {100, "1xx"}, {200, "2xx"}, {399, "3xx"}, {499, "4xx"}, {504, "5xx"}, {600, "0"}} {
		if got := className(classIndex(c.status)); got != c.want {
			t.Errorf("status %d counted as %q, want %q", c.status, got, c.want)
		}
	}
	for _, c := range []struct {
		id   tls.CurveID
		want string
	}{{tls.X25519MLKEM768, "X25519MLKEM768"}, {tls.X25519, "X25519"}, {tls.CurveP256, "CurveP256"}, {0, "none"}, {0x4242, "other"}} {
		if got := tlsGroup(c.id); got != c.want {
			t.Errorf("group %d named %q, want %q", c.id, got, c.want)
		}
	}
	for _, c := range []struct {
		v    uint16
		want string
	}{{tls.VersionTLS13, "1.3"}, {tls.VersionTLS12, "1.2"}, {0x7f00, "other"}} {
		if got := tlsVersion(c.v); got != c.want {
			t.Errorf("version %x named %q, want %q", c.v, got, c.want)
		}
	}
}
