package upgrade

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// oldListeners creates the listeners a running process would hand over: one TCP, one
// Unix socket.
func oldListeners(t *testing.T) (tcp *net.TCPListener, unix *net.UnixListener, lns []Listener) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	sock := filepath.Join(t.TempDir(), "gw.sock")
	u, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	tcp, unix = l.(*net.TCPListener), u.(*net.UnixListener)
	tf, err := tcp.File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tf.Close() })
	uf, err := unix.File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { uf.Close() })
	return tcp, unix, []Listener{
		{Network: "tcp", Address: "127.0.0.1:0", TLS: true, File: tf},
		{Network: "unix", Address: sock, File: uf},
	}
}

func newReceiver(t *testing.T) (*Receiver, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	r, err := Listen(filepath.Join(t.TempDir(), "upgrade.sock"), slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, logs
}

type acceptResult struct {
	h   *Handover
	err error
}

func acceptAsync(r *Receiver, timeout time.Duration) <-chan acceptResult {
	ch := make(chan acceptResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		h, err := r.Accept(ctx)
		ch <- acceptResult{h, err}
	}()
	return ch
}

// roundTrip checks that a connection made to addr is accepted on ln.
func roundTrip(t *testing.T, ln net.Listener, network, addr string) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, err = c.Write([]byte("ok"))
			c.Close()
		}
		done <- err
	}()
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "ok" {
		t.Fatalf("read %q, %v", b, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestHandover(t *testing.T) {
	tcp, unix, lns := oldListeners(t)
	r, _ := newReceiver(t)
	info, err := os.Lstat(r.Path())
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode()&fs.ModeSocket == 0 || info.Mode().Perm() != 0o600 {
		t.Fatalf("upgrade socket mode %v, want a socket with 0600", info.Mode())
	}
	got := acceptAsync(r, 10*time.Second)

	c, err := Dial(context.Background(), r.Path())
	if err != nil {
		t.Fatal(err)
	}
	sent := make(chan error, 1)
	var pid int
	go func() {
		var err error
		pid, err = Send(context.Background(), c, lns)
		sent <- err
	}()
	res := <-got
	if res.err != nil {
		t.Fatal(res.err)
	}
	h := res.h
	if h.PID() != os.Getpid() {
		t.Fatalf("PID() = %d, want %d", h.PID(), os.Getpid())
	}
	if l := h.Listeners(); len(l) != 2 || !l[0].TLS || l[1].TLS || l[1].Address != lns[1].Address {
		t.Fatalf("Listeners() = %+v", l)
	}
	// The TCP socket is found by the address its service was configured with.
	tln, tl, ok := h.Take("tcp", "127.0.0.1:0")
	if !ok || !tl.TLS {
		t.Fatalf("Take tcp: ok=%v %+v", ok, tl)
	}
	defer tln.Close()
	if _, _, ok := h.Take("tcp", "127.0.0.1:0"); ok {
		t.Fatal("a listener was taken twice")
	}
	// The Unix socket by its path.
	uln, _, ok := h.Take("unix", lns[1].Address)
	if !ok {
		t.Fatal("Take unix: not found")
	}
	defer uln.Close()
	if rest := h.CloseUnused(); len(rest) != 0 {
		t.Fatalf("CloseUnused() = %v, want none", rest)
	}
	if err := h.Serving(); err != nil {
		t.Fatal(err)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if pid != os.Getpid() {
		t.Fatalf("Send returned pid %d, want %d", pid, os.Getpid())
	}
	// The old process closes its copies; the sockets live on in the new listeners.
	tcp.Close()
	unix.SetUnlinkOnClose(false)
	unix.Close()
	roundTrip(t, tln, "tcp", tcp.Addr().String())
	roundTrip(t, uln, "unix", lns[1].Address)
}

// TestTakeByBoundAddress: a new configuration naming the bound address finds the socket.
func TestTakeByBoundAddress(t *testing.T) {
	tcp, _, lns := oldListeners(t)
	r, _ := newReceiver(t)
	got := acceptAsync(r, 10*time.Second)
	c, err := Dial(context.Background(), r.Path())
	if err != nil {
		t.Fatal(err)
	}
	sent := make(chan error, 1)
	go func() { _, err := Send(context.Background(), c, lns); sent <- err }()
	res := <-got
	if res.err != nil {
		t.Fatal(res.err)
	}
	ln, _, ok := res.h.Take("tcp", tcp.Addr().String())
	if !ok {
		t.Fatal("not found by bound address")
	}
	ln.Close()
	if rest := res.h.CloseUnused(); len(rest) != 1 || rest[0].Network != "unix" {
		t.Fatalf("CloseUnused() = %v, want the unix socket", rest)
	}
	if err := res.h.Refuse(errors.New("bad configuration")); err != nil {
		t.Fatal(err)
	}
	err = <-sent
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "bad configuration") {
		t.Fatalf("Send after a refusal: %v", err)
	}
}

// badSender connects to the receiver, sends b (and fds), and closes.
func badSender(t *testing.T, path string, b []byte, fds []int) string {
	t.Helper()
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var oob []byte
	if len(fds) > 0 {
		oob = syscall.UnixRights(fds...)
	}
	if b != nil || oob != nil {
		if _, _, err := c.WriteMsgUnix(b, oob, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	reply, _ := io.ReadAll(c)
	if len(reply) < headerLen {
		return ""
	}
	h, err := parseHeader(reply)
	if err != nil || h.kind != kindRefused {
		t.Fatalf("reply %q: %v", reply, err)
	}
	return string(reply[headerLen:])
}

func frame(kind byte, version uint16, body []byte) []byte {
	b := appendHeader(nil, kind, os.Getpid(), len(body))
	binary.BigEndian.PutUint16(b[4:], version)
	return append(b, body...)
}

// TestRefusedInput: every malformed hand-over is refused with a log line, and the
// receiver goes on waiting for the real one, which then succeeds.
func TestRefusedInput(t *testing.T) {
	_, _, lns := oldListeners(t)
	body, err := appendListeners(nil, lns)
	if err != nil {
		t.Fatal(err)
	}
	file, err := os.CreateTemp(t.TempDir(), "plain")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	peer, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	conn, err := net.Dial("tcp", peer.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	connf, err := conn.(*net.TCPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	defer connf.Close()
	r, logs := newReceiver(t)
	got := acceptAsync(r, 60*time.Second)
	full := frame(kindListeners, Version, body)
	fds := []int{int(lns[0].File.Fd()), int(lns[1].File.Fd())}
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	udpf, err := udp.(*net.UDPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	defer udpf.Close()

	cases := []struct {
		name string
		b    []byte
		fds  []int
		want string
	}{
		{"stray connection", nil, nil, "message cut short"},
		{"not a hand-over", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), nil, "not a hand-over message"},
		{"truncated header", full[:10], fds, "message cut short"},
		{"truncated body", full[:len(full)-3], fds, "message cut short"},
		{"other version", frame(kindListeners, Version+1, body), fds, "message version 2"},
		{"missing descriptors", full, fds[:1], "1 descriptors for 2 listeners"},
		{"not a socket", full, []int{int(file.Fd()), fds[1]}, "not a socket"},
		{"not a stream socket", full, []int{int(udpf.Fd()), fds[1]}, "not a stream socket"},
		{"not listening", full, []int{int(connf.Fd()), fds[1]}, "socket is not listening"},
		{"wrong family", full, []int{fds[1], fds[0]}, "does not serve network"},
		{"serving answer as hand-over", frame(kindServing, Version, nil), nil, "expected a listener hand-over"},
	}
	for _, tc := range cases {
		reason := badSender(t, r.Path(), tc.b, tc.fds)
		if tc.b != nil && !strings.Contains(reason, tc.want) {
			t.Errorf("%s: refused with %q, want it to contain %q", tc.name, reason, tc.want)
		}
	}
	// Every refusal has its log line, and the receiver still waits.
	if n := strings.Count(logs.String(), "refused a connection on the upgrade socket"); n != len(cases) {
		t.Errorf("%d refusal lines logged, want %d:\n%s", n, len(cases), logs.String())
	}
	for _, tc := range cases {
		if !strings.Contains(logs.String(), tc.want) {
			t.Errorf("%s: no log line contains %q", tc.name, tc.want)
		}
	}
	select {
	case res := <-got:
		t.Fatalf("Accept returned after bad input: %v", res.err)
	default:
	}
	c, err := Dial(context.Background(), r.Path())
	if err != nil {
		t.Fatal(err)
	}
	sent := make(chan error, 1)
	go func() { _, err := Send(context.Background(), c, lns); sent <- err }()
	res := <-got
	if res.err != nil {
		t.Fatal(res.err)
	}
	for _, l := range res.h.Listeners() {
		ln, _, _ := res.h.Take(l.Network, l.Address)
		ln.Close()
	}
	if err := res.h.Serving(); err != nil {
		t.Fatal(err)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
}

// TestSendToBadPeer: the old process's side of a failed hand-over returns an error and
// keeps its listeners working.
func TestSendToBadPeer(t *testing.T) {
	cases := []struct {
		name  string
		serve func(c net.Conn)
		want  string
	}{
		{"closes", func(c net.Conn) { io.CopyN(io.Discard, c, 16) }, "ended the hand-over before serving"},
		{"answers garbage", func(c net.Conn) { readFrameRaw(c); c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n")) }, "not a hand-over message"},
		{"answers another version", func(c net.Conn) { readFrameRaw(c); c.Write(frame(kindServing, Version+1, nil)) }, "message version 2"},
		{"never answers", func(c net.Conn) { io.Copy(io.Discard, c) }, "did not start serving in time"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tcp, _, lns := oldListeners(t)
			path := filepath.Join(t.TempDir(), "stray.sock")
			stray, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			defer stray.Close()
			var wg sync.WaitGroup
			defer wg.Wait()
			wg.Go(func() {
				c, err := stray.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				tc.serve(c)
			})
			c, err := Dial(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			_, err = Send(ctx, c, lns)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Send: %v, want an error containing %q", err, tc.want)
			}
			stray.Close()
			roundTrip(t, tcp, "tcp", tcp.Addr().String())
		})
	}
}

func TestAcceptTimeout(t *testing.T) {
	r, _ := newReceiver(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := r.Accept(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no running process handed over") {
		t.Fatalf("Accept: %v", err)
	}
}

func TestListenRefusesLiveSocket(t *testing.T) {
	r, _ := newReceiver(t)
	if _, err := Listen(r.Path(), nil); err == nil || !strings.Contains(err.Error(), "another process is waiting") {
		t.Fatalf("second Listen: %v", err)
	}
	plain := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(plain, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(plain, nil); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Listen on a file: %v", err)
	}
	// A stale socket is replaced.
	r.ln.Close() // the file stays: nobody accepts on it
	r2, err := Listen(r.Path(), nil)
	if err != nil {
		t.Fatalf("Listen on a stale socket: %v", err)
	}
	r2.Close()
	if _, err := os.Lstat(r.Path()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("socket file left after Close: %v", err)
	}
}

// readFrameRaw reads one frame from c without looking at it.
func readFrameRaw(c net.Conn) {
	h := make([]byte, headerLen)
	if _, err := io.ReadFull(c, h); err != nil {
		return
	}
	io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint32(h[12:])))
}
