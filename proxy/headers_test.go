package proxy

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/gotthard-proxy/gotthard/internal/arena"
	"github.com/gotthard-proxy/gotthard/message"
)

// TestIntern checks that every common field name comes back as the constant itself,
// with no copy in the arena, and that other names are copied intact.
func TestIntern(t *testing.T) {
	var a arena.Arena
	for _, name := range commonNames {
		got := intern([]byte(name), &a)
		if got != name || unsafe.StringData(got) != unsafe.StringData(name) {
			t.Errorf("intern(%q) = %q, not the constant", name, got)
		}
	}
	for _, name := range []string{"HOST", "X-Custom", "x", "A-Field-Name-Longer-Than-Any-Common-One"} {
		b := []byte(name)
		got := intern(b, &a)
		b[0] = '#' // the interned copy must not alias the input
		if got != name {
			t.Errorf("intern(%q) = %q", name, got)
		}
	}
}

// editProxy changes headers in its phases: the client's request in RequestFilter, the
// upstream request in UpstreamRequestFilter, the response in UpstreamResponseFilter and
// ResponseFilter.
type editProxy struct {
	fixedProxy
	req, up, upResp, resp func(h *message.Header)
}

func (p editProxy) RequestFilter(_ context.Context, s *Session, _ *testCtx) (Result, error) {
	if p.req != nil {
		p.req(&s.Request().Header)
	}
	return Continue, nil
}

func (p editProxy) UpstreamRequestFilter(_ context.Context, _ *Session, _ *testCtx, r *message.RequestHeader) error {
	if p.up != nil {
		p.up(&r.Header)
	}
	return nil
}

func (p editProxy) UpstreamResponseFilter(_ context.Context, _ *Session, _ *testCtx, r *message.ResponseHeader) error {
	if p.upResp != nil {
		p.upResp(&r.Header)
	}
	return nil
}

func (p editProxy) ResponseFilter(_ context.Context, _ *Session, _ *testCtx, r *message.ResponseHeader) error {
	if p.resp != nil {
		p.resp(&r.Header)
	}
	return nil
}

// TestPhaseEditsChecked checks that every line a phase adds or changes is checked before
// it is written, however it was changed, while the lines the framework parsed or wrote
// are checked once only (validateChanged): an invalid edit is a 500 and reaches no one;
// valid edits pass.
func TestPhaseEditsChecked(t *testing.T) {
	var mu sync.Mutex
	var seen []http.Header
	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		w.Header().Set("X-Origin", "a b")
		w.Header().Set("X-Second", "2")
		io.WriteString(w, "body")
	}))
	const injected = "X-Injected"
	bad := "v\r\n" + injected + ": 1"
	cases := []struct {
		name string
		p    editProxy
		ok   bool
	}{
		{"request line set in place", editProxy{req: func(h *message.Header) { h.Set("User-Agent", bad) }}, false},
		{"request line added", editProxy{req: func(h *message.Header) { h.Add("X-New", bad) }}, false},
		{"upstream Host set", editProxy{up: func(h *message.Header) { h.Set("Host", "a\nb") }}, false},
		{"upstream forwarding field set", editProxy{up: func(h *message.Header) { h.Set("X-Forwarded-For", bad) }}, false},
		{"upstream name added", editProxy{up: func(h *message.Header) { h.Add("Bad Name", "v") }}, false},
		{"upstream line after a deletion", editProxy{up: func(h *message.Header) {
			h.Del("User-Agent")
			h.Set("Accept", bad)
		}}, false},
		{"forwarding field made from a line changed back", editProxy{
			req: func(h *message.Header) { h.Set("Host", bad) }, // X-Forwarded-Host copies it
			up:  func(h *message.Header) { h.Set("Host", "h") },
		}, false},
		{"response line set", editProxy{resp: func(h *message.Header) { h.Set("X-Second", bad) }}, false},
		{"response line added", editProxy{upResp: func(h *message.Header) { h.Add(injected+":", "1") }}, false},
		{"response line set to part of itself", editProxy{resp: func(h *message.Header) {
			h.Set("X-Origin", h.Get("X-Origin")[1:]) // " b": leading whitespace
		}}, false},
		{"response line after a deletion", editProxy{resp: func(h *message.Header) {
			h.Del("X-Origin")
			h.Set("X-Second", bad)
		}}, false},
		{"valid edits", editProxy{
			req: func(h *message.Header) { h.Set("User-Agent", "edited") },
			up: func(h *message.Header) {
				h.Del("Accept")
				h.Add("X-Added", "1")
			},
			resp: func(h *message.Header) {
				h.Set("X-Origin", h.Get("X-Origin")[2:]) // "b"
				h.Add("X-Resp", "r")
			},
		}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			seen = nil
			mu.Unlock()
			tc.p.peer = testPeer(origin)
			svc, logs := newTestService[*testCtx](t, tc.p, ServiceOptions{})
			addr := startProxy(t, svc)
			got := rawExchange(t, addr, "GET /x HTTP/1.1\r\nHost: h\r\nUser-Agent: ua\r\nAccept: */*\r\nConnection: close\r\n\r\n")
			resp, body := readResponse(t, bufio.NewReader(strings.NewReader(got)), "GET")
			if strings.Contains(got, injected) {
				t.Errorf("the injected line reached the client:\n%s", got)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, h := range seen {
				if h.Get(injected) != "" {
					t.Errorf("the injected line reached the origin: %v", h)
				}
			}
			if !tc.ok {
				if resp.StatusCode != 500 {
					t.Fatalf("status %d, want 500\n%s", resp.StatusCode, got)
				}
				if !strings.Contains(logs.String(), "invalid header field") {
					t.Errorf("no log line names the invalid field:\n%s", logs)
				}
				return
			}
			if resp.StatusCode != 200 || body != "body" {
				t.Fatalf("status %d body %q, want 200 \"body\"\n%s", resp.StatusCode, body, got)
			}
			if resp.Header.Get("X-Origin") != "b" || resp.Header.Get("X-Resp") != "r" || resp.Header.Get("X-Second") != "2" {
				t.Errorf("response header %v", resp.Header)
			}
			if len(seen) != 1 {
				t.Fatalf("origin saw %d requests", len(seen))
			}
			h := seen[0]
			if h.Get("User-Agent") != "edited" || h.Get("Accept") != "" || h.Get("X-Added") != "1" || h.Get("X-Forwarded-For") != "127.0.0.1" {
				t.Errorf("origin saw %v", h)
			}
		})
	}
}

// TestSameField checks that only the very same strings count as the same line.
func TestSameField(t *testing.T) {
	name, value := strings.Clone("X-Name"), strings.Clone("value")
	f := message.Field{Name: name, Value: value}
	if !sameField(f, message.Field{Name: name, Value: value}) {
		t.Error("a line is not the same as itself")
	}
	if sameField(f, message.Field{Name: strings.Clone(name), Value: value}) ||
		sameField(f, message.Field{Name: name, Value: strings.Clone(value)}) {
		t.Error("an equal copy counts as the same line")
	}
	if sameField(f, message.Field{Name: name, Value: value[:2]}) {
		t.Error("a prefix of the value counts as the same line")
	}
	if sameField(message.Field{}, message.Field{}) {
		t.Error("a line without a name counts as known")
	}
}

// TestSplitAbsolute: absolute-form targets of the http and https schemes, in any case,
// split into their authority and the rest; every other form is left alone, and no form
// costs an allocation.
func TestSplitAbsolute(t *testing.T) {
	for _, tc := range []struct {
		target, authority, rest string
		ok                      bool
	}{
		{"/index.html", "", "", false},
		{"", "", "", false},
		{"*", "", "", false},
		{"example.com:443", "", "", false}, // CONNECT's authority form
		{"http://example.com/a?b", "example.com", "/a?b", true},
		{"HTTPS://example.com:8443?q=1", "example.com:8443", "?q=1", true},
		{"http://example.com", "example.com", "", true},
		{"http://a/b://c", "a", "/b://c", true},
		{"http://", "", "", false},
		{"http:///path", "", "", false},
		{"http:/a", "", "", false},
		{"http:", "", "", false},
		{"ftp://example.com/", "", "", false},
		{"x:y://example.com/", "", "", false},
		{"://example.com/", "", "", false},
	} {
		authority, rest, ok := splitAbsolute([]byte(tc.target))
		if ok != tc.ok || ok && (string(authority) != tc.authority || string(rest) != tc.rest) {
			t.Errorf("splitAbsolute(%q) = %q, %q, %v; want %q, %q, %v", tc.target,
				authority, rest, ok, tc.authority, tc.rest, tc.ok)
		}
	}
	origin, absolute := []byte("/index.html"), []byte("http://example.com/a")
	if n := testing.AllocsPerRun(100, func() {
		splitAbsolute(origin)
		splitAbsolute(absolute)
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
}
