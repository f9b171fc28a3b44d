package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gotthard-proxy/gotthard/observe/admin"
)

// chromium returns the path of Debian's chromium. Without it the test is skipped, but
// not in CI (CI set), where the browser test must run.
func chromium(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("chromium not installed (apt-get install chromium); CI runs this test")
		}
		t.Fatalf("CI: chromium is needed for the status page test: %v", err)
	}
	return p
}

// browser starts a headless chromium for the test and returns a context of a tab in
// it; the browser is ended at the end of the test. Messages the page writes to its
// console are collected: errors() returns them.
func browser(t *testing.T) (ctx context.Context, errs func() []string) {
	t.Helper()
	path := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // tests run as root
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 900),
	)
	// Everything the browser does is bounded by this deadline; each step has its own.
	base, cancelBase := context.WithTimeout(context.Background(), 2*time.Minute)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(base, opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)

	var (
		mu       sync.Mutex
		messages []string
	)
	consoleCtx, stopConsole := context.WithCancel(ctx)
	console := chromedp.Console(consoleCtx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for m, err := range console {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == "error" || m.Type == "warning" {
				mu.Lock()
				messages = append(messages, fmt.Sprintf("%s: %s (%s:%d)", m.Type, m.Text, m.URL, m.Line))
				mu.Unlock()
			}
		}
	})
	t.Cleanup(func() {
		stopConsole()
		wg.Wait()
		cancelTab()
		cancelAlloc() // waits for the browser process to end
		cancelBase()
	})
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), messages...)
	}
}

// step runs one browser action bounded by d.
func step[T any](t *testing.T, ctx context.Context, d time.Duration, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
	return v
}

// fetchStatus gets /status.json with the token.
func fetchStatus(t *testing.T, base, token string) *admin.Status {
	t.Helper()
	resp, body := get(t, client(t), base+"/status.json", "Bearer "+token)
	if resp.StatusCode != 200 {
		t.Fatalf("status.json: %s", resp.Status)
	}
	var st admin.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	return &st
}

func findService(t *testing.T, st *admin.Status, name string) admin.ServiceStatus {
	t.Helper()
	for _, s := range st.Services {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no service %q in status.json", name)
	return admin.ServiceStatus{}
}

// pageFields reads the data-value of every field of the service's row.
const pageFieldsJS = `(() => {
	const out = {};
	for (const td of document.querySelectorAll('[data-service=%q] [data-field]')) out[td.dataset.field] = td.dataset.value;
	return out;
})()`

// pageView is what a test reads of the page, the numbers as the page holds them.
type pageView struct {
	fields map[string]string
}

func (p pageView) num(t *testing.T, field string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(p.fields[field], 64)
	if err != nil {
		t.Fatalf("page field %s = %q: %v", field, p.fields[field], err)
	}
	return v
}

// statusPageCheck is what checkStatusPage needs to know of the set-up.
type statusPageCheck struct {
	base, token string
	service     string
	listener    string
	// backends maps a "balancer/addr" to the health its cell must show.
	backends map[string]string
	// certSource names a certificate source with one certificate.
	certSource string
	// healthEvent, if not empty, is a backend with a health change on the page.
	healthEvent string
}

// checkStatusPage loads the status page while traffic flows and checks what it shows
// against /status.json fetched before and after, then saves a screenshot.
func checkStatusPage(t *testing.T, c statusPageCheck) {
	ctx, consoleErrors := browser(t)

	step(t, ctx, 30*time.Second, "open the page", chromedp.Navigate(c.base+"/#token="+c.token))

	// Wait until the page shows requests of the service, and a rate (which counts
	// whole seconds: the first second of traffic shows none yet).
	ready := fmt.Sprintf(`(() => {
		const v = f => {
			const td = document.querySelector('[data-service=%q] [data-field="' + f + '"]');
			return td === null ? 0 : Number(td.dataset.value);
		};
		return v("requests_total") > 0 && v("rps_10s") > 0;
	})()`, c.service)
	step(t, ctx, 20*time.Second, "wait for numbers", chromedp.Poll[bool](ready, chromedp.WithPollingInterval(50*time.Millisecond)))

	// The token left the address bar and stayed with the script.
	if hash := step(t, ctx, 5*time.Second, "read location.hash", chromedp.Evaluate[string](`location.hash`)); hash != "" {
		t.Errorf("location.hash = %q after load, want the token taken out", hash)
	}

	// before: a status.json fetched before the page's next update; after: one
	// fetched after the page showed it. Counts that only grow must lie between.
	before := fetchStatus(t, c.base, c.token)
	newer := fmt.Sprintf(`Date.parse(document.body.dataset.generatedAt || 0) > Date.parse(%q)`, before.GeneratedAt.Format(time.RFC3339Nano))
	step(t, ctx, 10*time.Second, "wait for an update after the first fetch", chromedp.Poll[bool](newer, chromedp.WithPollingInterval(20*time.Millisecond)))
	fields := step(t, ctx, 5*time.Second, "read the service row", chromedp.Evaluate[map[string]string](fmt.Sprintf(pageFieldsJS, c.service)))
	after := fetchStatus(t, c.base, c.token)
	page := pageView{fields}
	b, a := findService(t, before, c.service), findService(t, after, c.service)
	for _, f := range []struct {
		field     string
		lo, hi    uint64
		mustGrow0 bool
	}{
		{"requests_total", b.RequestsTotal, a.RequestsTotal, true},
		{"errors_total", b.ErrorsTotal, a.ErrorsTotal, false},
		{"retries_total", b.RetriesTotal, a.RetriesTotal, false},
	} {
		v := page.num(t, f.field)
		if v < float64(f.lo) || v > float64(f.hi) {
			t.Errorf("page %s = %v, want within [%d, %d] of the status.json fetched before and after", f.field, v, f.lo, f.hi)
		}
		if f.mustGrow0 && v == 0 {
			t.Errorf("page %s = 0", f.field)
		}
	}
	t.Logf("page: requests %s, rps_10s %s, p50 %s ms, p99 %s ms, reuse %s; status.json before %d, after %d",
		fields["requests_total"], fields["rps_10s"], fields["p50_ms"], fields["p99_ms"], fields["reuse_ratio"],
		b.RequestsTotal, a.RequestsTotal)
	for _, f := range []string{"rps_10s", "rps_1m", "p50_ms", "p99_ms"} {
		if page.num(t, f) <= 0 {
			t.Errorf("page %s = %s, want > 0 while traffic flows", f, fields[f])
		}
	}
	if p50, p99 := page.num(t, "p50_ms"), page.num(t, "p99_ms"); p50 > p99 {
		t.Errorf("page p50 %v ms > p99 %v ms", p50, p99)
	}
	if r := page.num(t, "reuse_ratio"); r < 0 || r > 1 {
		t.Errorf("page reuse_ratio = %v", r)
	}
	if c.listener != "" && fields["listeners"] != c.listener {
		t.Errorf("page listeners = %q, want %q", fields["listeners"], c.listener)
	}

	// The backends' health cells.
	for key, want := range c.backends {
		bal, addr, _ := strings.Cut(key, "/")
		js := fmt.Sprintf(`(() => {
			const td = document.querySelector('[data-balancer=%q][data-backend=%q] [data-field="health"]');
			return td === null ? "" : td.textContent;
		})()`, bal, addr)
		if got := step(t, ctx, 5*time.Second, "read a health cell", chromedp.Evaluate[string](js)); got != want {
			t.Errorf("backend %s health cell = %q, want %q", key, got, want)
		}
	}

	if c.healthEvent != "" {
		js := fmt.Sprintf(`document.querySelectorAll('#health-events [data-backend=%q]').length`, c.healthEvent)
		if n := step(t, ctx, 5*time.Second, "count health changes", chromedp.Evaluate[int](js)); n < 1 {
			t.Errorf("no health change of %s on the page", c.healthEvent)
		}
	}

	// The certificate's days left, the Go version and the uptime.
	if c.certSource != "" {
		js := fmt.Sprintf(`document.querySelector('[data-source=%q] [data-field="days_left"]').dataset.value`, c.certSource)
		days, err := strconv.ParseFloat(step(t, ctx, 5*time.Second, "read days left", chromedp.Evaluate[string](js)), 64)
		if err != nil || days <= 0 {
			t.Errorf("certificate days left %v (%v)", days, err)
		}
	}
	goVersion := step(t, ctx, 5*time.Second, "read the Go version", chromedp.Evaluate[string](`document.querySelector('#version [data-field="go_version"]').textContent`))
	if goVersion != after.Version.GoVersion {
		t.Errorf("page Go version %q, status.json %q", goVersion, after.Version.GoVersion)
	}
	up, err := strconv.ParseFloat(step(t, ctx, 5*time.Second, "read the uptime", chromedp.Evaluate[string](`document.getElementById("uptime").dataset.value`)), 64)
	if err != nil || up <= 0 || up > after.UptimeSeconds {
		t.Errorf("page uptime %v s (%v), status.json after %v s", up, err, after.UptimeSeconds)
	}
	if state := step(t, ctx, 5*time.Second, "read the state", chromedp.Evaluate[string](`document.getElementById("conn-state").dataset.state`)); state != "live" {
		t.Errorf("page state %q, want live", state)
	}

	shot := step(t, ctx, 20*time.Second, "screenshot", chromedp.FullScreenshot(100))
	dir := os.Getenv("GOTTHARD_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "admin-status-page.png")
	if len(shot) == 0 {
		t.Error("empty screenshot")
	} else if err := os.WriteFile(file, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", file, len(shot))

	// No script error, no CSP violation, no failed load.
	for _, m := range consoleErrors() {
		t.Errorf("browser console: %s", m)
	}
}

// A page opened without the token says so instead of showing numbers.
func TestStatusPageNeedsToken(t *testing.T) {
	_, base := serve(t, admin.Options{Token: "s3cret", Stats: admin.NewStats()})
	ctx, _ := browser(t)
	step(t, ctx, 30*time.Second, "open the page", chromedp.Navigate(base+"/"))
	js := `(() => { const e = document.getElementById("conn-state"); return e.dataset.state === "error" && e.textContent.includes("#token="); })()`
	step(t, ctx, 10*time.Second, "wait for the unauthorized message", chromedp.Poll[bool](js, chromedp.WithPollingInterval(50*time.Millisecond)))
}
