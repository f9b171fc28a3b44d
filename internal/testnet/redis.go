package testnet

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Redis is a redis-server of a test's own: on a free loopback port, without
// persistence, stopped by its PID when the test ends.
type Redis struct {
	t       testing.TB
	bin     string
	port    string
	dir     string
	args    []string
	cmd     *exec.Cmd
	drained chan struct{} // closed once the server's output is read to its end
}

// StartRedis starts redis-server with args added to its command line and waits until it
// accepts connections. It skips the test when redis-server is not installed (the Debian
// package redis-server; CI installs it).
func StartRedis(t testing.TB, args ...string) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed (Debian package redis-server)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	r := &Redis{t: t, bin: bin, port: port, dir: t.TempDir(), args: args}
	r.Start()
	t.Cleanup(r.Kill)
	return r
}

// Addr returns the server's address, host:port.
func (r *Redis) Addr() string { return "127.0.0.1:" + r.port }

// Start starts the server (again, after Kill) on its port and waits until it accepts
// connections.
func (r *Redis) Start() {
	r.t.Helper()
	args := append([]string{"--port", r.port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", r.dir, "--daemonize", "no", "--logfile", ""}, r.args...)
	cmd := exec.Command(r.bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	ready, drained := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(drained)
		sc := bufio.NewScanner(out)
		var once sync.Once
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Ready to accept connections") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	r.cmd, r.drained = cmd, drained
	select {
	case <-ready:
	case <-drained:
		cmd.Wait()
		r.cmd = nil
		r.t.Fatal("redis-server exited before it was ready")
	case <-time.After(15 * time.Second):
		r.t.Fatal("redis-server not ready within 15s")
	}
}

// Kill stops the server at once, as a crash would, and waits for it to exit. It does
// nothing when the server is not running.
func (r *Redis) Kill() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.drained
	r.cmd.Wait()
	r.cmd = nil
}

// Signal sends sig to the running server (SIGSTOP and SIGCONT make it stall and go on).
func (r *Redis) Signal(sig os.Signal) error {
	if r.cmd == nil {
		return os.ErrProcessDone
	}
	return r.cmd.Process.Signal(sig)
}
