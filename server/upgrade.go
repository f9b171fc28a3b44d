package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/sdnotify"
	"github.com/gotthard-proxy/gotthard/upgrade"
)

// Graceful upgrades: both modes share one path. The running process (Run's loop) starts
// a hand-over on SIGQUIT or [Server.HandOver] (to a process waiting on the upgrade
// socket) and on SIGUSR2 or [Server.Reexec] (to a copy of its binary it starts itself),
// in a goroutine of its own, since the new process may take its time to start. The loop
// goes on serving meanwhile; the outcome comes back to it on run.upgraded. On success
// the loop drains as in a graceful shutdown; on failure it goes on as before.

// ErrUpgradeInProgress is returned by [Server.HandOver] and [Server.Reexec] while an
// earlier hand-over has not ended.
var ErrUpgradeInProgress = errors.New("server: an upgrade is already in progress")

// upgradeRequest asks Run's loop for a hand-over.
type upgradeRequest struct {
	reexec bool
	at     time.Time           // when it was asked for: the grace period counts from it
	reply  chan upgradeOutcome // nil for a signal; else buffered, one outcome
}

// upgradeOutcome is the end of a hand-over.
type upgradeOutcome struct {
	req upgradeRequest
	pid int // the new process, on success
	err error
}

// HandOver upgrades the running Server as SIGQUIT does: it hands the listeners over to a
// new process waiting on Config.UpgradeSock (started with -u, see [Options.Upgrade]) and,
// once that process serves, drains and stops, so that Run returns. It returns the new
// process's pid when it serves, or why the hand-over failed; the Server then goes on
// serving as before. It fails with [ErrUpgradeInProgress] while another hand-over runs,
// and if the Server is not running.
func (s *Server) HandOver(ctx context.Context) (int, error) {
	return s.requestUpgrade(ctx, false)
}

// Reexec upgrades the running Server as SIGUSR2 does: it starts its own executable again
// (the file at the path of os.Executable, so a binary replaced on disk is the one that
// starts) with the same arguments and environment, hands it the listeners as an inherited
// socket, and drains and stops once it serves. The new process is a child of this one
// that outlives it. Otherwise as [Server.HandOver].
func (s *Server) Reexec(ctx context.Context) (int, error) {
	return s.requestUpgrade(ctx, true)
}

func (s *Server) requestUpgrade(ctx context.Context, reexec bool) (int, error) {
	select {
	case <-s.ready:
	default:
		return 0, errors.New("server: upgrade: the server is not serving")
	}
	req := upgradeRequest{reexec: reexec, at: time.Now(), reply: make(chan upgradeOutcome, 1)}
	select {
	case s.upgrades <- req:
	case <-s.done:
		return 0, fmt.Errorf("server: upgrade: %w", ErrServerClosed)
	case <-ctx.Done():
		return 0, fmt.Errorf("server: upgrade: %w", ctx.Err())
	}
	select {
	case out := <-req.reply:
		return out.pid, out.err
	case <-ctx.Done():
		// The hand-over goes on; its outcome is logged.
		return 0, fmt.Errorf("server: upgrade: %w", ctx.Err())
	}
}

// startUpgrade begins the hand-over req asks for, unless one is in progress or the
// Server is stopping.
func (r *run) startUpgrade(req upgradeRequest) {
	s := r.s
	switch {
	case r.cancelUpgrade != nil:
		s.log.Warn("server: upgrade already in progress, request ignored")
		req.answer(upgradeOutcome{req: req, err: ErrUpgradeInProgress})
		return
	case r.stopping:
		req.answer(upgradeOutcome{req: req, err: errors.New("server: upgrade: the server is stopping")})
		return
	}
	var lns []upgrade.Listener
	closeFiles := func() {
		for _, l := range lns {
			l.File.Close()
		}
	}
	for _, bls := range r.bound {
		for _, b := range bls {
			f, err := listenerFile(b.ln)
			if err != nil {
				closeFiles()
				err = fmt.Errorf("server: upgrade: listener %s: %w", b.ln.Addr(), err)
				s.log.Error("server: upgrade failed; still serving", "error", err)
				req.answer(upgradeOutcome{req: req, err: err})
				return
			}
			lns = append(lns, upgrade.Listener{Network: b.ep.Network, Address: b.ep.Address, TLS: b.ep.TLS, File: f})
		}
	}
	how := "hand-over on " + s.cfg.UpgradeSock
	if req.reexec {
		how = "re-execution"
	}
	s.log.Info("server: upgrade started", "mode", how, "listeners", len(lns))
	notify(s.log, sdnotify.Reloading())
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.UpgradeTimeout())
	r.cancelUpgrade = cancel
	go func() {
		defer cancel()
		defer closeFiles()
		pid, err := handOver(ctx, req.reexec, s.cfg.UpgradeSock, lns)
		r.upgraded <- upgradeOutcome{req: req, pid: pid, err: err}
	}()
}

// handOver sends lns to a new process: one waiting on sock, or, with reexec, a copy of
// this binary that it starts.
func handOver(ctx context.Context, reexec bool, sock string, lns []upgrade.Listener) (int, error) {
	if !reexec {
		c, err := dialWait(ctx, sock)
		if err != nil {
			return 0, err
		}
		return upgrade.Send(ctx, c, lns)
	}
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("upgrade: %w", err)
	}
	// The copy must neither daemonize again nor wait on the upgrade socket.
	child, err := upgrade.Spawn(exe, daemonArgs(os.Args[1:]), append(os.Environ(), daemonEnv+"=1"))
	if err != nil {
		return 0, err
	}
	pid, err := upgrade.Send(ctx, child.Conn, lns)
	if err != nil {
		child.Abandon()
		return 0, fmt.Errorf("new process %d: %w", child.PID(), err)
	}
	if err := child.Release(); err != nil {
		return 0, fmt.Errorf("upgrade: %w", err)
	}
	return pid, nil
}

// dialWait connects to the upgrade socket at path, waiting until ctx ends for a new
// process to listen on it: Pingora's systemd unit sends SIGQUIT before it starts the new
// process, so the running one may be first.
func dialWait(ctx context.Context, path string) (*net.UnixConn, error) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		c, err := upgrade.Dial(ctx, path)
		if err == nil || !(errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)) {
			return c, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (waited %v)", err, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// upgradeDone ends a hand-over and returns the mode the loop goes on in.
func (r *run) upgradeDone(out upgradeOutcome) mode {
	s := r.s
	r.cancelUpgrade = nil
	if out.err != nil {
		s.log.Error("server: upgrade failed; still serving", "error", out.err)
		if !r.stopping {
			notify(s.log, sdnotify.Ready)
		}
		out.req.answer(out)
		return modeRun
	}
	s.log.Info("server: handed the listeners over", "pid", out.pid, "took", time.Since(out.req.at).Round(time.Microsecond))
	r.handedOver = true
	for _, bls := range r.bound {
		for _, b := range bls {
			if ul, ok := b.ln.(*net.UnixListener); ok {
				ul.SetUnlinkOnClose(false) // the new process serves on the file
			}
		}
	}
	out.req.answer(out)
	return modeUpgraded
}

func (req upgradeRequest) answer(out upgradeOutcome) {
	if req.reply != nil {
		req.reply <- out
	}
}

// listenerFile returns a duplicate of ln's socket descriptor.
func listenerFile(ln net.Listener) (*os.File, error) {
	f, ok := ln.(interface{ File() (*os.File, error) })
	if !ok {
		return nil, fmt.Errorf("a %T has no socket to hand over", ln)
	}
	return f.File()
}

// takeOver returns the listeners a running process hands over: through the socket a
// re-executing parent passed down, or, with Options.Upgrade, on Config.UpgradeSock once
// the running process is sent SIGQUIT. It returns nil in a normal start.
func (s *Server) takeOver(ctx context.Context, sigs <-chan os.Signal) (*upgrade.Handover, error) {
	c, err := upgrade.Inherited()
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if c != nil {
		h, err := upgrade.Receive(c, s.log)
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		s.log.Info("server: upgrade: listeners received from the parent process", "old_pid", h.PID(), "listeners", len(h.Listeners()))
		return h, nil
	}
	if !s.upgrade {
		return nil, nil
	}
	rc, err := upgrade.Listen(s.cfg.UpgradeSock, s.log)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	defer rc.Close()
	timeout := s.cfg.UpgradeTimeout()
	s.log.Info("server: upgrade: waiting for the running process to hand over its listeners; send it SIGQUIT",
		"upgrade_sock", rc.Path(), "timeout", timeout)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	h, err := rc.Accept(s.waitContext(ctx, sigs))
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s.log.Info("server: upgrade: listeners received", "old_pid", h.PID(), "listeners", len(h.Listeners()))
	return h, nil
}

// waitContext returns ctx ended as well by Close, Shutdown or a signal, so that a
// process waiting for a hand-over can be stopped.
func (s *Server) waitContext(ctx context.Context, sigs <-chan os.Signal) context.Context {
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-s.fast:
			cancel(ErrServerClosed)
		case <-s.graceful:
			cancel(ErrServerClosed)
		case sig := <-sigs:
			cancel(fmt.Errorf("server: stopped by signal %v", sig))
		case <-ctx.Done():
		}
	}()
	return ctx
}

// inherited returns the listener h holds for ep, or nil.
func inherited(h *upgrade.Handover, ep Endpoint) *boundListener {
	if h == nil {
		return nil
	}
	ln, _, ok := h.Take(ep.Network, ep.Address)
	if !ok {
		return nil
	}
	b := &boundListener{ln: ln, ep: ep}
	if ul, ok := ln.(*net.UnixListener); ok {
		// The file is this process's to remove at exit now, unless it hands it on.
		ul.SetUnlinkOnClose(false)
		path := ul.Addr().String()
		if info, err := os.Lstat(path); err == nil {
			b.sock, b.info = path, info
		}
	}
	return b
}

// notify sends lines to systemd's notification socket, if there is one, and logs a
// failure.
func notify(log *slog.Logger, lines ...string) {
	if err := sdnotify.Notify(lines...); err != nil {
		log.Warn("server: sd_notify", "error", err)
	}
}
