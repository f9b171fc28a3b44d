package proxy

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

// forwardedProxy lets a RequestFilter add request fields before the framework adds its
// forwarded ones.
type forwardedProxy struct {
	fixedProxy
	add [][2]string
}

func (p forwardedProxy) RequestFilter(_ context.Context, s *Session, _ *testCtx) (Result, error) {
	for _, f := range p.add {
		s.Request().Header.Add(f[0], f[1])
	}
	return Continue, nil
}

// TestForwardedFields checks the X-Forwarded-* fields the origin gets: set from the
// connection for an untrusted client (whatever it or a phase sent), extended or kept for
// a trusted one, and none with NoForwardedHeaders.
func TestForwardedFields(t *testing.T) {
	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		for _, name := range []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"} {
			b.WriteString(name + "=" + strings.Join(r.Header.Values(name), "|") + ";")
		}
		w.Write([]byte(b.String()))
	}))
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	tests := []struct {
		name    string
		opts    ServiceOptions
		add     [][2]string // fields a RequestFilter adds
		request string      // the request's own fields
		want    string
	}{
		{name: "untrusted, none sent", request: "Host: a.example\r\n",
			want: "X-Forwarded-For=127.0.0.1;X-Forwarded-Proto=http;X-Forwarded-Host=a.example;"},
		{name: "untrusted, all sent", request: "Host: a.example\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\n",
			want: "X-Forwarded-For=127.0.0.1;X-Forwarded-Proto=http;X-Forwarded-Host=a.example;"},
		{name: "untrusted, a phase adds some", request: "Host: a.example\r\n",
			add:  [][2]string{{"X-Forwarded-For", "9.9.9.9"}, {"x-forwarded-host", "phase"}, {"X-Forwarded-For", "8.8.8.8"}},
			want: "X-Forwarded-For=127.0.0.1;X-Forwarded-Proto=http;X-Forwarded-Host=a.example;"},
		{name: "trusted, none sent", opts: ServiceOptions{TrustedProxies: trusted}, request: "Host: a.example\r\n",
			want: "X-Forwarded-For=127.0.0.1;X-Forwarded-Proto=http;X-Forwarded-Host=a.example;"},
		{name: "trusted, all sent", opts: ServiceOptions{TrustedProxies: trusted},
			request: "Host: a.example\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: front.example\r\n",
			want:    "X-Forwarded-For=1.2.3.4, 127.0.0.1;X-Forwarded-Proto=https;X-Forwarded-Host=front.example;"},
		{name: "no forwarded fields", opts: ServiceOptions{NoForwardedHeaders: true},
			request: "Host: a.example\r\nX-Forwarded-For: 6.6.6.6\r\n",
			want:    "X-Forwarded-For=;X-Forwarded-Proto=;X-Forwarded-Host=;"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, logs := newTestService[*testCtx](t, forwardedProxy{fixedProxy{peer: testPeer(origin)}, tt.add}, tt.opts)
			addr := startProxy(t, svc)
			c, br := dialRaw(t, addr)
			// Twice on one connection: the first request and a later one (which may be
			// served hot) get the same fields.
			for i := range 2 {
				if _, err := c.Write([]byte("GET /f HTTP/1.1\r\n" + tt.request + "\r\n")); err != nil {
					t.Fatal(err)
				}
				resp, body := readResponse(t, br, "GET")
				if resp.StatusCode != 200 || body != tt.want {
					t.Fatalf("request %d: %d %q, want %q\n%s", i+1, resp.StatusCode, body, tt.want, logs.String())
				}
			}
		})
	}
}
