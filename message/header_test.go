package message

import (
	"slices"
	"testing"
)

func TestHeader(t *testing.T) {
	var h Header
	h.Add("Content-Type", "text/plain")
	h.Add("X-A", "1")
	h.Add("x-a", "2")
	h.Add("Via", "1.1 a")

	tests := []struct {
		name string
		got  any
		want any
	}{
		{"Get ignores case", h.Get("content-TYPE"), "text/plain"},
		{"Get first", h.Get("X-A"), "1"},
		{"Get missing", h.Get("Nope"), ""},
		{"Values in order", h.Values("X-A"), []string{"1", "2"}},
		{"Has", h.Has("via"), true},
		{"Len", h.Len(), 4},
		{"HasToken", h.HasToken("Via", "1.1 A"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			switch w := tt.want.(type) {
			case []string:
				if !slices.Equal(tt.got.([]string), w) {
					t.Fatalf("got %v, want %v", tt.got, w)
				}
			default:
				if tt.got != tt.want {
					t.Fatalf("got %v, want %v", tt.got, tt.want)
				}
			}
		})
	}

	h.Set("x-A", "3")
	if got := h.String(); got != "Content-Type: text/plain\r\nX-A: 3\r\nVia: 1.1 a\r\n" {
		t.Fatalf("after Set: %q", got)
	}
	h.Del("CONTENT-type")
	h.Set("New", "v")
	if got := h.String(); got != "X-A: 3\r\nVia: 1.1 a\r\nNew: v\r\n" {
		t.Fatalf("after Del/Set: %q", got)
	}
	c := h.Clone()
	h.Reset()
	if h.Len() != 0 || c.Len() != 3 {
		t.Fatalf("Reset/Clone: %d %d", h.Len(), c.Len())
	}
	var names []string
	for n := range c.All() {
		names = append(names, n)
	}
	if !slices.Equal(names, []string{"X-A", "Via", "New"}) {
		t.Fatalf("All: %v", names)
	}
	c.DelFunc(func(n, v string) bool { return v == "v" })
	if c.Has("New") {
		t.Fatal("DelFunc")
	}
}

func TestRequestHeader(t *testing.T) {
	r := RequestHeader{Method: "GET", Target: "/a/b?c=d", Version: HTTP11}
	r.Header.Add("Host", "example.com")
	if r.Path() != "/a/b" || r.RawQuery() != "c=d" || r.Host() != "example.com" {
		t.Fatalf("%q %q %q", r.Path(), r.RawQuery(), r.Host())
	}
	var cp RequestHeader
	cp.CopyFrom(&r)
	cp.Header.Set("Host", "other")
	if r.Host() != "example.com" || cp.Host() != "other" {
		t.Fatal("CopyFrom shares storage")
	}
	if HTTP10.String() != "HTTP/1.0" || HTTP2.String() != "HTTP/2" {
		t.Fatal("Version.String")
	}
}

func TestNoAllocs(t *testing.T) {
	var h Header
	h.Add("A", "1")
	h.Add("B", "2")
	allocs := testing.AllocsPerRun(100, func() {
		h.Reset()
		h.Add("Host", "x")
		h.Add("Accept", "*/*")
		_ = h.Get("accept")
		h.Set("host", "y")
	})
	if allocs != 0 {
		t.Fatalf("allocs = %v", allocs)
	}
}

func BenchmarkHeaderGet(b *testing.B) {
	var h Header
	for _, n := range []string{"Host", "User-Agent", "Accept", "Accept-Encoding", "Cookie", "X-Request-Id"} {
		h.Add(n, "v")
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = h.Get("x-request-id")
	}
}
