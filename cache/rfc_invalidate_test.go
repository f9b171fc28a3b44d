package cache

import (
	"slices"
	"testing"
)

// TestInvalidations: RFC 9111 §4.4, invalidating after an unsafe request.
func TestInvalidations(t *testing.T) {
	tests := []struct {
		name   string
		method string
		target string
		host   string
		status int
		resp   []string
		want   []string
	}{
		{"§4.4 POST 200 invalidates the target URI", "POST", "/a?b=c", "Example.COM", 200, nil, []string{"https://example.com/a?b=c"}},
		{"§4.4 unknown methods count as unsafe", "PURGEX", "/a", "example.com", 204, nil, []string{"https://example.com/a"}},
		{"§4.4 methods are case-sensitive: \"get\" is unsafe", "get", "/a", "example.com", 200, nil, []string{"https://example.com/a"}},
		{"§4.4 3xx is a non-error status", "DELETE", "/a", "example.com", 303, nil, []string{"https://example.com/a"}},
		{"§4.4 error status: nothing", "POST", "/a", "example.com", 500, nil, nil},
		{"§4.4 4xx: nothing", "PUT", "/a", "example.com", 404, nil, nil},
		{"§4.4 safe method: nothing", "GET", "/a", "example.com", 200, nil, nil},
		{"§4.4 safe OPTIONS: nothing", "OPTIONS", "*", "example.com", 200, nil, nil},
		{"§4.4 Location and Content-Location of the same origin", "POST", "/a", "example.com", 201,
			[]string{"Location: /items/7", "Content-Location: https://EXAMPLE.com:443/a/view#frag"},
			[]string{"https://example.com/a", "https://example.com/items/7", "https://example.com/a/view"}},
		{"§4.4 relative reference resolved against the target", "POST", "/dir/a", "example.com", 201,
			[]string{"Location: b"}, []string{"https://example.com/dir/a", "https://example.com/dir/b"}},
		{"§4.4 other origin not invalidated", "POST", "/a", "example.com", 201,
			[]string{"Location: https://other.example/x", "Content-Location: http://example.com/a"}, []string{"https://example.com/a"}},
		{"§4.4 other port is another origin", "POST", "/a", "example.com", 201,
			[]string{"Location: https://example.com:8443/x"}, []string{"https://example.com/a"}},
		{"§4.4 same URI listed once", "POST", "/a", "example.com", 200,
			[]string{"Content-Location: /a"}, []string{"https://example.com/a"}},
		{"§4.4 a URI in the query of an origin-form target", "POST", "/go?to=http://other/x", "example.com", 200, nil, []string{"https://example.com/go?to=http://other/x"}},
		{"§4.4 absolute-form target", "PUT", "http://Example.com:80/a", "ignored", 200, nil, []string{"http://example.com/a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newReq(t, tt.method)
			req.Target = tt.target
			req.Header.Set("Host", tt.host)
			got := Invalidations("https", req, newResp(t, tt.status, tt.resp...))
			if !slices.Equal(got, tt.want) {
				t.Errorf("Invalidations = %q, want %q", got, tt.want)
			}
		})
	}
}
