package server

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// daemonEnv marks the environment of the process started by daemonize, so that it runs
// the server instead of starting yet another copy of itself.
const daemonEnv = "GOTTHARD_DAEMON_CHILD"

// isDaemonFlag reports whether arg is one of the forms of the -d/--daemon flag.
func isDaemonFlag(arg string) bool {
	name, _, _ := strings.Cut(arg, "=")
	switch name {
	case "-d", "--d", "-daemon", "--daemon":
		return true
	}
	return false
}

// daemonArgs returns args without the daemon flags, up to a "--" terminator.
func daemonArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if !isDaemonFlag(a) {
			out = append(out, a)
		}
	}
	return out
}

// daemonize starts a copy of the running binary with the same arguments minus -d/--daemon,
// in a new session, with standard input from /dev/null and standard output and error
// appended to errorLog (or /dev/null if empty). Go cannot fork a running runtime, so
// re-execution stands in for the classic fork-and-setsid. It returns the child's pid once
// the child has started.
func daemonize(errorLog string) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("server: daemon: %w", err)
	}
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, fmt.Errorf("server: daemon: %w", err)
	}
	defer devNull.Close()
	out := devNull
	if errorLog != "" {
		f, err := os.OpenFile(errorLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return 0, fmt.Errorf("server: daemon: open error log: %w", err)
		}
		defer f.Close()
		out = f
	}
	cmd := exec.Command(exe, daemonArgs(os.Args[1:])...)
	cmd.Env = append(os.Environ(), daemonEnv+"=1")
	cmd.Stdin = devNull
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("server: daemon: %w", err)
	}
	pid := cmd.Process.Pid
	if err := cmd.Process.Release(); err != nil {
		return 0, fmt.Errorf("server: daemon: %w", err)
	}
	return pid, nil
}
