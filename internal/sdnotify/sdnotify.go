package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// The states the server sends.
const (
	// Ready says start-up (or a reload) is complete.
	Ready = "READY=1"
	// Stopping says the service is shutting down.
	Stopping = "STOPPING=1"
)

// Reloading says a reload (a binary upgrade) has begun; systemd expects the monotonic
// time with it, and a later [Ready] ends it.
func Reloading() string {
	return "RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(monotonicUsec(), 10)
}

// MainPID names pid as the service's main process, for a new process that took over.
func MainPID(pid int) string { return "MAINPID=" + strconv.Itoa(pid) }

// Enabled reports whether $NOTIFY_SOCKET is set.
func Enabled() bool { return os.Getenv("NOTIFY_SOCKET") != "" }

// Notify sends the lines as one datagram to $NOTIFY_SOCKET. It returns nil without doing
// anything if the variable is not set.
func Notify(lines ...string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	name := path
	if name[0] == '@' {
		name = "\x00" + name[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	defer c.Close()
	var msg []byte
	for i, l := range lines {
		if i > 0 {
			msg = append(msg, '\n')
		}
		msg = append(msg, l...)
	}
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := c.Write(msg); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	return nil
}

// monotonicUsec returns CLOCK_MONOTONIC in microseconds, the clock systemd compares
// MONOTONIC_USEC against.
func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano() / 1000
}
