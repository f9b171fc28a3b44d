package privacypass

import (
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/proxy"
	"github.com/gotthard-proxy/gotthard/proxy/proxytest"
)

// origin is a real origin server that reports the Authorization it saw and counts the
// requests that reached it.
type origin struct {
	*proxytest.Origin
	hits atomic.Int64
}

func newOrigin(t *testing.T) *origin {
	o := new(origin)
	o.Origin = proxytest.NewOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.hits.Add(1)
		fmt.Fprintf(w, "origin: authorization=%q", r.Header.Get("Authorization"))
	}))
	return o
}

// endpoint is one way of reaching the proxy: a protocol and its client.
type endpoint struct {
	name   string
	url    string
	client *http.Client
	proto  string // the protocol the client speaks
}

// serveProxy serves a proxy with module m in front of o, on plain and TLS endpoints, and
// returns a client per protocol.
func serveProxy(t *testing.T, o *origin, m *Module) []endpoint {
	t.Helper()
	svc := proxytest.NewService(t, "tokens", proxytest.FixedPeer{Peer: o.Peer()},
		proxy.ServiceOptions{Modules: []proxy.Module{m}})
	cert := proxytest.NewCert(t)
	svc.AddTCP("127.0.0.1:0")
	svc.AddTLS("127.0.0.1:0", cert.Config)
	addrs := proxytest.ServeAll(t, svc)
	return []endpoint{
		{"h1", "http://" + addrs[0], proxytest.H1Client(t, nil), "HTTP/1.1"},
		{"h2c", "http://" + addrs[0], proxytest.H2CClient(t), "HTTP/2.0"},
		{"h2", "https://" + addrs[1], proxytest.H2Client(t, cert), "HTTP/2.0"},
		{"h1-tls", "https://" + addrs[1], proxytest.H1Client(t, cert), "HTTP/1.1"},
	}
}

type result struct {
	status int
	header http.Header
	body   string
}

func get(t *testing.T, ep endpoint, path string, authz ...string) result {
	t.Helper()
	req, err := http.NewRequest("GET", ep.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range authz {
		req.Header.Add("Authorization", a)
	}
	resp, err := ep.client.Do(req)
	if err != nil {
		t.Fatalf("%s: GET %s: %v", ep.name, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: GET %s: body: %v", ep.name, path, err)
	}
	if resp.Proto != ep.proto {
		t.Fatalf("%s: response over %s", ep.name, resp.Proto)
	}
	return result{resp.StatusCode, resp.Header, string(b)}
}

// challenged checks that r is a 401 with a challenge a client can read, and returns it.
func challenged(t *testing.T, r result) *wwwAuthenticate {
	t.Helper()
	if r.status != http.StatusUnauthorized {
		t.Fatalf("status %d (%s), want 401", r.status, r.body)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("401 with Cache-Control %q", r.header.Get("Cache-Control"))
	}
	if len(r.body) == 0 || len(r.body) > 100 {
		t.Errorf("401 body %q", r.body)
	}
	vs := r.header.Values("WWW-Authenticate")
	if len(vs) != 1 {
		t.Fatalf("WWW-Authenticate %q", vs)
	}
	w, err := parseWWWAuthenticate(vs[0])
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestEndToEnd(t *testing.T) {
	is := newTestIssuer(t, "issuer.example")
	is.serve(t)
	rogue := newTestIssuer(t, "issuer.example") // same name, another key
	rogue.serve(t)
	o := newOrigin(t)
	m, err := New(Options{
		IssuerName: "issuer.example",
		IssuerKeys: []*rsa.PublicKey{is.pk()},
		OriginInfo: []string{"origin.example"},
		Skip:       func(s *proxy.Session) bool { return s.Request().Path() == "/health" },
	})
	if err != nil {
		t.Fatal(err)
	}
	issuerClient := proxytest.H1Client(t, nil)
	fetch := func(t *testing.T, issuer *testIssuer, challenge []byte) *Token {
		t.Helper()
		tok, err := makeToken(issuer.pk(), challenge, httpSigner(issuerClient, issuer.url))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	wantHits := int64(0)
	for _, ep := range serveProxy(t, o, m) {
		t.Run(ep.name, func(t *testing.T) {
			// No token: 401 with a challenge naming our issuer, origin and key.
			w := challenged(t, get(t, ep, "/resource"))
			if w.parsed.IssuerName != "issuer.example" || strings.Join(w.parsed.OriginInfo, ",") != "origin.example" ||
				len(w.parsed.RedemptionContext) != RedemptionContextSize {
				t.Fatalf("challenge %+v", w.parsed)
			}
			if w.tokenKey.N.Cmp(is.pk().N) != 0 || w.maxAge == "" {
				t.Fatalf("token-key or max-age wrong")
			}

			// The client gets a token from the issuer over HTTP and retries: the origin
			// answers, and never sees the token.
			tok := fetch(t, is, w.challenge)
			authz := FormatAuthorization(tok)
			r := get(t, ep, "/resource", authz)
			if r.status != http.StatusOK || r.body != `origin: authorization=""` {
				t.Fatalf("with a token: %d %q", r.status, r.body)
			}
			wantHits++

			// The same token again is a replay.
			challenged(t, get(t, ep, "/resource", authz))

			// A token for another origin, or from another issuer key.
			c, _ := ParseChallenge(w.challenge)
			c.OriginInfo = []string{"other.example"}
			otherOrigin, _ := c.MarshalBinary()
			challenged(t, get(t, ep, "/resource", FormatAuthorization(fetch(t, is, otherOrigin))))
			challenged(t, get(t, ep, "/resource", FormatAuthorization(fetch(t, rogue, w.challenge))))

			// Malformed credentials are refused with a challenge, never an error.
			good := fetch(t, is, w.challenge)
			raw, _ := good.MarshalBinary()
			enc := base64.RawURLEncoding.EncodeToString(raw)
			typ1 := append([]byte{0, 1}, raw[2:]...)
			for _, bad := range []string{
				`PrivateToken token="` + strings.Repeat("!", len(enc)) + `"`,
				`PrivateToken token="` + enc[:len(enc)/2] + `"`,
				`PrivateToken token="` + base64.RawURLEncoding.EncodeToString(typ1) + `"`,
				`PrivateToken token="` + enc,
				`PrivateToken`,
				`Bearer ` + enc,
				`PrivateToken token="` + strings.Repeat("A", 4000) + `"`,
			} {
				challenged(t, get(t, ep, "/resource", bad))
			}
			// Two Authorization fields, one of them valid: refused.
			challenged(t, get(t, ep, "/resource", FormatAuthorization(good), "Basic dXNlcjpwYXNz"))
			// The good token was not spent by the refusals, and works.
			if r := get(t, ep, "/resource", FormatAuthorization(good)); r.status != http.StatusOK {
				t.Fatalf("good token after refusals: %d %q", r.status, r.body)
			}
			wantHits++

			// A request with a body and no token is refused, and the connection (or the
			// next one) still serves.
			req, _ := http.NewRequest("POST", ep.url+"/upload", strings.NewReader(strings.Repeat("b", 256<<10)))
			resp, err := ep.client.Do(req)
			if err != nil {
				t.Fatalf("POST without a token: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("POST without a token: %d", resp.StatusCode)
			}

			// Skipped requests pass without a token.
			if r := get(t, ep, "/health"); r.status != http.StatusOK {
				t.Fatalf("skipped path: %d", r.status)
			}
			wantHits++
		})
	}
	if got := o.hits.Load(); got != wantHits {
		t.Errorf("origin saw %d requests, want %d: a refused request reached it", got, wantHits)
	}
}

// TestEndToEndStoreFull: once the current window's replay store is full, valid tokens
// of that window get 503 with Retry-After, and the origin is not reached; in the next
// window, a token of the full window gets a fresh challenge and a new token passes.
func TestEndToEndStoreFull(t *testing.T) {
	is := newTestIssuer(t, "issuer.example")
	o := newOrigin(t)
	m, err := New(Options{IssuerName: "issuer.example", IssuerKeys: []*rsa.PublicKey{is.pk()}, MaxNonces: 1, Window: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var clk atomic.Int64 // Unix seconds, read by the proxy's goroutines
	clk.Store(1_800_000_000)
	m.now = func() time.Time { return time.Unix(clk.Load(), 0) }
	ep := serveProxy(t, o, m)[0]

	w := challenged(t, get(t, ep, "/"))
	if r := get(t, ep, "/", FormatAuthorization(is.token(t, w.challenge))); r.status != http.StatusOK {
		t.Fatalf("first token: %d %q", r.status, r.body)
	}
	late := FormatAuthorization(is.token(t, w.challenge))
	r := get(t, ep, "/", late)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "60" {
		t.Fatalf("token past the store's bound: %d, Retry-After %q", r.status, r.header.Get("Retry-After"))
	}

	clk.Add(60)
	challenged(t, get(t, ep, "/", late))
	w = challenged(t, get(t, ep, "/"))
	if r := get(t, ep, "/", FormatAuthorization(is.token(t, w.challenge))); r.status != http.StatusOK {
		t.Fatalf("token of the next window: %d %q", r.status, r.body)
	}
	if o.hits.Load() != 2 {
		t.Fatalf("origin saw %d requests, want 2", o.hits.Load())
	}
}
