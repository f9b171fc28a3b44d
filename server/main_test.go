package server

import (
	"context"
	"fmt"
	"net"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// roleEnv makes the test binary act as a small Gotthard program (see daemonMain), so
// that daemon mode can re-execute it.
const (
	roleEnv   = "GOTTHARD_SERVER_TEST_ROLE"
	notifyEnv = "GOTTHARD_SERVER_TEST_NOTIFY"
)

func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == "daemon" {
		os.Exit(daemonMain())
	}
	goleak.VerifyTestMain(m)
}

// daemonMain is the main of the program the daemon test starts: a Server from the command
// line with one background service that reports the pid to the test.
func daemonMain() int {
	srv, err := NewFromArgs(os.Args[1:], Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := srv.Add(notifyService{path: os.Getenv(notifyEnv)}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := srv.Run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// notifyService connects to a Unix socket, writes its pid and holds the connection open
// until it is canceled.
type notifyService struct{ path string }

func (notifyService) Name() string { return "notify" }

func (n notifyService) Run(ctx context.Context) error {
	c, err := net.Dial("unix", n.path)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := fmt.Fprintf(c, "%d\n", os.Getpid()); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}
