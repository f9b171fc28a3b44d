package upgrade

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/sockfile"
)

// A Receiver is the new process's end of upgrade_sock: it waits there for the running
// process to hand over its listeners.
type Receiver struct {
	ln   *net.UnixListener
	path string
	info fs.FileInfo // the socket file, removed on Close only while it is still ours
	log  *slog.Logger
}

// Listen creates the Unix socket at path, mode 0600, for [Receiver.Accept]. A stale
// socket file (nobody accepts on it) is replaced; a live one, or a file that is not a
// socket, is an error. log receives one line per refused connection; nil means
// [slog.Default].
func Listen(path string, log *slog.Logger) (*Receiver, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := sockfile.RemoveStale(path); err != nil {
		if errors.Is(err, sockfile.ErrInUse) {
			return nil, fmt.Errorf("upgrade: upgrade socket %s: another process is waiting on it: %w", path, err)
		}
		return nil, fmt.Errorf("upgrade: upgrade socket: %w", err)
	}
	// Bind under a temporary name and rename: the socket is never reachable with a
	// mode wider than 0600.
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+"."+strconv.Itoa(os.Getpid()))
	_ = os.Remove(tmp)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Net: "unix", Name: tmp})
	if err != nil {
		return nil, fmt.Errorf("upgrade: listen on upgrade socket: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (*Receiver, error) {
		ln.Close()
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("upgrade: listen on upgrade socket: %w", err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	info, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	return &Receiver{ln: ln, path: path, info: info, log: log}, nil
}

// Path returns the path of the upgrade socket.
func (r *Receiver) Path() string { return r.path }

// Accept waits until ctx ends for a running process to connect and hand over its
// listeners. A connection that is not a valid hand-over (another user's process, a
// message cut short or of another version, descriptors that are not listening sockets)
// is answered with the reason, closed and logged, and Accept goes on waiting.
func (r *Receiver) Accept(ctx context.Context) (*Handover, error) {
	stop := context.AfterFunc(ctx, func() { _ = r.ln.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if d, ok := ctx.Deadline(); ok {
		_ = r.ln.SetDeadline(d)
	}
	for {
		c, err := r.ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("upgrade: no running process handed over its listeners on %s: %w", r.path, context.Cause(ctx))
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil, fmt.Errorf("upgrade: no running process handed over its listeners on %s: %w", r.path, context.DeadlineExceeded)
			}
			return nil, fmt.Errorf("upgrade: accept on upgrade socket: %w", err)
		}
		h, err := receive(c, r.path, r.log)
		if err != nil {
			continue
		}
		return h, nil
	}
}

// Close stops listening and removes the socket file unless another process has replaced
// it.
func (r *Receiver) Close() error {
	err := r.ln.Close()
	sockfile.RemoveIfSame(r.path, r.info)
	return err
}

// Receive reads a hand-over on c, a socket already connected to the running process
// (the one [Inherited] returns). An invalid hand-over is logged, answered with the reason
// and closed, and Receive returns the reason.
func Receive(c *net.UnixConn, log *slog.Logger) (*Handover, error) {
	if log == nil {
		log = slog.Default()
	}
	return receive(c, "inherited", log)
}

// receive reads and checks one hand-over on c. On error it logs the reason, answers with
// it and closes c; every descriptor received is closed.
func receive(c *net.UnixConn, path string, log *slog.Logger) (*Handover, error) {
	h, err := readHandover(c)
	if err != nil {
		log.Warn("upgrade: refused a connection on the upgrade socket", "upgrade_sock", path, "error", err)
		_ = writeFrame(c, kindRefused, []byte(err.Error()), nil)
		c.Close()
		return nil, err
	}
	h.log = log
	return h, nil
}

func readHandover(c *net.UnixConn) (*Handover, error) {
	if err := checkPeer(c); err != nil {
		return nil, err
	}
	hd, body, files, err := readFrame(c, time.Now().Add(ioTimeout))
	if err != nil {
		return nil, err
	}
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	if hd.kind != kindListeners {
		closeAll()
		return nil, fmt.Errorf("%w: expected a listener hand-over, got message kind %q", errProtocol, hd.kind)
	}
	lns, err := parseListeners(body)
	if err != nil {
		closeAll()
		return nil, err
	}
	if len(files) != len(lns) {
		closeAll()
		return nil, fmt.Errorf("%w: %d descriptors for %d listeners", errProtocol, len(files), len(lns))
	}
	h := &Handover{conn: c, pid: hd.pid}
	for i := range lns {
		if err := checkSocket(files[i], lns[i]); err != nil {
			closeAll()
			h.closeListeners()
			return nil, err
		}
		ln, err := net.FileListener(files[i])
		files[i].Close() // FileListener holds a copy
		files[i] = nil
		if err != nil {
			closeAll()
			h.closeListeners()
			return nil, fmt.Errorf("listener %s: %w", lns[i], err)
		}
		if ul, ok := ln.(*net.UnixListener); ok {
			ul.SetUnlinkOnClose(false)
		}
		h.items = append(h.items, item{Listener: lns[i], ln: ln})
	}
	return h, nil
}

// A Handover holds the listeners a running process handed over, until the new process
// takes them, and the connection on which it tells the old process that it serves.
//
// Use it from one goroutine: [Handover.Take] each endpoint, [Handover.CloseUnused], then
// [Handover.Serving] once the services serve, or [Handover.Refuse] if they cannot.
type Handover struct {
	conn  *net.UnixConn
	pid   int
	items []item
	log   *slog.Logger
	done  bool
}

type item struct {
	Listener
	ln    net.Listener // nil once taken
	taken bool
}

// PID returns the process id of the process that handed the listeners over.
func (h *Handover) PID() int { return h.pid }

// Listeners returns the endpoints handed over, without their files, in the order the old
// process sent them.
func (h *Handover) Listeners() []Listener {
	out := make([]Listener, len(h.items))
	for i, it := range h.items {
		out[i] = it.Listener
		out[i].File = nil
	}
	return out
}

// Take returns the listener handed over for network and address, matched first by the
// address the old process was configured with, then by the address its socket is bound
// to (a new configuration that names the bound address "127.0.0.1:6188" of a socket the
// old one configured as "127.0.0.1:0" finds it). The second result describes the endpoint as the old process served it. Each listener is
// taken at most once; ok is false if none matches.
func (h *Handover) Take(network, address string) (ln net.Listener, l Listener, ok bool) {
	match := func(exact bool) int {
		for i, it := range h.items {
			if it.taken || it.Network != network {
				continue
			}
			if exact && it.Address == address || !exact && it.ln.Addr().String() == address {
				return i
			}
		}
		return -1
	}
	i := match(true)
	if i < 0 {
		i = match(false)
	}
	if i < 0 {
		return nil, Listener{}, false
	}
	it := &h.items[i]
	ln, it.ln, it.taken = it.ln, nil, true
	return ln, it.Listener, true
}

// CloseUnused closes the listeners no endpoint took and returns what they served: the new
// configuration dropped them.
func (h *Handover) CloseUnused() []Listener { return h.closeListeners() }

func (h *Handover) closeListeners() []Listener {
	var out []Listener
	for i := range h.items {
		it := &h.items[i]
		if it.taken {
			continue
		}
		it.ln.Close()
		it.ln, it.taken = nil, true
		out = append(out, it.Listener)
	}
	return out
}

// Serving tells the old process that this one serves on the listeners, so that it stops
// accepting and drains, and closes the connection.
func (h *Handover) Serving() error {
	if h.done {
		return errors.New("upgrade: hand-over already answered")
	}
	h.done = true
	err := writeFrame(h.conn, kindServing, nil, nil)
	h.conn.Close()
	if err != nil {
		return fmt.Errorf("upgrade: tell process %d that this one serves: %w", h.pid, err)
	}
	return nil
}

// Refuse tells the old process that this one will not serve, for reason, so that it goes
// on serving; it closes the listeners not taken and the connection. Listeners already
// taken are the caller's to close.
func (h *Handover) Refuse(reason error) error {
	if h.done {
		return errors.New("upgrade: hand-over already answered")
	}
	h.done = true
	h.closeListeners()
	err := writeFrame(h.conn, kindRefused, []byte(reason.Error()), nil)
	h.conn.Close()
	if err != nil {
		return fmt.Errorf("upgrade: tell process %d that the upgrade failed: %w", h.pid, err)
	}
	return nil
}
