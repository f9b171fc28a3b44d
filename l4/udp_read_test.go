package l4

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// readError is the error ReadFromUDPAddrPort returns when the system call fails with
// errno.
func readError(errno syscall.Errno) error {
	return &net.OpError{Op: "read", Net: "udp", Err: os.NewSyscallError("recvfrom", errno)}
}

// linesWith returns the lines of l that contain s.
func linesWith(l *logs, s string) []string {
	var out []string
	for _, line := range l.lines() {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}

// Reads of the listening socket that go on failing (ENOBUFS) do not spin the reading
// goroutine; once they stop, datagrams flow through the service again, the one the
// client sent meanwhile first.
func TestUDPReadErrorsBackOff(t *testing.T) {
	up := echoUDP(t)
	l := &logs{}
	svc, err := NewUDPService("udp-test", &udpTestApp{peers: []string{up}}, UDPOptions{
		Listen: []string{"127.0.0.1:0"}, Logger: slog.New(l)})
	if err != nil {
		t.Fatal(err)
	}
	var failing atomic.Bool
	var reads atomic.Int64
	failing.Store(true)
	svc.readFrom = func(c *net.UDPConn, b []byte) (int, netip.AddrPort, error) {
		reads.Add(1)
		if failing.Load() {
			return 0, netip.AddrPort{}, readError(syscall.ENOBUFS)
		}
		return c.ReadFromUDPAddrPort(b)
	}
	runUDP(t, svc)
	addr := svc.Addrs()[0].String()

	// Waits of 5, 10, 20, 40 and 80 ms fit in 200 ms: six reads; a loop with no
	// backoff makes hundreds of thousands.
	time.Sleep(200 * time.Millisecond)
	if n := reads.Load(); n < 2 || n > 10 {
		t.Fatalf("%d reads in 200ms of failures, want a handful", n)
	}

	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("during")); err != nil {
		t.Fatal(err)
	}
	failing.Store(false)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	for _, msg := range []string{"during", "after"} {
		if msg != "during" {
			if _, err := c.Write([]byte(msg)); err != nil {
				t.Fatal(err)
			}
		}
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != msg {
			t.Fatalf("after the failed reads: %q, %v; want %q\n%s", buf[:n], err, msg, strings.Join(l.lines(), "\n"))
		}
	}

	// A Warn line for each longer wait, with what an operator needs; nothing else
	// about the reads.
	warns := linesWith(l, "WARN udp read failed; retrying")
	if len(warns) < 2 || len(warns) > 9 {
		t.Fatalf("%d Warn lines, want one per longer wait:\n%s", len(warns), strings.Join(l.lines(), "\n"))
	}
	for _, want := range []string{"service=udp-test", "addr=" + addr, "no buffer space", "backoff=5ms"} {
		if !strings.Contains(warns[0], want) {
			t.Errorf("first line %q does not have %q", warns[0], want)
		}
	}
	if !strings.Contains(warns[1], "backoff=10ms") {
		t.Errorf("second line %q: want backoff=10ms", warns[1])
	}
	if n := len(linesWith(l, "udp read")); n != len(warns) {
		t.Errorf("%d lines about reads, %d of them Warn:\n%s", n, len(warns), strings.Join(l.lines(), "\n"))
	}
}

// The log of failed reads stays bounded however long the failures go on and however
// they come, a truncated datagram (Windows' WSAEMSGSIZE) is dropped without a wait,
// and stopping the service ends a long wait at once. Time here is synctest's.
func TestUDPReadErrorLog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &logs{}
		svc, err := NewUDPService("udp-test", &udpTestApp{}, UDPOptions{
			Listen: []string{"127.0.0.1:0"}, Logger: slog.New(l)})
		if err != nil {
			t.Fatal(err)
		}
		const wsaEMSGSIZE = syscall.Errno(10040)
		// Each read takes its result from steps: an error fails it; nil reads an
		// oversize datagram (dropped, no session); wsaEMSGSIZE reads one with that
		// error, as Windows does.
		steps := make(chan error)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		client := netip.MustParseAddrPort("192.0.2.1:53")
		svc.readFrom = func(_ *net.UDPConn, b []byte) (int, netip.AddrPort, error) {
			select {
			case err := <-steps:
				switch err {
				case nil:
					return len(b), client, nil
				case wsaEMSGSIZE:
					return len(b), client, readError(wsaEMSGSIZE)
				}
				return 0, netip.AddrPort{}, err
			case <-ctx.Done():
				return 0, netip.AddrPort{}, net.ErrClosed
			}
		}
		ran := make(chan error, 1)
		go func() { ran <- svc.Run(ctx) }()
		<-svc.Ready()
		counts := func() (warns, infos int) {
			return len(linesWith(l, "WARN udp read failed; retrying")), len(linesWith(l, "INFO udp read recovered"))
		}

		// Ten minutes of failures: 600 reads, one a second once the wait is at its
		// longest, and nine lines, one for each longer wait.
		start := time.Now()
		for range 600 {
			steps <- readError(syscall.ENOBUFS)
		}
		synctest.Wait()
		if d := time.Since(start); d < 590*time.Second {
			t.Fatalf("600 failed reads in %v", d)
		}
		warns := linesWith(l, "WARN udp read failed; retrying")
		if len(warns) != 9 || !strings.Contains(warns[0], "backoff=5ms") || !strings.Contains(warns[8], "backoff=1s") {
			t.Fatalf("%d Warn lines over 600 failures, want 9 from 5ms to 1s:\n%s", len(warns), strings.Join(warns, "\n"))
		}
		// A read that succeeds ends the run; an Info line counts its failures since
		// the last Warn.
		steps <- nil
		synctest.Wait()
		if _, infos := counts(); infos != 1 || !strings.Contains(linesWith(l, "udp read recovered")[0], "failures=591") {
			t.Fatalf("after a read that succeeded:\n%s", strings.Join(l.lines(), "\n"))
		}

		// Failures between reads that succeed, 200 a second for 5 s: a line now and
		// then, not one each.
		start = time.Now()
		w0, i0 := counts()
		for range 1000 {
			steps <- readError(syscall.ENOMEM)
			steps <- nil
		}
		synctest.Wait()
		secs := int(time.Since(start)/time.Second) + 1
		w, i := counts()
		t.Logf("1000 failures over %ds: %d Warn lines, %d Info lines", secs-1, w-w0, i-i0)
		if w-w0 < 1 || w-w0 > secs || i-i0 > secs {
			t.Fatalf("1000 failures over %ds: %d Warn lines and %d Info lines, want at most one a second",
				secs-1, w-w0, i-i0)
		}
		if st := svc.Stats(); st.Received != 1001 || st.DroppedOversize != 1001 || st.SessionsTotal != 0 {
			t.Fatalf("Stats() = %+v", st)
		}

		// A truncated datagram is a datagram: dropped as oversize, with no wait.
		w0, _ = counts()
		start = time.Now()
		steps <- wsaEMSGSIZE
		synctest.Wait()
		if w, _ := counts(); w != w0 || time.Since(start) != 0 || svc.Stats().DroppedOversize != 1002 {
			t.Fatalf("a truncated datagram: %d more Warn lines, %v waited, Stats() = %+v", w-w0, time.Since(start), svc.Stats())
		}

		// Stopping the service during a wait of a second ends it at once.
		for range 20 {
			steps <- readError(syscall.ENOBUFS)
		}
		synctest.Wait()
		start = time.Now()
		cancel()
		if err := <-ran; err != nil {
			t.Fatalf("Run: %v", err)
		}
		if d := time.Since(start); d != 0 {
			t.Fatalf("Run returned %v after its context ended", d)
		}
	})
}

// A reply the listening socket will not send (ENOBUFS) is dropped and counted, and its
// session goes on: the client's next datagrams are answered.
func TestUDPReplyWriteError(t *testing.T) {
	up := echoUDP(t)
	svc, err := NewUDPService("udp-test", &udpTestApp{peers: []string{up}}, UDPOptions{Listen: []string{"127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	var writes atomic.Int64
	svc.writeTo = func(c *net.UDPConn, b []byte, to netip.AddrPort) (int, error) {
		if writes.Add(1) == 1 {
			return 0, &net.OpError{Op: "write", Net: "udp", Err: os.NewSyscallError("sendto", syscall.ENOBUFS)}
		}
		return c.WriteToUDPAddrPort(b, to)
	}
	runUDP(t, svc)
	c, err := net.Dial("udp", svc.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("lost")); err != nil {
		t.Fatal(err)
	}
	// The first reply is refused; wait for it before sending the next, so that the
	// refused one is "lost" and not a later one.
	deadline := time.Now().Add(5 * time.Second)
	for svc.Stats().DroppedReplies == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no reply dropped: %+v", svc.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	for _, msg := range []string{"one", "two"} {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != msg {
			t.Fatalf("after the dropped reply: %q, %v; want %q", buf[:n], err, msg)
		}
	}
	st := svc.Stats()
	if st.DroppedReplies != 1 || st.Forwarded.DatagramsDown != 2 || st.Forwarded.DatagramsUp != 3 ||
		st.Sessions != 1 || st.SessionsTotal != 1 || st.UpstreamErrors != 0 {
		t.Fatalf("stats %+v: want one reply dropped, two sent back, one session still open", st)
	}
}
