package otel

import "testing"

func TestSplitHostPort(t *testing.T) {
	for _, tc := range []struct {
		name, in, host string
		port           int
	}{
		{"empty", "", "", 0},
		{"name", "example.com", "example.com", 0},
		{"name and port", "example.com:8080", "example.com", 8080},
		{"IPv4 and port", "10.0.0.7:443", "10.0.0.7", 443},
		{"IPv6 in brackets", "[::1]", "::1", 0},
		{"IPv6 and port", "[2001:db8::1]:8443", "2001:db8::1", 8443},
		{"bare IPv6", "2001:db8::1", "2001:db8::1", 0},
		{"port not a number", "example.com:http", "example.com", 0},
		{"port too large", "example.com:65536", "example.com", 0},
		{"empty port", "example.com:", "example.com", 0},
		{"unclosed bracket", "[::1:80", "[::1:80", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host, port := splitHostPort(tc.in)
			if host != tc.host || port != tc.port {
				t.Errorf("splitHostPort(%q) = %q, %d, want %q, %d", tc.in, host, port, tc.host, tc.port)
			}
		})
	}
}

func TestProtoVersion(t *testing.T) {
	for in, want := range map[string]string{"HTTP/1.0": "1.0", "HTTP/1.1": "1.1", "HTTP/2": "2", "": "", "SPDY/3": ""} {
		if got := protoVersion(in); got != want {
			t.Errorf("protoVersion(%q) = %q, want %q", in, got, want)
		}
	}
}
