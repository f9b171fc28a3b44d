package upgrade

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
)

// EnvFD is the environment variable through which a re-executing process tells the
// new one which inherited descriptor is its end of the hand-over socket.
const EnvFD = "GOTTHARD_UPGRADE_FD"

// A Child is a new process started by [Spawn], with the running process's end of its
// hand-over socket.
type Child struct {
	// Conn is the socket to [Send] the listeners on.
	Conn *net.UnixConn
	cmd  *exec.Cmd
}

// Spawn starts the binary at path with args (not counting the program name) and env,
// giving it one end of a new socket pair as descriptor 3 and EnvFD=3, with standard
// output and error those of this process. The new process takes its listeners with
// [Inherited] and [Receive]; this one sends them on Child.Conn with [Send]. This is the
// re-execution mode, for programs without a supervisor that starts the new binary.
func Spawn(path string, args, env []string) (*Child, error) {
	// Hold ForkLock so that no other process started meanwhile inherits the pair.
	syscall.ForkLock.RLock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("upgrade: socket pair: %w", err)
	}
	ours := os.NewFile(uintptr(fds[0]), "upgrade socket")
	theirs := os.NewFile(uintptr(fds[1]), "upgrade socket")
	defer theirs.Close()
	nc, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		return nil, fmt.Errorf("upgrade: socket pair: %w", err)
	}
	cmd := exec.Command(path, args...)
	cmd.Env = append(env, EnvFD+"=3")
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	cmd.ExtraFiles = []*os.File{theirs}
	if err := cmd.Start(); err != nil {
		nc.Close()
		return nil, fmt.Errorf("upgrade: start %s: %w", path, err)
	}
	return &Child{Conn: nc.(*net.UnixConn), cmd: cmd}, nil
}

// PID returns the new process's id.
func (c *Child) PID() int { return c.cmd.Process.Pid }

// Abandon ends a new process that failed to take over: it kills it if it still runs and
// waits for it, so that it leaves no zombie behind.
func (c *Child) Abandon() {
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
}

// Release lets a new process that serves run on its own; this process no longer waits
// for it.
func (c *Child) Release() error { return c.cmd.Process.Release() }

// Inherited returns the hand-over socket a re-executing parent passed through [EnvFD], or
// nil if this process was not started by [Spawn]. It removes EnvFD from the environment,
// so that processes this one starts do not see it.
func Inherited() (*net.UnixConn, error) {
	v, ok := os.LookupEnv(EnvFD)
	if !ok {
		return nil, nil
	}
	os.Unsetenv(EnvFD)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("upgrade: %s=%q is not an inherited descriptor", EnvFD, v)
	}
	f := os.NewFile(uintptr(fd), "upgrade socket")
	defer f.Close()
	nc, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("upgrade: %s=%d: %w", EnvFD, fd, err)
	}
	uc, ok := nc.(*net.UnixConn)
	if !ok {
		nc.Close()
		return nil, errors.New("upgrade: " + EnvFD + " is not a Unix socket")
	}
	return uc, nil
}
