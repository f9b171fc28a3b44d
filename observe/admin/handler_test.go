package admin_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/observe"
	"github.com/gotthard-proxy/gotthard/observe/admin"
)

// balancer is a fixed observe.Balancer.
type balancer struct {
	name     string
	backends []observe.Backend
}

func (b *balancer) Name() string { return b.name }
func (b *balancer) AppendBackends(dst []observe.Backend) []observe.Backend {
	return append(dst, b.backends...)
}

// serve runs an admin service made from opts on a loopback listener until the end of
// the test, and returns it with its base URL.
func serve(t *testing.T, opts admin.Options) (*admin.Service, string) {
	t.Helper()
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	svc, err := admin.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Serve([]net.Listener{ln}) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := svc.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-ctx.Done():
			t.Error("Serve did not return after Shutdown")
		}
	})
	return svc, "http://" + ln.Addr().String()
}

// client returns an HTTP client whose idle connections close at the end of the test.
func client(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// get fetches url with the given Authorization field (none if empty).
func get(t *testing.T, c *http.Client, url, authorization string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// selfSigned returns a certificate for names, valid for days more days.
func selfSigned(t *testing.T, cn string, days int, names ...string) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(0x2a),
		Subject:      pkix.Name{CommonName: cn},
		Issuer:       pkix.Name{CommonName: cn},
		DNSNames:     names,
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Duration(days) * 24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    admin.Options
		wantErr string
		is      error
	}{
		{name: "default", opts: admin.Options{}},
		{name: "loopback v6", opts: admin.Options{Addr: "[::1]:0"}},
		{name: "localhost", opts: admin.Options{Addr: "localhost:0"}},
		{name: "127/8", opts: admin.Options{Addr: "127.0.0.2:0"}},
		{name: "public with token", opts: admin.Options{Addr: "0.0.0.0:6199", Token: "s3cret"}},
		{name: "every interface", opts: admin.Options{Addr: ":6199"}, wantErr: "set Options.Token", is: admin.ErrNotLoopback},
		{name: "public", opts: admin.Options{Addr: "192.0.2.1:6199"}, wantErr: "not a loopback address", is: admin.ErrNotLoopback},
		{name: "no port", opts: admin.Options{Addr: "127.0.0.1"}, wantErr: "Options.Addr"},
		{name: "token with space", opts: admin.Options{Token: "a b"}, wantErr: "Options.Token"},
		{name: "nil balancer", opts: admin.Options{Balancers: []observe.Balancer{nil}}, wantErr: "Options.Balancers[0]"},
		{name: "nil certificates", opts: admin.Options{Certificates: []admin.CertificateSource{{Name: "x"}}}, wantErr: "Options.Certificates[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc, err := admin.New(tc.opts)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if svc.Name() != "admin" || len(svc.Endpoints()) != 1 || svc.Endpoints()[0].Network() != "tcp" {
					t.Errorf("Name %q, Endpoints %v", svc.Name(), svc.Endpoints())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("err = %v, not %v", err, tc.is)
			}
		})
	}
	svc, err := admin.New(admin.Options{Name: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	if got := svc.Endpoints()[0].String(); got != admin.DefaultAddr || svc.Name() != "ops" {
		t.Errorf("Endpoints()[0] = %q, Name = %q", got, svc.Name())
	}
}

// feed runs n requests of service through stats by hand.
func feed(stats *admin.Stats, service string, n int, status int) {
	for range n {
		now := time.Now()
		r := &observe.Request{Service: service, Start: now.Add(-2 * time.Millisecond)}
		stats.RequestStart(r)
		a := &observe.Attempt{Peer: "127.0.0.1:1", Start: r.Start, Reused: true, Connected: r.Start}
		stats.AttemptStart(r, a)
		stats.UpstreamRequest(r, a, nil)
		stats.AttemptEnd(r, a)
		r.End, r.Status, r.Attempts = now, status, 1
		stats.RequestEnd(r)
	}
}

func TestStatusJSON(t *testing.T) {
	stats := admin.NewStats()
	feed(stats, "gateway", 9, 200)
	feed(stats, "gateway", 1, 503)
	cert := selfSigned(t, "gw.example", 30, "gw.example", "www.gw.example")
	_, base := serve(t, admin.Options{
		Stats:   stats,
		Version: "v9.9.9",
		Balancers: []observe.Balancer{&balancer{name: "origins", backends: []observe.Backend{
			{Addr: "10.0.0.1:80", Weight: 2, Healthy: true, Available: true, InFlight: 3, Latency: 1500 * time.Microsecond},
			{Addr: "10.0.0.2:80", Weight: 1, Healthy: false},
		}}},
		Certificates: []admin.CertificateSource{{Name: "gw-tls", Certificates: func() []*tls.Certificate { return []*tls.Certificate{cert} }}},
		Listeners: func() map[string][]string {
			return map[string][]string{"gateway": {"127.0.0.1:6188"}, "idle": {"127.0.0.1:6189"}}
		},
	})
	c := client(t)
	resp, body := get(t, c, base+"/status.json", "")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	var st admin.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Services) != 2 || st.Services[0].Name != "gateway" || st.Services[1].Name != "idle" {
		t.Fatalf("services: %+v", st.Services)
	}
	gw := st.Services[0]
	if gw.RequestsTotal != 10 || gw.ErrorsTotal != 1 || gw.ByClass["2xx"] != 9 || gw.ByClass["5xx"] != 1 ||
		gw.AttemptsReused != 10 || gw.ReuseRatio != 1 || !slices.Equal(gw.Listeners, []string{"127.0.0.1:6188"}) {
		t.Errorf("gateway: %+v", gw)
	}
	if gw.LatencySamples != 10 || gw.P50ms < 1.75 || gw.P50ms > 2.25 {
		t.Errorf("gateway latency: %d samples, p50 %v ms; want 10, about 2", gw.LatencySamples, gw.P50ms)
	}
	if idle := st.Services[1]; idle.RequestsTotal != 0 || !slices.Equal(idle.Listeners, []string{"127.0.0.1:6189"}) {
		t.Errorf("idle: %+v", idle)
	}
	if len(st.Balancers) != 1 || st.Balancers[0].Name != "origins" || len(st.Balancers[0].Backends) != 2 {
		t.Fatalf("balancers: %+v", st.Balancers)
	}
	if b := st.Balancers[0].Backends[0]; b != (admin.BackendStatus{Addr: "10.0.0.1:80", Weight: 2, Healthy: true, Available: true, InFlight: 3, EWMAms: 1.5}) {
		t.Errorf("backend 0: %+v", b)
	}
	if b := st.Balancers[0].Backends[1]; b.Healthy || b.Available {
		t.Errorf("backend 1: %+v", b)
	}
	if len(st.Certificates) != 1 {
		t.Fatalf("certificates: %+v", st.Certificates)
	}
	ce := st.Certificates[0]
	if ce.Source != "gw-tls" || ce.Subject != "gw.example" || ce.Issuer != "gw.example" ||
		!slices.Equal(ce.SANs, []string{"gw.example", "www.gw.example", "127.0.0.1"}) ||
		ce.DaysLeft < 29.9 || ce.DaysLeft > 30 || ce.Serial != "2a" {
		t.Errorf("certificate: %+v", ce)
	}
	if st.Version.Version != "v9.9.9" || st.Version.GoVersion == "" || st.UptimeSeconds <= 0 ||
		time.Since(st.GeneratedAt) > time.Minute {
		t.Errorf("version %+v, uptime %v, generated_at %v", st.Version, st.UptimeSeconds, st.GeneratedAt)
	}
	for _, secret := range []string{"PRIVATE", "private", "key", "\"D\""} {
		if strings.Contains(body, secret) {
			t.Errorf("status.json mentions %q:\n%s", secret, body)
		}
	}
}

// TestStatusSchema pins the names of /status.json's fields: the schema is stable.
func TestStatusSchema(t *testing.T) {
	stats := admin.NewStats()
	feed(stats, "gateway", 1, 200)
	stats.HealthChange(observe.Health{Balancer: "b", Backend: "x:1", Cause: "active-check", Err: errors.New("refused"), Time: time.Now()})
	cert := selfSigned(t, "a", 1)
	_, base := serve(t, admin.Options{
		Stats:        stats,
		Balancers:    []observe.Balancer{&balancer{name: "b", backends: []observe.Backend{{Addr: "x:1"}}}},
		Certificates: []admin.CertificateSource{{Name: "c", Certificates: func() []*tls.Certificate { return []*tls.Certificate{cert} }}},
	})
	_, body := get(t, client(t), base+"/status.json", "")
	var doc map[string]any
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	keys := func(v any) []string {
		m, _ := v.(map[string]any)
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		return ks
	}
	first := func(v any) any { return v.([]any)[0] }
	for _, tc := range []struct {
		where string
		v     any
		want  string
	}{
		{"document", doc, "balancers certificates generated_at health_events services started_at uptime_seconds version"},
		{"version", doc["version"], "arch go_version gotthard os program vcs_modified vcs_revision vcs_time version"},
		{"service", first(doc["services"]), "attempts_new attempts_reused by_class bytes_received bytes_sent " +
			"connections connections_total error_rate_10s error_rate_1m errors_total in_flight latency_samples " +
			"listeners name p50_ms p90_ms p99_ms requests_total retries_total reuse_ratio rps_10s rps_1m " +
			"tls_failures_total upstream_connect_errors_total upstream_connections_total"},
		{"by_class", first(doc["services"]).(map[string]any)["by_class"], "1xx 2xx 3xx 4xx 5xx other"},
		{"balancer", first(doc["balancers"]), "backends name"},
		{"backend", first(first(doc["balancers"]).(map[string]any)["backends"]), "addr available ejected ewma_ms healthy in_flight weight"},
		{"certificate", first(doc["certificates"]), "days_left issuer not_after not_before sans serial source subject_cn"},
		{"health event", first(doc["health_events"]), "available backend balancer cause error healthy time"},
	} {
		if got := strings.Join(keys(tc.v), " "); got != tc.want {
			t.Errorf("%s keys:\n got %s\nwant %s", tc.where, got, tc.want)
		}
	}
}

func TestEmptyLists(t *testing.T) {
	_, base := serve(t, admin.Options{})
	_, body := get(t, client(t), base+"/status.json", "")
	for _, f := range []string{`"services": []`, `"balancers": []`, `"certificates": []`, `"health_events": []`} {
		if !strings.Contains(body, f) {
			t.Errorf("want %s in\n%s", f, body)
		}
	}
}

func TestRoutes(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "up 1\n") })
	for _, tc := range []struct {
		name    string
		opts    admin.Options
		auth    string
		path    string
		status  int
		body    string
		headers map[string]string
	}{
		{name: "healthz", path: "/healthz", status: 200, body: "ok\n"},
		{name: "metrics none", path: "/metrics", status: 404},
		{name: "metrics", opts: admin.Options{Metrics: metrics}, path: "/metrics", status: 200, body: "up 1\n"},
		{name: "unknown", path: "/nope", status: 404},
		{name: "page", path: "/", status: 200, headers: map[string]string{
			"Content-Type":            "text/html; charset=utf-8",
			"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
			"X-Content-Type-Options":  "nosniff",
		}},
		{name: "script", path: "/status.js", status: 200, headers: map[string]string{"Content-Type": "text/javascript; charset=utf-8"}},
		{name: "style", path: "/status.css", status: 200, headers: map[string]string{"Content-Type": "text/css; charset=utf-8"}},

		{name: "token healthz", opts: admin.Options{Token: "t0k"}, path: "/healthz", status: 200, body: "ok\n"},
		{name: "token page", opts: admin.Options{Token: "t0k"}, path: "/", status: 200},
		{name: "token script", opts: admin.Options{Token: "t0k"}, path: "/status.js", status: 200},
		{name: "token status none", opts: admin.Options{Token: "t0k"}, path: "/status.json", status: 401,
			headers: map[string]string{"WWW-Authenticate": `Bearer realm="gotthard admin"`}},
		{name: "token status wrong", opts: admin.Options{Token: "t0k"}, auth: "Bearer t0K", path: "/status.json", status: 401},
		{name: "token status prefix", opts: admin.Options{Token: "t0k"}, auth: "Bearer t0", path: "/status.json", status: 401},
		{name: "token status basic", opts: admin.Options{Token: "t0k"}, auth: "Basic dDBr", path: "/status.json", status: 401},
		{name: "token status", opts: admin.Options{Token: "t0k"}, auth: "Bearer t0k", path: "/status.json", status: 200},
		{name: "token status lower case", opts: admin.Options{Token: "t0k"}, auth: "bearer t0k", path: "/status.json", status: 200},
		{name: "token metrics none", opts: admin.Options{Token: "t0k", Metrics: metrics}, path: "/metrics", status: 401},
		{name: "token metrics", opts: admin.Options{Token: "t0k", Metrics: metrics}, auth: "Bearer t0k", path: "/metrics", status: 200, body: "up 1\n"},
		{name: "token unknown", opts: admin.Options{Token: "t0k"}, path: "/nope", status: 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, base := serve(t, tc.opts)
			resp, body := get(t, client(t), base+tc.path, tc.auth)
			if resp.StatusCode != tc.status {
				t.Fatalf("%s: %s, want %d", tc.path, resp.Status, tc.status)
			}
			if tc.body != "" && body != tc.body {
				t.Errorf("body %q, want %q", body, tc.body)
			}
			for k, v := range tc.headers {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
		})
	}
}

// The page is self-contained: nothing it loads comes from elsewhere.
func TestPageSelfContained(t *testing.T) {
	_, base := serve(t, admin.Options{})
	c := client(t)
	for _, p := range []string{"/", "/status.js", "/status.css"} {
		_, body := get(t, c, base+p, "")
		for _, bad := range []string{"http://", "https://", "//cdn", "innerHTML", "eval(", "<script>", " style=", " onclick="} {
			if strings.Contains(body, bad) {
				t.Errorf("%s contains %q", p, bad)
			}
		}
	}
	_, page := get(t, c, base+"/", "")
	for _, want := range []string{`<script src="status.js" defer></script>`, `<link rel="stylesheet" href="status.css">`, `id="services"`, `id="backends"`, `id="certificates"`, `id="uptime"`, `id="version"`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
}

// The handler can be mounted under a prefix of the caller's server.
func TestHandlerUnderPrefix(t *testing.T) {
	svc, err := admin.New(admin.Options{Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/admin/", http.StripPrefix("/admin", svc.Handler()))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	defer func() {
		srv.Close()
		<-done
	}()
	c := client(t)
	u := (&url.URL{Scheme: "http", Host: ln.Addr().String(), Path: "/admin/status.json"}).String()
	if resp, _ := get(t, c, u, "Bearer t"); resp.StatusCode != 200 {
		t.Errorf("%s: %s", u, resp.Status)
	}
	if resp, _ := get(t, c, u, ""); resp.StatusCode != 401 {
		t.Errorf("%s without token: %s", u, resp.Status)
	}
}

func TestServeLifecycle(t *testing.T) {
	svc, err := admin.New(admin.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ln1, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Serve([]net.Listener{ln1, ln2}) }()
	c := client(t)
	for _, ln := range []net.Listener{ln1, ln2} {
		if resp, _ := get(t, c, "http://"+ln.Addr().String()+"/healthz", ""); resp.StatusCode != 200 {
			t.Fatalf("%v: %s", ln.Addr(), resp.Status)
		}
	}
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after Close")
	}
	// The listeners are closed.
	if _, err := net.DialTimeout("tcp", ln1.Addr().String(), time.Second); err == nil {
		t.Error("listener still accepts after Close")
	}
	if err := svc.Serve(nil); err == nil {
		t.Error("a second Serve succeeded")
	}
}
