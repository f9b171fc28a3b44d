package cache

import (
	"strings"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/message"
)

// t0 is the instant the tests' responses are received.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// date formats t0 shifted by d as an HTTP-date.
func date(d time.Duration) string { return formatHTTPDate(t0.Add(d)) }

// fields adds "Name: value" lines to h.
func fields(t testing.TB, h *message.Header, lines []string) {
	t.Helper()
	for _, l := range lines {
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			t.Fatalf("bad field line %q", l)
		}
		h.Add(name, strings.TrimLeft(value, " "))
	}
}

func newReq(t testing.TB, method string, lines ...string) *message.RequestHeader {
	t.Helper()
	r := &message.RequestHeader{Method: method, Target: "/a?b=c", Version: message.HTTP11}
	r.Header.Add("Host", "example.com")
	fields(t, &r.Header, lines)
	return r
}

func newResp(t testing.TB, status int, lines ...string) *message.ResponseHeader {
	t.Helper()
	r := &message.ResponseHeader{Status: status, Version: message.HTTP11}
	fields(t, &r.Header, lines)
	return r
}

// stored returns a Meta for a response whose request went out and whose response
// came back at t0 (no response delay), with a body of 100 bytes.
func stored(t testing.TB, status int, lines ...string) *Meta {
	t.Helper()
	m := &Meta{RequestTime: t0, ResponseTime: t0, Size: 100}
	m.Response.Status, m.Response.Version = status, message.HTTP11
	fields(t, &m.Response.Header, lines)
	return m
}
