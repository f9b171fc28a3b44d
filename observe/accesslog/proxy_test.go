package accesslog_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/observe"
	"github.com/gotthard-proxy/gotthard/observe/accesslog"
	"github.com/gotthard-proxy/gotthard/proxy"
	gtls "github.com/gotthard-proxy/gotthard/tls"
)

// app sends requests to origin, or to dead (a closed port) when they carry X-Dead.
type app struct {
	proxy.Phases[struct{}]
	origin, dead *proxy.Peer
}

func (*app) NewCtx() struct{} { return struct{}{} }

func (a *app) UpstreamPeer(_ context.Context, s *proxy.Session, _ struct{}) (*proxy.Peer, error) {
	if s.Request().Header.Get("X-Dead") != "" {
		return a.dead, nil
	}
	return a.origin, nil
}

// ended counts the RequestEnd events it sees and tells each on a channel.
type ended struct {
	observe.Base
	c chan struct{}
}

func (e *ended) RequestEnd(*observe.Request) { e.c <- struct{}{} }

// line is a JSON access log line.
type line struct {
	Time           time.Time `json:"time"`
	Service        string    `json:"service"`
	Client         string    `json:"client"`
	Method         string    `json:"method"`
	Target         string    `json:"target"`
	Proto          string    `json:"proto"`
	Host           string    `json:"host"`
	Status         int       `json:"status"`
	UpstreamStatus int       `json:"upstream_status"`
	Upstream       string    `json:"upstream"`
	BytesSent      int64     `json:"bytes_sent"`
	BytesReceived  int64     `json:"bytes_received"`
	DurationMS     float64   `json:"duration_ms"`
	TTFBMS         float64   `json:"ttfb_ms"`
	Attempts       int       `json:"attempts"`
	Reused         bool      `json:"reused"`
	Error          string    `json:"error"`
	ErrorType      string    `json:"error_type"`
	UserAgent      string    `json:"user_agent"`
	Referer        string    `json:"referer"`
}

// TestProxy logs the requests of a real proxy in front of a real origin, over HTTP/1.1,
// h2c, and both over TLS, in both formats at once, and checks each line's fields.
func TestProxy(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/missing":
			http.Error(w, "no such thing", http.StatusNotFound)
		default:
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, "got %d bytes", len(body))
		}
	}))
	defer origin.Close()
	originAddr := strings.TrimPrefix(origin.URL, "http://")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := ln.Addr().String()
	ln.Close() // nothing listens there now: connections are refused
	originPeer, err := proxy.NewPeer(originAddr)
	if err != nil {
		t.Fatal(err)
	}
	deadPeer, err := proxy.NewPeer(deadAddr)
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	jsonPath, clfPath := filepath.Join(dir, "access.json"), filepath.Join(dir, "access.log")
	jsonLog, err := accesslog.New(accesslog.Options{Path: jsonPath, Format: accesslog.JSON})
	if err != nil {
		t.Fatal(err)
	}
	defer jsonLog.Close()
	clfLog, err := accesslog.New(accesslog.Options{Path: clfPath, Format: accesslog.Combined, Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	defer clfLog.Close()
	done := &ended{c: make(chan struct{}, 100)}
	svc, err := proxy.NewService("edge", &app{origin: originPeer, dead: deadPeer}, proxy.ServiceOptions{
		Observers: []observe.Observer{jsonLog, clfLog, done},
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	certFile, roots := selfSigned(t)
	tcfg, err := gtls.New(gtls.Options{Certificates: []gtls.CertFile{certFile}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	pln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc.AddTCP(pln.Addr().String())
	svc.AddTLS(sln.Addr().String(), tcfg)
	served := make(chan error, 1)
	go func() { served <- svc.Serve([]net.Listener{pln, sln}) }()
	defer func() {
		svc.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	type want struct {
		method, target, proto string
		addr, over            string
		body                  string
		dead                  bool
		status, upstream      int
		sent                  int64
	}
	var wants []want
	for _, over := range []string{"h1", "h2c", "h1+TLS", "h2+TLS"} {
		tr := &http.Transport{}
		scheme, addr, proto := "http", pln.Addr().String(), "HTTP/1.1"
		switch over {
		case "h2c":
			tr.Protocols = new(http.Protocols)
			tr.Protocols.SetUnencryptedHTTP2(true)
			proto = "HTTP/2"
		case "h1+TLS":
			tr.TLSClientConfig = &tls.Config{RootCAs: roots}
			scheme, addr = "https", sln.Addr().String()
		case "h2+TLS":
			tr.TLSClientConfig = &tls.Config{RootCAs: roots}
			tr.ForceAttemptHTTP2 = true
			scheme, addr, proto = "https", sln.Addr().String(), "HTTP/2"
		}
		client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		for _, w := range []want{
			{method: "GET", target: "/a/b?x=1&y=%22q%22", status: 201, upstream: 201, sent: int64(len("got 0 bytes"))},
			{method: "POST", target: "/post", body: "hello", status: 201, upstream: 201, sent: int64(len("got 5 bytes"))},
			{method: "GET", target: "/missing", status: 404, upstream: 404, sent: int64(len("no such thing\n"))},
			{method: "GET", target: "/dead", dead: true, status: 502, sent: -1},
		} {
			w.proto, w.addr, w.over = proto, addr, over
			req, err := http.NewRequest(w.method, scheme+"://"+addr+w.target, strings.NewReader(w.body))
			if err != nil {
				t.Fatal(err)
			}
			if w.body == "" {
				req.Body = nil
			}
			req.Header.Set("User-Agent", `tester "1.0"`)
			req.Header.Set("Referer", "http://example.com/from")
			if w.dead {
				req.Header.Set("X-Dead", "1")
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s %s over %s: %v", w.method, w.target, over, err)
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("%s %s over %s: reading the body: %v", w.method, w.target, proto, err)
			}
			if w.sent < 0 {
				w.sent = n // the proxy's own error page
			} else if n != w.sent {
				t.Fatalf("%s %s over %s: got %d body bytes, want %d", w.method, w.target, proto, n, w.sent)
			}
			if resp.Proto != map[string]string{"HTTP/1.1": "HTTP/1.1", "HTTP/2": "HTTP/2.0"}[proto] {
				t.Fatalf("%s %s over %s: the client spoke %s", w.method, w.target, over, resp.Proto)
			}
			if resp.StatusCode != w.status {
				t.Fatalf("%s %s over %s: status %d, want %d", w.method, w.target, proto, resp.StatusCode, w.status)
			}
			select { // the line is written at RequestEnd, which may follow the response
			case <-done.c:
			case <-time.After(10 * time.Second):
				t.Fatalf("%s %s over %s: no RequestEnd", w.method, w.target, proto)
			}
			wants = append(wants, w)
		}
		tr.CloseIdleConnections()
	}
	if err := jsonLog.Close(); err != nil {
		t.Fatal(err)
	}
	if err := clfLog.Close(); err != nil {
		t.Fatal(err)
	}

	jsonLines := readLines(t, jsonPath)
	clfLines := readLines(t, clfPath)
	if len(jsonLines) != len(wants) || len(clfLines) != len(wants) {
		t.Fatalf("%d JSON lines and %d combined lines for %d requests", len(jsonLines), len(clfLines), len(wants))
	}
	reused := false
	for i, w := range wants {
		var got line
		dec := json.NewDecoder(strings.NewReader(jsonLines[i]))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&got); err != nil {
			t.Fatalf("JSON line %q: %v", jsonLines[i], err)
		}
		name := fmt.Sprintf("%s %s over %s", w.method, w.target, w.over)
		upstream := originAddr
		if w.dead {
			upstream = deadAddr
		}
		for _, c := range []struct {
			field     string
			got, want any
		}{
			{"service", got.Service, "edge"},
			{"client", got.Client, "127.0.0.1"},
			{"method", got.Method, w.method},
			{"target", got.Target, w.target},
			{"proto", got.Proto, w.proto},
			{"host", got.Host, w.addr},
			{"error_type", got.ErrorType, map[bool]string{true: proxy.ConnectRefused.String()}[w.dead]},
			{"status", got.Status, w.status},
			{"upstream_status", got.UpstreamStatus, w.upstream},
			{"upstream", got.Upstream, upstream},
			{"bytes_sent", got.BytesSent, w.sent},
			{"bytes_received", got.BytesReceived, int64(len(w.body))},
			{"user_agent", got.UserAgent, `tester "1.0"`},
			{"referer", got.Referer, "http://example.com/from"},
			{"error is empty", got.Error == "", !w.dead},
			{"ttfb_ms > 0", got.TTFBMS > 0, !w.dead},
		} {
			if c.got != c.want {
				t.Errorf("%s: %s = %v, want %v", name, c.field, c.got, c.want)
			}
		}
		if got.Attempts < 1 || (!w.dead && got.Attempts != 1) {
			t.Errorf("%s: attempts = %d", name, got.Attempts)
		}
		if got.DurationMS <= 0 || got.DurationMS < got.TTFBMS || got.DurationMS > 10_000 {
			t.Errorf("%s: duration_ms %v, ttfb_ms %v", name, got.DurationMS, got.TTFBMS)
		}
		if d := time.Since(got.Time); d < 0 || d > time.Minute {
			t.Errorf("%s: time %v is not now", name, got.Time)
		}
		reused = reused || got.Reused

		sent := "-"
		if w.sent > 0 {
			sent = fmt.Sprint(w.sent)
		}
		wantCLF := fmt.Sprintf(`127.0.0.1 - - [%s] "%s %s %s" %d %s "http://example.com/from" "tester \x221.0\x22"`,
			got.Time.UTC().Format("02/Jan/2006:15:04:05 -0700"), w.method, w.target, w.proto, w.status, sent)
		if clfLines[i] != wantCLF {
			t.Errorf("%s: combined line\n%s\nwant\n%s", name, clfLines[i], wantCLF)
		}
	}
	if !reused {
		t.Error("no request reused an upstream connection")
	}
	if jsonLog.Dropped() != 0 || clfLog.Dropped() != 0 {
		t.Errorf("dropped %d, %d lines", jsonLog.Dropped(), clfLog.Dropped())
	}
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and returns its files and
// a pool that trusts it.
func selfSigned(t *testing.T) (gtls.CertFile, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:        true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cf := gtls.CertFile{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")}
	for path, block := range map[string]*pem.Block{
		cf.CertFile: {Type: "CERTIFICATE", Bytes: der},
		cf.KeyFile:  {Type: "PRIVATE KEY", Bytes: kder},
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	return cf, roots
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if !strings.HasSuffix(s, "\n") {
		t.Fatalf("%s does not end with a newline", path)
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}
