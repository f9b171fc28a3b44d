package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fetch fetches url and returns its status and body.
func fetch(t *testing.T, url string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestDemoModeObservability: the demo turns on the admin service and the access log;
// the printed status page serves, /metrics and /status.json count the requests made, and
// each request has its combined line.
func TestDemoModeObservability(t *testing.T) {
	p := startGateway(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0")
	re := regexp.MustCompile(`curl -i (http://127\.0\.0\.1:\d+/)\n.*Status page: (http://127\.0\.0\.1:\d+/)`)
	var m []string
	waitFor(t, "the status page line", 10*time.Second, func() bool {
		select {
		case <-p.exited:
			t.Fatalf("gateway exited: %v\n%s", p.err, p.stderr.String())
		default:
		}
		m = re.FindStringSubmatch(p.stdout.String())
		return m != nil
	})
	proxyURL, adminURL := m[1], m[2]
	for range 3 {
		if code, _ := fetch(t, proxyURL, "User-Agent", "obs-test/1"); code != 200 {
			t.Fatalf("proxy: %d", code)
		}
	}
	if code, page := fetch(t, adminURL); code != 200 || !strings.Contains(page, "<html") {
		t.Fatalf("status page: %d %.200q", code, page)
	}
	code, metrics := fetch(t, adminURL+"metrics")
	if code != 200 || !strings.Contains(metrics, `gotthard_requests_total{method="GET",service="gateway",status_class="2xx"} 3`) {
		t.Fatalf("/metrics: %d\n%s", code, metrics)
	}
	code, body := fetch(t, adminURL+"status.json")
	var st struct {
		Services []struct {
			Name          string `json:"name"`
			RequestsTotal int    `json:"requests_total"`
		} `json:"services"`
	}
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil || len(st.Services) != 1 ||
		st.Services[0].Name != "gateway" || st.Services[0].RequestsTotal != 3 {
		t.Fatalf("/status.json: %d %v\n%s", code, err, body)
	}
	line := regexp.MustCompile(`(?m)^127\.0\.0\.1 - - \[[^]]+\] "GET / HTTP/1\.1" 200 \d+ "-" "obs-test/1"$`)
	waitFor(t, "three access log lines", 10*time.Second, func() bool { // (flushed every second)
		return len(line.FindAllString(p.stderr.String(), -1)) == 3
	})
}

// TestObservabilityFlags: -trace stdout carries the client's trace to the origin and
// writes the spans; -access-log json goes to -access-log-file, reopened on SIGUSR1 after
// a rename; all of it flushed by a graceful stop.
func TestObservabilityFlags(t *testing.T) {
	origin := startRecorder(t, nil)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "access.log")
	gw := startProxying(t, origin.ln.Addr().String(), "-trace", "stdout", "-access-log", "json", "-access-log-file", logPath)
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	if code, body := fetch(t, "http://"+gw.addr+"/a", "traceparent", "00-"+trace+"-00f067aa0ba902b7-01"); code != 200 || body != "origin" {
		t.Fatalf("%d %q", code, body)
	}
	got, _ := origin.since(0)
	tp := regexp.MustCompile(`(?i)traceparent: 00-` + trace + `-([0-9a-f]{16})-01`).FindStringSubmatch(got)
	if tp == nil || tp[1] == "00f067aa0ba902b7" {
		t.Fatalf("the origin got no traceparent of the client's trace with the proxy's span:\n%s", got)
	}
	waitFor(t, "the access log file", 10*time.Second, func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Count(string(b), "\n") == 1
	})
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	gw.cmd.Process.Signal(syscall.SIGUSR1)
	waitFor(t, "the reopened access log", 10*time.Second, func() bool {
		_, err := os.Stat(logPath)
		return err == nil
	})
	if code, _ := fetch(t, "http://"+gw.addr+"/b"); code != 200 {
		t.Fatalf("%d", code)
	}
	gw.cmd.Process.Signal(syscall.SIGTERM)
	gw.waitCleanExit(t, "SIGTERM")

	for name, target := range map[string]string{logPath + ".1": "/a", logPath: "/b"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var rec struct {
			Target   string `json:"target"`
			Status   int    `json:"status"`
			Upstream string `json:"upstream"`
		}
		if err := json.Unmarshal(b, &rec); err != nil || rec.Target != target || rec.Status != 200 || rec.Upstream != origin.ln.Addr().String() {
			t.Fatalf("%s: %v %+v\n%s", name, err, rec, b)
		}
	}
	// The spans, written at the stop: the server span of /a in the client's trace, and
	// its client span, whose id the origin got.
	out := gw.stdout.String()
	if !strings.Contains(out, `"TraceID":"`+trace+`"`) || !strings.Contains(out, `"SpanID":"`+tp[1]+`"`) {
		t.Fatalf("spans on standard output:\n%s", out)
	}
}

// TestTraceNever: -trace never samples nothing but still tells the origin, in the
// client's trace, not to sample.
func TestTraceNever(t *testing.T) {
	origin := startRecorder(t, nil)
	gw := startProxying(t, origin.ln.Addr().String(), "-trace", "never")
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	if code, body := fetch(t, "http://"+gw.addr+"/a", "traceparent", "00-"+trace+"-00f067aa0ba902b7-01"); code != 200 || body != "origin" {
		t.Fatalf("%d %q", code, body)
	}
	got, _ := origin.since(0)
	tp := regexp.MustCompile(`(?i)traceparent: 00-` + trace + `-([0-9a-f]{16})-00\r?\n`).FindStringSubmatch(got)
	if tp == nil || tp[1] == "00f067aa0ba902b7" || tp[1] == "0000000000000000" {
		t.Fatalf("the origin got no unsampled traceparent of the client's trace:\n%s", got)
	}
}

// TestAdminToken: the token from $GOTTHARD_ADMIN_TOKEN guards /metrics and
// /status.json; /healthz stays open.
func TestAdminToken(t *testing.T) {
	origin := startRecorder(t, nil)
	ln := freeAddr(t)
	gw := startGatewayEnv(t, []string{"GOTTHARD_ADMIN_TOKEN=s3cret"},
		"-listen", freeAddr(t), "-upstream", origin.ln.Addr().String(), "-admin", ln)
	gw.waitAccepting(t, ln)
	if code, _ := fetch(t, "http://"+ln+"/healthz"); code != 200 {
		t.Fatalf("/healthz: %d", code)
	}
	if code, _ := fetch(t, "http://"+ln+"/metrics"); code != 401 {
		t.Fatalf("/metrics without the token: %d", code)
	}
	if code, body := fetch(t, "http://"+ln+"/status.json", "Authorization", "Bearer s3cret"); code != 200 || !strings.Contains(body, `"services"`) {
		t.Fatalf("/status.json with the token: %d %.200s", code, body)
	}
}

// TestAdminStatsOff: with -admin-stats=false the admin service serves the Prometheus
// metrics of the requests, and /status.json counts none (no Stats observes them).
func TestAdminStatsOff(t *testing.T) {
	origin := startRecorder(t, nil)
	ln, listen := freeAddr(t), freeAddr(t)
	gw := startGateway(t, "-listen", listen, "-upstream", origin.ln.Addr().String(), "-admin", ln, "-admin-stats=false")
	gw.waitAccepting(t, ln)
	gw.waitAccepting(t, listen)
	if code, _ := fetch(t, "http://"+listen+"/x"); code != 200 {
		t.Fatalf("request: %d", code)
	}
	if code, body := fetch(t, "http://"+ln+"/metrics"); code != 200 || !strings.Contains(body, "gotthard_requests_total") {
		t.Fatalf("/metrics: %d %.300s", code, body)
	}
	code, body := fetch(t, "http://"+ln+"/status.json")
	if code != 200 || !strings.Contains(body, `"requests_total": 0,`) {
		t.Fatalf("/status.json: %d %.500s", code, body)
	}
}
