package message_test

import (
	"fmt"
	"strings"

	"github.com/gotthard-proxy/gotthard/message"
)

// A header keeps its fields in order and their names as spelled; lookups ignore case.
func ExampleHeader() {
	var h message.Header
	h.Add("Host", "example.com")
	h.Add("x-trace", "a")
	h.Add("Accept", "text/html")
	h.Add("X-Trace", "b")

	fmt.Println(h.Get("X-TRACE"), h.Values("x-trace"))
	h.Set("Accept", "application/json") // replaces, in place
	h.Del("X-Trace")                    // every field of that name
	h.Add("Via", "1.1 gw")
	for name, value := range h.All() {
		fmt.Printf("%s: %s\n", name, value)
	}
	// Output:
	// a [a b]
	// Host: example.com
	// Accept: application/json
	// Via: 1.1 gw
}

// DelFunc removes fields by name and value in one pass, as a phase might remove
// internal fields before a response leaves.
func ExampleHeader_DelFunc() {
	var h message.Header
	h.Add("Content-Type", "text/plain")
	h.Add("X-Internal-Id", "42")
	h.Add("Set-Cookie", "session=1")
	h.Add("X-Internal-Host", "10.0.0.7")
	h.DelFunc(func(name, _ string) bool {
		return len(name) > 11 && strings.EqualFold(name[:11], "x-internal-")
	})
	for name, value := range h.All() {
		fmt.Printf("%s=%s\n", name, value)
	}
	// Output:
	// Content-Type=text/plain
	// Set-Cookie=session=1
}

func ExampleHeader_HasToken() {
	var h message.Header
	h.Add("Connection", "keep-alive, Upgrade")
	fmt.Println(h.HasToken("connection", "upgrade"), h.HasToken("Connection", "close"))
	// Output: true false
}

func ExampleRequestHeader() {
	req := message.RequestHeader{Method: "GET", Target: "/search?q=gotthard", Version: message.HTTP11}
	req.Header.Add("Host", "example.com")
	fmt.Println(req.Method, req.Path(), req.RawQuery(), req.Host(), req.Version)
	// Output: GET /search q=gotthard example.com HTTP/1.1
}
