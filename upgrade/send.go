package upgrade

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// ErrRefused is wrapped by the error of [Send] when the new process answered that it
// will not serve; the rest of the message is its reason.
var ErrRefused = errors.New("upgrade: new process refused the hand-over")

// Dial connects to the upgrade socket at path, where a new process started with -u waits,
// and checks that it runs as the same user.
func Dial(ctx context.Context, path string) (*net.UnixConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("upgrade: no new process waits on %s: %w", path, err)
	}
	uc := c.(*net.UnixConn)
	if err := checkPeer(uc); err != nil {
		uc.Close()
		return nil, fmt.Errorf("upgrade: %s: %w", path, err)
	}
	return uc, nil
}

// Send hands lns over c to the new process and waits until it answers that it serves,
// or until ctx ends. It returns the new process's pid. It closes c but not the files of
// lns, which the caller still owns: its own copies of the sockets stay open, so on any
// error it goes on serving as before.
func Send(ctx context.Context, c *net.UnixConn, lns []Listener) (pid int, err error) {
	defer c.Close()
	body, err := appendListeners(nil, lns)
	if err != nil {
		return 0, err
	}
	fds := make([]int, len(lns))
	for i, l := range lns {
		if l.File == nil {
			return 0, fmt.Errorf("upgrade: listener %s has no file", l)
		}
		fds[i] = int(l.File.Fd())
	}
	if err := writeFrame(c, kindListeners, body, fds); err != nil {
		return 0, fmt.Errorf("upgrade: send the listeners: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	deadline, _ := ctx.Deadline() // zero: no deadline but ctx's end
	h, body, files, err := readFrame(c, deadline)
	for _, f := range files {
		f.Close() // the new process sends none
	}
	switch {
	case err != nil && (ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded)):
		// The read deadline is ctx's; it may pass a moment before ctx reports its end.
		cause := context.Cause(ctx)
		if cause == nil {
			cause = context.DeadlineExceeded
		}
		return 0, fmt.Errorf("upgrade: the new process did not start serving in time: %w", cause)
	case err != nil:
		return 0, fmt.Errorf("upgrade: the new process ended the hand-over before serving: %w", err)
	case len(files) > 0:
		return 0, fmt.Errorf("%w: the new process sent descriptors", errProtocol)
	case h.kind == kindRefused:
		return 0, fmt.Errorf("%w: %s", ErrRefused, body)
	case h.kind != kindServing:
		return 0, fmt.Errorf("%w: expected the serving answer, got message kind %q", errProtocol, h.kind)
	}
	return h.pid, nil
}
