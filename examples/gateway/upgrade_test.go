package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	gtls "github.com/gotthard-proxy/gotthard/tls"
)

// upgradeOrigin is the origin of the upgrade tests: "/" answers at once, "/slow" after
// 800 ms, "/ws" echoes WebSocket messages.
type upgradeOrigin struct {
	srv  *http.Server
	addr string
}

func startUpgradeOrigin(t *testing.T) *upgradeOrigin {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "origin ok") })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(800 * time.Millisecond):
			io.WriteString(w, "slow ok")
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, msg); err != nil {
				return
			}
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &upgradeOrigin{srv: &http.Server{Handler: mux}, addr: ln.Addr().String()}
	go o.srv.Serve(ln)
	t.Cleanup(func() { o.srv.Close() })
	return o
}

// upProc is a gateway process whose output goes to a file: a process it re-executes
// inherits that file, where a pipe would keep the test waiting on the copy.
type upProc struct {
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
	err    error // valid once exited is closed
}

func startUpProc(t *testing.T, log string, args ...string) *upProc {
	t.Helper()
	f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := &upProc{cmd: exec.Command(binary, args...), log: log, exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
	})
	return p
}

func (p *upProc) output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// waitExit waits for the process to exit and fails unless it exited with status 0.
func (p *upProc) waitExit(t *testing.T, what string) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not exit", what)
	}
	if p.err != nil {
		t.Fatalf("%s exited with %v", what, p.err)
	}
}

// readPid returns the pid in the pid file, or 0.
func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// alive reports whether a process with pid exists.
func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// fdCount returns how many descriptors process pid has open, not counting files under
// skip nor descriptors the test process holds too.
func fdCount(t *testing.T, pid int, skip string) int {
	t.Helper()
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A descriptor the test process holds itself (the race detector's, say, opened
	// without close-on-exec after the first gateway started) is inherited by the
	// gateways started later: it is not theirs.
	ours := map[string]bool{}
	if own, err := os.ReadDir("/proc/self/fd"); err == nil {
		for _, e := range own {
			if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil {
				ours[target] = true
			}
		}
	}
	n := 0
	for _, e := range ents {
		if target, _ := os.Readlink(filepath.Join(dir, e.Name())); !strings.HasPrefix(target, skip+"/") && !ours[target] {
			n++
		}
	}
	return n
}

// fdList describes the descriptors of process pid, one per line.
func fdList(pid int) string {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, _ := os.ReadDir(dir)
	var b strings.Builder
	for _, e := range ents {
		target, _ := os.Readlink(filepath.Join(dir, e.Name()))
		fmt.Fprintf(&b, "%s -> %s\n", e.Name(), target)
	}
	return b.String()
}

// connCount counts the descriptors of process pid that are TCP connections: to the
// origin at originPort (idle pooled ones the origin may have closed, which the pool drops
// when it next looks at them) and from clients to one of the listening ports.
func connCount(t *testing.T, pid int, originPort string, listenPorts ...string) int {
	t.Helper()
	hexPort := func(p string) string {
		n, err := strconv.Atoi(p)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf(":%04X", n)
	}
	table, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[string]bool{}
	for _, line := range strings.Split(string(table), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) <= 9 || f[3] == "0A" { // not a listening socket
			continue
		}
		conn := strings.HasSuffix(f[2], hexPort(originPort))
		for _, p := range listenPorts {
			conn = conn || strings.HasSuffix(f[1], hexPort(p))
		}
		if conn {
			inodes["socket:["+f[9]+"]"] = true
		}
	}
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, _ := os.ReadDir(dir)
	n := 0
	for _, e := range ents {
		if target, _ := os.Readlink(filepath.Join(dir, e.Name())); inodes[target] {
			n++
		}
	}
	return n
}

// load runs one kind of client in a loop until stopped and counts its results.
type load struct {
	name     string
	ok, fail atomic.Int64
	mu       sync.Mutex
	errs     []string
}

func (l *load) run(stop <-chan struct{}, wg *sync.WaitGroup, c *http.Client, url string) {
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := c.Get(url)
			if err == nil {
				b, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				if rerr != nil || resp.StatusCode != 200 || string(b) != "origin ok" {
					err = fmt.Errorf("%d %q %v", resp.StatusCode, b, rerr)
				}
			}
			if err != nil {
				l.fail.Add(1)
				l.mu.Lock()
				if len(l.errs) < 5 {
					l.errs = append(l.errs, err.Error())
				}
				l.mu.Unlock()
				continue
			}
			l.ok.Add(1)
		}
	})
}

// TestUpgrade replaces a running gateway under load, first with a new binary started with
// -u and SIGQUIT (Pingora's way), then by re-execution on SIGUSR2, and finally stops the
// last one with SIGTERM. HTTP/1.1, h2c and HTTP/2 over TLS on TCP and HTTP/1.1 on a Unix
// socket keep going through it with no failed request; an in-flight request finishes on
// the old process; a WebSocket gets the grace period and then a 1001 close; TLS sessions
// resume on the new process from the shared ticket key file; the pid file follows; no
// descriptor leaks.
func TestUpgrade(t *testing.T) {
	if testing.Short() {
		t.Skip("runs several gateway processes for a few seconds")
	}
	origin := startUpgradeOrigin(t)
	dir := t.TempDir()
	certPEM, cert, key := certFiles(t, dir, "gw.test")
	tickets := filepath.Join(dir, "tickets")
	if err := gtls.RotateTicketKeyFile(tickets, 0); err != nil {
		t.Fatal(err)
	}
	pidFile, upSock, unixSock := filepath.Join(dir, "gw.pid"), filepath.Join(dir, "upgrade.sock"), filepath.Join(dir, "gw.sock")
	conf := filepath.Join(dir, "gw.yaml")
	yaml := fmt.Sprintf("version: 1\npid_file: %s\nupgrade_sock: %s\ngrace_period_seconds: 1\ngraceful_shutdown_timeout_seconds: 10\nupgrade_timeout_seconds: 10\n", pidFile, upSock)
	if err := os.WriteFile(conf, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	plain, secure := freeAddr(t), freeAddr(t)
	args := []string{"-c", conf, "-listen", plain, "-tls-listen", secure, "-cert", cert, "-key", key,
		"-ticket-key-file", tickets, "-unix", unixSock, "-upstream", origin.addr}

	old := startUpProc(t, filepath.Join(dir, "old.log"), args...)
	waitFor(t, "the first gateway's pid file", 10*time.Second, func() bool { return readPid(pidFile) == old.cmd.Process.Pid })
	waitAccepting(t, plain)
	_, originPort, _ := net.SplitHostPort(origin.addr)
	_, plainPort, _ := net.SplitHostPort(plain)
	_, securePort, _ := net.SplitHostPort(secure)
	// Files in dir (its logs, and the certificate and ticket key files, which the
	// gateway reads now and then to see whether they changed) come and go.
	ownFDs := func(pid int) int {
		return fdCount(t, pid, dir) - connCount(t, pid, originPort, plainPort, securePort)
	}
	// The fewest seen over a moment: at start, the gateway may be closing the
	// connection its readiness probe made.
	baseFDs := ownFDs(old.cmd.Process.Pid)
	for range 10 {
		time.Sleep(20 * time.Millisecond)
		baseFDs = min(baseFDs, ownFDs(old.cmd.Process.Pid))
	}
	baseList := fdList(old.cmd.Process.Pid)

	// Clients of every kind.
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	tlsConf := &tls.Config{RootCAs: roots, ServerName: "gw.test"}
	// Its own session cache: each process's ticket resumes on the next one.
	resumeConf := &tls.Config{RootCAs: roots, ServerName: "gw.test", ClientSessionCache: tls.NewLRUClientSessionCache(1)}
	h1 := &http.Transport{MaxIdleConnsPerHost: 4}
	h2c := &http.Transport{Protocols: new(http.Protocols)}
	h2c.Protocols.SetUnencryptedHTTP2(true) // h2c by prior knowledge
	h2tls := &http.Transport{TLSClientConfig: tlsConf.Clone(), ForceAttemptHTTP2: true}
	h1unix := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", unixSock)
	}}
	transports := []interface{ CloseIdleConnections() }{h1, h2c, h2tls, h1unix}
	defer func() {
		for _, tr := range transports {
			tr.CloseIdleConnections()
		}
	}()
	loads := []*load{{name: "HTTP/1.1"}, {name: "h2c"}, {name: "HTTP/2 over TLS"}, {name: "HTTP/1.1 over a Unix socket"}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad()
	for i, tr := range []http.RoundTripper{h1, h2c, h2tls, h1unix} {
		url := "http://" + plain + "/"
		if i == 2 {
			url = "https://" + secure + "/"
		}
		for range 2 {
			loads[i].run(stop, &wg, &http.Client{Transport: tr, Timeout: 10 * time.Second}, url)
		}
	}

	// A TLS session from the first process, to resume on the next ones.
	if tlsHandshake(t, secure, resumeConf) {
		t.Fatal("the first handshake resumed a session")
	}

	// Pingora's way: the new binary waits on the upgrade socket; SIGQUIT hands over.
	time.Sleep(200 * time.Millisecond)
	nu := startUpProc(t, filepath.Join(dir, "new.log"), append(args, "-u")...)
	waitFor(t, "the new gateway to wait on the upgrade socket", 10*time.Second, func() bool {
		return strings.Contains(nu.output(), "waiting for the running process")
	})
	slow := make(chan error, 1)
	go func() {
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + plain + "/slow")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != "slow ok" || !resp.Close {
				err = fmt.Errorf("%d %q, Connection: close %v", resp.StatusCode, b, resp.Close)
			}
		}
		slow <- err
	}()
	ws := dialWS(t, plain)
	time.Sleep(100 * time.Millisecond) // the slow request and the WebSocket reach the old process
	if err := old.cmd.Process.Signal(syscall.SIGQUIT); err != nil {
		t.Fatal(err)
	}
	quitAt := time.Now()
	waitFor(t, "the pid file to name the new gateway", 10*time.Second, func() bool { return readPid(pidFile) == nu.cmd.Process.Pid })
	// The WebSocket still works during the grace period, then gets a 1001 close.
	echo(t, ws, "during the grace period")
	checkGoingAway(t, ws, quitAt)
	if err := <-slow; err != nil {
		t.Fatalf("request in flight during the hand-over: %v", err)
	}
	old.waitExit(t, "the old gateway")
	for _, want := range []string{"server: handed the listeners over", "took="} {
		if !strings.Contains(old.output(), want) {
			t.Fatalf("old gateway's log lacks %q:\n%s", want, old.output())
		}
	}
	if !strings.Contains(nu.output(), "server: serving the listeners handed over") {
		t.Fatalf("new gateway's log:\n%s", nu.output())
	}
	if !tlsHandshake(t, secure, resumeConf) {
		t.Error("TLS session not resumed on the new gateway")
	}

	// Re-execution: SIGUSR2 makes the new gateway start its binary again.
	if err := nu.cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	var child int
	waitFor(t, "the pid file to name the re-executed gateway", 10*time.Second, func() bool {
		child = readPid(pidFile)
		return child != 0 && child != nu.cmd.Process.Pid
	})
	t.Cleanup(func() {
		if alive(child) {
			syscall.Kill(child, syscall.SIGKILL)
		}
	})
	nu.waitExit(t, "the gateway that re-executed itself")
	if !tlsHandshake(t, secure, resumeConf) {
		t.Error("TLS session not resumed on the re-executed gateway")
	}
	time.Sleep(300 * time.Millisecond) // load on the last process alone
	stopLoad()
	for _, l := range loads {
		if l.fail.Load() > 0 || l.ok.Load() == 0 {
			t.Errorf("%s: %d requests ok, %d failed: %v", l.name, l.ok.Load(), l.fail.Load(), l.errs)
		} else {
			t.Logf("%s: %d requests ok across two upgrades", l.name, l.ok.Load())
		}
	}

	// No descriptor leaked: besides its connections, the last process holds what the
	// first one held at its start.
	for _, tr := range transports {
		tr.CloseIdleConnections()
	}
	var fds int
	deadline := time.Now().Add(5 * time.Second)
	for {
		fds = ownFDs(child)
		if fds <= baseFDs || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if fds > baseFDs {
		t.Errorf("the last gateway holds %d descriptors besides its connections, the first held %d at its start.\nLast:\n%s\nFirst:\n%s", fds, baseFDs, fdList(child), baseList)
	}

	// SIGTERM: the same drain, then the pid file and the Unix socket file are removed.
	ws = dialWS(t, plain)
	if err := syscall.Kill(child, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	checkGoingAway(t, ws, time.Now())
	waitFor(t, "the last gateway to exit", 20*time.Second, func() bool { return !alive(child) })
	for _, f := range []string{pidFile, unixSock, upSock} {
		if _, err := os.Lstat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind: %v", f, err)
		}
	}
}

// TestUpgradeRefused: a new gateway that cannot listen on an endpoint of its own
// refuses the hand-over, and the old one serves on; so it does when nobody waits.
func TestUpgradeRefused(t *testing.T) {
	origin := startUpgradeOrigin(t)
	dir := t.TempDir()
	_, cert, key := certFiles(t, dir, "gw.test")
	pidFile, upSock := filepath.Join(dir, "gw.pid"), filepath.Join(dir, "upgrade.sock")
	conf := filepath.Join(dir, "gw.yaml")
	yaml := fmt.Sprintf("pid_file: %s\nupgrade_sock: %s\nupgrade_timeout_seconds: 2\n", pidFile, upSock)
	if err := os.WriteFile(conf, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	plain := freeAddr(t)
	old := startUpProc(t, filepath.Join(dir, "old.log"), "-c", conf, "-listen", plain, "-upstream", origin.addr)
	waitAccepting(t, plain)
	check := func(when string) {
		t.Helper()
		resp, err := http.Get("http://" + plain + "/")
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || readPid(pidFile) != old.cmd.Process.Pid {
			t.Fatalf("%s: status %d, pid file %d, want 200 and %d", when, resp.StatusCode, readPid(pidFile), old.cmd.Process.Pid)
		}
	}

	// Nobody waits on the upgrade socket.
	old.cmd.Process.Signal(syscall.SIGQUIT)
	waitFor(t, "the failure line", 10*time.Second, func() bool { return strings.Count(old.output(), "upgrade failed; still serving") == 1 })
	check("after SIGQUIT with nobody waiting")

	// The new one's TLS address is taken by someone else.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	nu := startUpProc(t, filepath.Join(dir, "new.log"), "-c", conf, "-listen", plain, "-upstream", origin.addr, "-u",
		"-tls-listen", busy.Addr().String(), "-cert", cert, "-key", key)
	waitFor(t, "the new gateway to wait", 10*time.Second, func() bool { return strings.Contains(nu.output(), "waiting for the running process") })
	old.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-nu.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the new gateway that cannot listen did not exit")
	}
	waitFor(t, "the second failure line", 10*time.Second, func() bool { return strings.Count(old.output(), "upgrade failed; still serving") == 2 })
	if !strings.Contains(old.output(), "refused the hand-over") {
		t.Errorf("the old gateway's log does not say the new one refused:\n%s", old.output())
	}
	check("after a refused hand-over")
	old.cmd.Process.Signal(syscall.SIGTERM)
	old.waitExit(t, "the old gateway")
}

// waitAccepting waits until addr accepts connections.
func waitAccepting(t *testing.T, addr string) {
	t.Helper()
	waitFor(t, "a gateway to accept on "+addr, 10*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

// tlsHandshake connects to addr, makes one request so that the session ticket arrives,
// and reports whether the handshake resumed a session.
func tlsHandshake(t *testing.T, addr string, conf *tls.Config) bool {
	t.Helper()
	conf = conf.Clone()
	conf.NextProtos = []string{"http/1.1"}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, conf)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n")
	b, _ := io.ReadAll(c)
	if !strings.Contains(string(b), "origin ok") {
		t.Fatalf("over TLS: %q", b)
	}
	return c.ConnectionState().DidResume
}

func dialWS(t *testing.T, addr string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	echo(t, c, "after the handshake")
	return c
}

func echo(t *testing.T, c *websocket.Conn, when string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte("ping")); err != nil {
		t.Fatalf("WebSocket write %s: %v", when, err)
	}
	if _, msg, err := c.Read(ctx); err != nil || string(msg) != "ping" {
		t.Fatalf("WebSocket echo %s: %q, %v", when, msg, err)
	}
}

// checkGoingAway waits for the WebSocket to be closed with 1001 and checks that it was
// not before the grace period (1s from since).
func checkGoingAway(t *testing.T, c *websocket.Conn, since time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _, err := c.Read(ctx)
	if got := websocket.CloseStatus(err); got != websocket.StatusGoingAway {
		t.Fatalf("WebSocket ended with %v (close status %d), want 1001", err, got)
	}
	if d := time.Since(since); d < 900*time.Millisecond {
		t.Fatalf("WebSocket closed %v after the signal, within the grace period of 1s", d)
	}
}
