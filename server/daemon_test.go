package server

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestDaemonArgs(t *testing.T) {
	got := daemonArgs([]string{"-d", "-c", "x.yaml", "--daemon", "--daemon=true", "-u", "--", "-d"})
	want := []string{"-c", "x.yaml", "-u", "--", "-d"}
	if !slices.Equal(got, want) {
		t.Fatalf("daemonArgs = %q, want %q", got, want)
	}
}

// TestDaemon runs this test binary as a program (see daemonMain) with -d and checks that
// the original process exits at once and silently, and that the daemon runs in its own
// session, writes its pid file and log, and stops on SIGTERM.
func TestDaemon(t *testing.T) {
	dir, err := os.MkdirTemp("", "gtd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	notify := filepath.Join(dir, "notify.sock")
	ln, err := net.Listen("unix", notify)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pidFile := filepath.Join(dir, "d.pid")
	errorLog := filepath.Join(dir, "error.log")
	conf := filepath.Join(dir, "conf.yaml")
	if err := os.WriteFile(conf, []byte("pid_file: "+pidFile+"\nerror_log: "+errorLog+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-c", conf, "-d")
	cmd.Env = append(os.Environ(), roleEnv+"=daemon", notifyEnv+"="+notify)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("original process: %v; stderr: %s", err, stderr.Bytes())
	}
	if stdout.Len() != 0 || stderr.Len() != 0 {
		t.Errorf("original process printed stdout %q, stderr %q; want nothing", stdout.Bytes(), stderr.Bytes())
	}

	ln.(*net.UnixListener).SetDeadline(time.Now().Add(wait))
	conn, err := ln.Accept()
	if err != nil {
		t.Fatalf("daemon did not report: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(wait))
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	if pid == cmd.Process.Pid {
		t.Fatalf("daemon pid %d is the original process", pid)
	}
	if sid, err := sessionOf(pid); err != nil || sid != pid {
		t.Errorf("daemon session = %d, %v; want a new session led by %d", sid, err, pid)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil || string(data) != strconv.Itoa(pid)+"\n" {
		t.Errorf("pid file = %q, %v; want %d", data, err, pid)
	}

	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("daemon connection after SIGTERM: %v, want EOF", err)
	}
	stopped = true
	logData, err := os.ReadFile(errorLog)
	if err != nil || !bytes.Contains(logData, []byte("server: started")) {
		t.Errorf("error log = %q, %v; want the daemon's log", logData, err)
	}
}

// sessionOf returns the session id of process pid, from /proc/PID/stat.
func sessionOf(pid int) (int, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// After "pid (comm) " come state, ppid, pgrp and session.
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	if len(fields) < 4 {
		return 0, io.ErrUnexpectedEOF
	}
	return strconv.Atoi(fields[3])
}
