package accesslog_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/observe"
	"github.com/gotthard-proxy/gotthard/observe/accesslog"
	"github.com/gotthard-proxy/gotthard/proxy"
	"github.com/gotthard-proxy/gotthard/proxy/proxytest"
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

// TestProxy logs the requests of a real proxy in front of a real origin, over HTTP/1.1,
// h2c, and both over TLS, in both formats at once, and checks each line's fields.
func TestProxy(t *testing.T) {
	origin := proxytest.NewOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/missing":
			http.Error(w, "no such thing", http.StatusNotFound)
		default:
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, "got %d bytes", len(body))
		}
	}))
	originAddr := origin.Addr
	deadAddr := proxytest.DeadAddr(t) // connections there are refused
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
	svc := proxytest.NewService(t, "edge", &app{origin: originPeer, dead: deadPeer}, proxy.ServiceOptions{
		Observers: []observe.Observer{jsonLog, clfLog, done},
		Logger:    slog.New(slog.DiscardHandler),
	})
	cert := proxytest.NewCert(t)
	svc.AddTCP("127.0.0.1:0")
	svc.AddTLS("127.0.0.1:0", cert.Config)
	addrs := proxytest.ServeAll(t, svc)
	plainAddr, tlsAddr := addrs[0], addrs[1]

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
		client := proxytest.H1Client(t, nil)
		scheme, addr, proto := "http", plainAddr, "HTTP/1.1"
		switch over {
		case "h2c":
			client = proxytest.H2CClient(t)
			proto = "HTTP/2"
		case "h1+TLS":
			client = proxytest.H1Client(t, cert)
			scheme, addr = "https", tlsAddr
		case "h2+TLS":
			client = proxytest.H2Client(t, cert)
			scheme, addr, proto = "https", tlsAddr, "HTTP/2"
		}
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
		client.CloseIdleConnections()
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
		var got accesslog.JSONLine[time.Time]
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
