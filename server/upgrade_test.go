package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/upgrade"
)

// upgradeConfig returns a configuration whose upgrade socket is in a new directory.
func upgradeConfig(t *testing.T) *Config {
	cfg := DefaultConfig()
	cfg.UpgradeSock = filepath.Join(t.TempDir(), "upgrade.sock")
	return cfg
}

// waitSocket waits until a process listens on the Unix socket at path.
func waitSocket(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nobody listens on %s", path)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startNew runs a Server started with -u in a goroutine and waits until it listens on its
// upgrade socket. The returned channel yields Run's result.
func startNew(t *testing.T, srv *Server) <-chan error {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- srv.Run() }()
	waitSocket(t, srv.cfg.UpgradeSock)
	t.Cleanup(func() { srv.Close() })
	return errc
}

// TestHandOver hands the listeners of a running Server (TCP on an ephemeral port and a
// Unix socket) to a second one in the same process: the new one serves on the same
// addresses, the old one finishes its in-flight request and returns, and no connection
// is refused at any point.
func TestHandOver(t *testing.T) {
	cfg := upgradeConfig(t)
	sock := filepath.Join(t.TempDir(), "gw.sock")
	eps := []Endpoint{tcpEndpoint(), {Network: "unix", Address: sock}}
	oldSvc := newHTTPService("old", eps...)
	old := newServer(t, Options{Config: cfg, NoSignals: true}, oldSvc)
	oldErr := started(t, context.Background(), old)
	tcpAddr := old.Addrs("old")[0].String()

	// Clients keep connecting through the whole hand-over: no connection may be refused.
	// (Requests on accepted connections are the service's: net/http's Shutdown drops one
	// whose head it reads after Shutdown began, which the proxy does not.)
	stop := make(chan struct{})
	var accepted, refused atomic.Int64
	var lastErr atomic.Value
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			c, err := net.DialTimeout("tcp", tcpAddr, wait)
			if err != nil {
				refused.Add(1)
				lastErr.Store(err.Error())
				continue
			}
			accepted.Add(1)
			c.Write([]byte("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"))
			c.SetReadDeadline(time.Now().Add(wait))
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	slow := asyncGet(client("tcp", tcpAddr), "/slow")
	waitFor(t, oldSvc.slowStarted, "slow request")

	newSvc := newHTTPService("new", eps...)
	var logs syncBuffer
	nu := newServer(t, Options{Config: cfg, NoSignals: true, Upgrade: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, newSvc)
	newErr := startNew(t, nu)

	pid, err := old.HandOver(context.Background())
	if err != nil {
		t.Fatalf("HandOver: %v", err)
	}
	if pid != os.Getpid() {
		t.Fatalf("HandOver = pid %d, want %d", pid, os.Getpid())
	}
	waitFor(t, nu.Ready(), "the new server")
	if got := nu.Addrs("new")[0].String(); got != tcpAddr {
		t.Fatalf("new server listens on %s, want the handed-over %s", got, tcpAddr)
	}
	if !strings.Contains(logs.String(), "server: serving the listeners handed over") {
		t.Fatalf("no hand-over line in the new server's log:\n%s", logs.String())
	}
	// The old server drains: its in-flight request finishes, then Run returns.
	close(oldSvc.release)
	if r := <-slow; r.err != nil || r.body != "slow done" {
		t.Fatalf("in-flight request = %q, %v; want it to finish on the old server", r.body, r.err)
	}
	if err := runResult(t, oldErr); err != nil {
		t.Fatalf("old Run = %v", err)
	}
	for _, ep := range []Endpoint{{Network: "tcp", Address: tcpAddr}, eps[1]} {
		if body, err := get(client(ep.Network, ep.Address), "/"); err != nil || body != "hello new" {
			t.Fatalf("GET %s after the hand-over = %q, %v; want the new server", ep, body, err)
		}
	}
	if _, err := os.Lstat(cfg.UpgradeSock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("upgrade socket left behind: %v", err)
	}
	close(stop)
	<-loadDone
	if refused.Load() > 0 || accepted.Load() == 0 {
		t.Fatalf("connections during the hand-over: %d accepted, %d refused (last: %v)", accepted.Load(), refused.Load(), lastErr.Load())
	}

	// The socket file is the new server's now: it removes it when it stops.
	if err := nu.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := runResult(t, newErr); err != nil {
		t.Fatalf("new Run = %v", err)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Unix socket file left behind by the last server: %v", err)
	}
}

// TestHandOverNewEndpointsAndDropped: the new configuration adds an endpoint, which is
// listened afresh, and drops one, which is closed.
func TestHandOverNewEndpointsAndDropped(t *testing.T) {
	cfg := upgradeConfig(t)
	old := newServer(t, Options{Config: cfg, NoSignals: true}, newHTTPService("old", tcpEndpoint(), Endpoint{Network: "tcp", Address: "127.0.0.2:0"}))
	oldErr := started(t, context.Background(), old)
	kept, dropped := old.Addrs("old")[0].String(), old.Addrs("old")[1].String()

	nu := newServer(t, Options{Config: cfg, NoSignals: true, Upgrade: true}, newHTTPService("new", Endpoint{Network: "tcp", Address: kept}, Endpoint{Network: "tcp", Address: "127.0.0.3:0"}))
	newErr := startNew(t, nu)
	if _, err := old.HandOver(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, nu.Ready(), "the new server")
	if err := runResult(t, oldErr); err != nil {
		t.Fatal(err)
	}
	addrs := nu.Addrs("new")
	if addrs[0].String() != kept {
		t.Fatalf("new server's first endpoint on %s, want the handed-over %s", addrs[0], kept)
	}
	for _, a := range []string{kept, addrs[1].String()} {
		if body, err := get(client("tcp", a), "/"); err != nil || body != "hello new" {
			t.Fatalf("GET %s = %q, %v", a, body, err)
		}
	}
	if c, err := net.DialTimeout("tcp", dropped, time.Second); err == nil {
		c.Close()
		t.Fatalf("the dropped endpoint %s still accepts", dropped)
	}
	nu.Close()
	runResult(t, newErr)
}

// TestHandOverFailureKeepsServing: without a new process, or with one that cannot bind
// its own endpoints, the hand-over fails with one log line and the old server serves on.
func TestHandOverFailureKeepsServing(t *testing.T) {
	cfg := upgradeConfig(t)
	var logs syncBuffer
	old := newServer(t, Options{Config: cfg, NoSignals: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, newHTTPService("old", tcpEndpoint()))
	oldErr := started(t, context.Background(), old)
	addr := old.Addrs("old")[0].String()
	check := func(what string) {
		t.Helper()
		if body, err := get(client("tcp", addr), "/"); err != nil || body != "hello old" {
			t.Fatalf("GET after %s = %q, %v; want the old server", what, body, err)
		}
	}

	if _, err := old.HandOver(context.Background()); err == nil || !strings.Contains(err.Error(), "no new process waits") {
		t.Fatalf("HandOver with nobody waiting = %v", err)
	}
	check("a hand-over to nobody")

	// The new process takes the socket but fails to listen on its other endpoint.
	nu := newServer(t, Options{Config: cfg, NoSignals: true, Upgrade: true},
		newHTTPService("new", Endpoint{Network: "tcp", Address: addr}, Endpoint{Network: "tcp", Address: "256.0.0.1:0"}))
	newErr := startNew(t, nu)
	_, err := old.HandOver(context.Background())
	if !errors.Is(err, upgrade.ErrRefused) {
		t.Fatalf("HandOver to a failing process = %v, want ErrRefused", err)
	}
	if err := runResult(t, newErr); err == nil {
		t.Fatal("the failing new server's Run = nil")
	}
	check("a refused hand-over")
	if n := strings.Count(logs.String(), "upgrade failed; still serving"); n != 2 {
		t.Fatalf("%d failure lines for two failed hand-overs:\n%s", n, logs.String())
	}
	if err := old.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := runResult(t, oldErr); err != nil {
		t.Fatal(err)
	}
}

// TestUpgradeWaitEnds: a process started with -u that nobody hands anything to gives up
// after upgrade_timeout_seconds, and Close ends its wait at once.
func TestUpgradeWaitEnds(t *testing.T) {
	cfg := upgradeConfig(t)
	cfg.UpgradeTimeoutSeconds = 1
	nu := newServer(t, Options{Config: cfg, NoSignals: true, Upgrade: true}, newHTTPService("new", tcpEndpoint()))
	if err := nu.Run(); err == nil || !strings.Contains(err.Error(), "no running process handed over") {
		t.Fatalf("Run = %v, want the wait's timeout", err)
	}

	cfg = upgradeConfig(t)
	nu = newServer(t, Options{Config: cfg, NoSignals: true, Upgrade: true}, newHTTPService("new", tcpEndpoint()))
	errc := startNew(t, nu)
	nu.Close()
	if err := runResult(t, errc); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Run after Close = %v, want ErrServerClosed", err)
	}
}

// streamService is an httpService that records its CloseStreams calls.
type streamService struct {
	*httpService
	closed chan struct{}
	calls  atomic.Int32
}

func newStreamService(name string, eps ...Endpoint) *streamService {
	return &streamService{httpService: newHTTPService(name, eps...), closed: make(chan struct{})}
}

func (s *streamService) CloseStreams() {
	if s.calls.Add(1) == 1 {
		close(s.closed)
	}
}

// TestCloseStreamsAfterGrace: a graceful shutdown calls CloseStreams once the grace
// period has passed, while Shutdown waits.
func TestCloseStreamsAfterGrace(t *testing.T) {
	cfg := DefaultConfig()
	cfg.GracePeriodSeconds = 1
	svc := newStreamService("web", tcpEndpoint())
	srv := newServer(t, Options{Config: cfg, NoSignals: true}, svc)
	errc := started(t, context.Background(), srv)
	slow := asyncGet(client("tcp", srv.Addrs("web")[0].String()), "/slow")
	waitFor(t, svc.slowStarted, "slow request")
	begun := time.Now()
	go srv.Shutdown(context.Background())
	waitFor(t, svc.closed, "CloseStreams")
	if d := time.Since(begun); d < time.Second {
		t.Fatalf("CloseStreams called %v after the signal, before the grace period of 1s", d)
	}
	close(svc.release)
	if r := <-slow; r.err != nil {
		t.Fatal(r.err)
	}
	if err := runResult(t, errc); err != nil {
		t.Fatal(err)
	}
	if n := svc.calls.Load(); n != 1 {
		t.Fatalf("CloseStreams called %d times, want once", n)
	}
}

// TestNotify: with $NOTIFY_SOCKET set, the server tells systemd READY=1 with its main pid
// once it serves, RELOADING=1 when a hand-over starts, READY=1 again when it failed, and
// STOPPING=1 when it shuts down.
func TestNotify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	next := func() string {
		t.Helper()
		buf := make([]byte, 4096)
		pc.SetReadDeadline(time.Now().Add(wait))
		n, err := pc.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(buf[:n])
	}
	srv := newServer(t, Options{Config: upgradeConfig(t), NoSignals: true}, newHTTPService("web", tcpEndpoint()))
	errc := started(t, context.Background(), srv)
	if got, want := next(), "MAINPID="+strconv.Itoa(os.Getpid())+"\nREADY=1"; got != want {
		t.Fatalf("at start: %q, want %q", got, want)
	}
	if _, err := srv.HandOver(context.Background()); err == nil {
		t.Fatal("HandOver to nobody succeeded")
	}
	if got := next(); !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Fatalf("at the hand-over: %q", got)
	}
	if got := next(); got != "READY=1" {
		t.Fatalf("after the failed hand-over: %q", got)
	}
	srv.Shutdown(context.Background())
	if got := next(); got != "STOPPING=1" {
		t.Fatalf("at shutdown: %q", got)
	}
	if err := runResult(t, errc); err != nil {
		t.Fatal(err)
	}
}
