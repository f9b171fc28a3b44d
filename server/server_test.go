package server

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func tcpEndpoint() Endpoint { return Endpoint{Network: "tcp", Address: "127.0.0.1:0"} }

func TestGracefulShutdownDrainsInFlight(t *testing.T) {
	svc := newHTTPService("web", tcpEndpoint())
	srv := newServer(t, Options{NoSignals: true}, svc)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := started(t, ctx, srv)

	addrs := srv.Addrs("web")
	if len(addrs) != 1 {
		t.Fatalf("Addrs(web) = %v, want one address", addrs)
	}
	addr := addrs[0].String()
	c := client("tcp", addr)
	if body, err := get(c, "/"); err != nil || body != "hello web" {
		t.Fatalf("GET / = %q, %v", body, err)
	}

	slow := asyncGet(c, "/slow")
	waitFor(t, svc.slowStarted, "slow request")
	cancel()
	waitFor(t, svc.shutdownStarted, "graceful shutdown")

	if conn, err := net.Dial("tcp", addr); err == nil {
		conn.Close()
		t.Fatal("new connection accepted after shutdown started")
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial after shutdown: %v, want connection refused", err)
	}
	select {
	case <-srv.Done():
		t.Fatal("Run returned while a request was in flight")
	default:
	}

	close(svc.release)
	if r := <-slow; r.err != nil || r.body != "slow done" {
		t.Fatalf("in-flight request = %q, %v; want it to finish", r.body, r.err)
	}
	if err := runResult(t, errc); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if got := srv.Addrs("missing"); got != nil {
		t.Errorf("Addrs(missing) = %v, want nil", got)
	}
}

func TestFastShutdownCutsInFlight(t *testing.T) {
	svc := newHTTPService("web", tcpEndpoint())
	srv := newServer(t, Options{NoSignals: true}, svc)
	errc := started(t, context.Background(), srv)
	c := client("tcp", srv.Addrs("web")[0].String())

	slow := asyncGet(c, "/slow")
	waitFor(t, svc.slowStarted, "slow request")
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if r := <-slow; r.err == nil {
		t.Fatalf("in-flight request succeeded with %q; want it cut", r.body)
	}
	if err := runResult(t, errc); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

func TestShutdownTimeoutCutsInFlight(t *testing.T) {
	svc := newHTTPService("web", tcpEndpoint())
	srv := newServer(t, Options{NoSignals: true}, svc)
	errc := started(t, context.Background(), srv)
	c := client("tcp", srv.Addrs("web")[0].String())

	slow := asyncGet(c, "/slow")
	waitFor(t, svc.slowStarted, "slow request")
	ctx, cancel := context.WithCancel(context.Background())
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(ctx) }()
	waitFor(t, svc.shutdownStarted, "graceful shutdown")
	cancel()
	if err := <-shut; !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown = %v, want context.Canceled", err)
	}
	if r := <-slow; r.err == nil {
		t.Fatalf("in-flight request succeeded with %q; want it cut", r.body)
	}
	if err := runResult(t, errc); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

// TestSignals sends signals to the test process itself, which is safe only while the
// Server's handlers are installed: between Ready and the end of Run, which the in-flight
// request holds back.
func TestSignals(t *testing.T) {
	svc := newHTTPService("web", tcpEndpoint())
	srv := newServer(t, Options{}, svc)
	errc := started(t, context.Background(), srv)
	c := client("tcp", srv.Addrs("web")[0].String())

	slow := asyncGet(c, "/slow")
	waitFor(t, svc.slowStarted, "slow request")
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, svc.shutdownStarted, "graceful shutdown on SIGTERM")
	// A second signal during the graceful shutdown makes it fast.
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if r := <-slow; r.err == nil {
		t.Fatalf("in-flight request succeeded with %q; want it cut by the second signal", r.body)
	}
	if err := runResult(t, errc); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

// TestSIGQUITWithoutNewProcessKeepsServing: SIGQUIT asks for a hand-over; with no new
// process waiting on the upgrade socket it fails, and the server goes on serving.
func TestSIGQUITWithoutNewProcessKeepsServing(t *testing.T) {
	cfg := DefaultConfig()
	cfg.UpgradeSock = filepath.Join(t.TempDir(), "nobody.sock")
	svc := newHTTPService("web", tcpEndpoint())
	var logs syncBuffer
	srv := newServer(t, Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, svc)
	errc := started(t, context.Background(), srv)
	c := client("tcp", srv.Addrs("web")[0].String())
	if err := syscall.Kill(os.Getpid(), syscall.SIGQUIT); err != nil {
		t.Fatal(err)
	}
	waitLog(t, &logs, "upgrade failed; still serving")
	if body, err := get(c, "/"); err != nil || body != "hello web" {
		t.Fatalf("GET after a failed hand-over = %q, %v", body, err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := runResult(t, errc); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

func TestUnixSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "gt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "gw.sock")

	// Leave a stale socket file behind, as a crashed process would.
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}

	svc := newHTTPService("uds", Endpoint{Network: "unix", Address: path}, tcpEndpoint())
	srv := newServer(t, Options{NoSignals: true}, svc)
	errc := started(t, context.Background(), srv)
	if addrs := srv.Addrs("uds"); len(addrs) != 2 || addrs[0].String() != path {
		t.Fatalf("Addrs(uds) = %v, want [%s, tcp]", addrs, path)
	}
	for _, c := range []struct{ network, addr string }{{"unix", path}, {"tcp", srv.Addrs("uds")[1].String()}} {
		if body, err := get(client(c.network, c.addr), "/"); err != nil || body != "hello uds" {
			t.Fatalf("GET over %s = %q, %v", c.network, body, err)
		}
	}

	// A second server must not take over a socket in use.
	other := newServer(t, Options{NoSignals: true}, newHTTPService("other", Endpoint{Network: "unix", Address: path}))
	if err := other.Run(); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("Run on a socket in use = %v, want an error saying so", err)
	}

	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := runResult(t, errc); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("socket file after exit: %v, want it removed", err)
	}
}

func TestUnixSocketPathNotASocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, Options{NoSignals: true}, newHTTPService("uds", Endpoint{Network: "unix", Address: path}))
	if err := srv.Run(); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Run = %v, want a not-a-socket error", err)
	}
	if data, err := os.ReadFile(path); err != nil || string(data) != "data" {
		t.Fatalf("regular file touched: %q, %v", data, err)
	}
}

func TestPidFile(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "gotthard.pid")
	cfg := DefaultConfig()
	cfg.PidFile = pidFile
	srv := newServer(t, Options{Config: cfg, NoSignals: true}, newHTTPService("web", tcpEndpoint()))
	errc := started(t, context.Background(), srv)

	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(os.Getpid()) + "\n"; string(data) != want {
		t.Fatalf("pid file = %q, want %q", data, want)
	}
	info, err := os.Stat(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o644 {
		t.Errorf("pid file mode = %v, want 0644", perm)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := runResult(t, errc); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pidFile); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("pid file after exit: %v, want it removed", err)
	}
}

func TestBackgroundServiceCanceledAfterDrain(t *testing.T) {
	web := newHTTPService("web", tcpEndpoint())
	bg := newBGService("health")
	srv := newServer(t, Options{NoSignals: true}, web, bg)
	errc := started(t, context.Background(), srv)
	waitFor(t, bg.started, "background service start")
	c := client("tcp", srv.Addrs("web")[0].String())

	slow := asyncGet(c, "/slow")
	waitFor(t, web.slowStarted, "slow request")
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()
	waitFor(t, web.shutdownStarted, "graceful shutdown")
	select {
	case <-bg.canceled:
		t.Fatal("background service canceled while requests were draining")
	default:
	}
	close(web.release)
	if r := <-slow; r.err != nil {
		t.Fatal(r.err)
	}
	waitFor(t, bg.canceled, "background service cancellation")
	if err := runResult(t, errc); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
}

func TestFailingServiceStopsServer(t *testing.T) {
	web := newHTTPService("web", tcpEndpoint())
	bg := newBGService("discovery")
	srv := newServer(t, Options{NoSignals: true}, web, bg)
	errc := started(t, context.Background(), srv)
	waitFor(t, bg.started, "background service start")

	boom := errors.New("boom")
	bg.fail <- boom
	err := runResult(t, errc)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), `"discovery"`) {
		t.Fatalf("Run = %v, want the service's error naming it", err)
	}
	waitFor(t, web.shutdownStarted, "shutdown of the other services")
}

func TestListenErrorStartsNothing(t *testing.T) {
	first := newHTTPService("first", tcpEndpoint())
	bg := newBGService("bg")
	srv := newServer(t, Options{NoSignals: true}, first, bg, newHTTPService("second", Endpoint{Network: "tcp", Address: "256.0.0.1:0"}))
	err := srv.Run()
	if err == nil || !strings.Contains(err.Error(), `"second"`) {
		t.Fatalf("Run = %v, want a listen error naming the service", err)
	}
	select {
	case <-srv.Ready():
		t.Fatal("Ready closed after a failed start")
	case <-bg.started:
		t.Fatal("background service started after a failed start")
	default:
	}
	if err := srv.Run(); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("second Run = %v, want ErrServerClosed", err)
	}
}

func TestListenSeam(t *testing.T) {
	var got []Endpoint
	listen := func(ep Endpoint) (net.Listener, error) {
		got = append(got, ep)
		return net.Listen("tcp", "127.0.0.1:0")
	}
	ep := Endpoint{Network: "tcp", Address: "inherited:6188"}
	srv := newServer(t, Options{NoSignals: true, Listen: listen}, newHTTPService("web", ep))
	errc := started(t, context.Background(), srv)
	if len(got) != 1 || got[0] != ep {
		t.Fatalf("Listen called with %v, want [%v]", got, ep)
	}
	if body, err := get(client("tcp", srv.Addrs("web")[0].String()), "/"); err != nil || body != "hello web" {
		t.Fatalf("GET = %q, %v", body, err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := runResult(t, errc); err != nil {
		t.Fatal(err)
	}
}

func TestGracePeriodKeepsAccepting(t *testing.T) {
	cfg := DefaultConfig()
	cfg.GracePeriodSeconds = 3600
	web := newHTTPService("web", tcpEndpoint())
	srv := newServer(t, Options{Config: cfg, NoSignals: true}, web)
	ctx, cancel := context.WithCancel(context.Background())
	errc := started(t, ctx, srv)
	cancel()
	// During the grace period the listener still serves; Close cuts the period short.
	if body, err := get(client("tcp", srv.Addrs("web")[0].String()), "/"); err != nil || body != "hello web" {
		t.Fatalf("GET during grace period = %q, %v", body, err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := runResult(t, errc); err != nil {
		t.Fatal(err)
	}
}

type nameOnly string

func (n nameOnly) Name() string { return string(n) }

func TestAdd(t *testing.T) {
	srv := newServer(t, Options{NoSignals: true})
	if err := srv.Add(nameOnly("x")); err == nil {
		t.Error("Add accepted a service that is neither listening nor background")
	}
	if err := srv.Add(newBGService("")); err == nil {
		t.Error("Add accepted an empty name")
	}
	if err := srv.Add(newBGService("a")); err != nil {
		t.Fatal(err)
	}
	if err := srv.Add(newHTTPService("a", tcpEndpoint())); err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Errorf("Add of a duplicate name = %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Add(newBGService("b")); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Add after Close = %v, want ErrServerClosed", err)
	}
	if err := srv.Run(); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Run after Close = %v, want ErrServerClosed", err)
	}
	waitFor(t, srv.Done(), "Done of a closed server")
}

func TestRunWithoutServices(t *testing.T) {
	srv := newServer(t, Options{NoSignals: true})
	if err := srv.Run(); !errors.Is(err, ErrNoServices) {
		t.Fatalf("Run = %v, want ErrNoServices", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.GracefulShutdownTimeoutSeconds = -1
	_, err := New(Options{Config: cfg})
	if err == nil || !strings.Contains(err.Error(), "graceful_shutdown_timeout_seconds") {
		t.Fatalf("New = %v, want an error naming the key", err)
	}
}

func TestConfigDurations(t *testing.T) {
	c := &Config{}
	if got := c.GracefulShutdownTimeout(); got != DefaultGracefulShutdownTimeout {
		t.Errorf("zero timeout = %v, want default", got)
	}
	c.GracefulShutdownTimeoutSeconds, c.GracePeriodSeconds = 5, 2
	if c.GracefulShutdownTimeout() != 5*time.Second || c.GracePeriod() != 2*time.Second {
		t.Errorf("durations = %v, %v", c.GracefulShutdownTimeout(), c.GracePeriod())
	}
}
