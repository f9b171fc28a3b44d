package l4

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// maxParkedHeap is the most live heap a connection may hold while parked and
// detached, in bytes: the service's state of it (the connection with its Session and
// the copy's state, one 512-byte allocation), its slot in the service's list of
// connections, the poller's slots (16 bytes a descriptor, and the room the slice grew
// by; here the test's own descriptors count too), the two descriptors as net.Conns (8
// bytes each), and the test app's per-connection context (16 bytes). It measures 661
// here (about 730 with the race detector); it was 1,340 before the parked state was
// made smaller.
const maxParkedHeap = 800

// rawListen listens on loopback with a blocking socket of the test's own, outside the
// runtime's poller and the heap.
func rawListen(t testing.TB) (fd int, addr string) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 4096); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fd, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*unix.SockaddrInet4).Port)).String()
}

// rawPair opens a connection through the proxy at to, with blocking sockets of the
// test's own, takes its other end from the backend listener ln, and moves a byte each
// way; it returns both descriptors, which the caller closes.
func rawPair(t testing.TB, to netip.AddrPort, ln int) (client, peer int) {
	t.Helper()
	client, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			unix.Close(client)
		}
	}()
	tv := unix.Timeval{Sec: 10}
	unix.SetsockoptTimeval(client, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	if err := unix.Connect(client, &unix.SockaddrInet4{Addr: to.Addr().As4(), Port: int(to.Port())}); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Write(client, []byte{'a'}); err != nil {
		t.Fatal(err)
	}
	peer, _, err = unix.Accept4(ln, unix.SOCK_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			unix.Close(peer)
		}
	}()
	unix.SetsockoptTimeval(peer, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	var b [1]byte
	if n, err := unix.Read(peer, b[:]); n != 1 || err != nil {
		t.Fatalf("the peer read %d bytes (%v), want 1", n, err)
	}
	if _, err := unix.Write(peer, []byte{'b'}); err != nil {
		t.Fatal(err)
	}
	if n, err := unix.Read(client, b[:]); n != 1 || err != nil {
		t.Fatalf("the client read %d bytes (%v), want 1", n, err)
	}
	return client, peer
}

// quietApp sends every connection to one peer and counts the ends Logging sees.
type quietApp struct {
	Phases[*quietCtx]
	peer  *Peer
	ended atomic.Int64
}

// quietCtx is a connection's context: about what a user's would hold.
type quietCtx struct{ bytes, tries int64 }

func (a *quietApp) NewCtx() *quietCtx { return &quietCtx{} }

func (a *quietApp) UpstreamPeer(_ context.Context, _ *Session, c *quietCtx) (*Peer, error) {
	c.tries++
	return a.peer, nil
}

func (a *quietApp) Logging(_ context.Context, s *Session, c *quietCtx, _ error) {
	c.bytes = s.BytesToUpstream() + s.BytesToClient()
	if s.ClientAddr() == nil || c.tries != 1 {
		panic("no client address, or not one attempt")
	}
	a.ended.Add(1)
}

// liveHeap returns the live heap after a full collection.
func liveHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestParkedHeap holds 2,000 idle connections, parked and detached, and checks the
// live heap each holds after a full collection (see maxParkedHeap). Allocation sizes
// do not vary between runs, so the figure moves only by what the runtime allocates
// for itself meanwhile (threads for the test's blocking system calls: a few tens of
// bytes per connection). The test's own ends of the connections are raw descriptors,
// which hold no heap. Then a few connections are woken, bytes both ways, and every
// connection is cut by the service's Close and seen by Logging.
//
// L4_HEAPPROF=file writes a heap profile of every allocation still live at the end
// of the measurement to file.
func TestParkedHeap(t *testing.T) {
	const n = 2000
	if os.Getenv("L4_HEAPPROF") != "" {
		runtime.MemProfileRate = 1
	}
	fds := make([]int, 0, 2*n)
	t.Cleanup(func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	})
	ln, peerAddr := rawListen(t)
	app := &quietApp{peer: &Peer{Address: peerAddr}}
	svc, err := NewService[*quietCtx]("test", app, ServiceOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	svc.AddTCP("127.0.0.1:0")
	addr := serve(t, svc)[0]
	to := netip.MustParseAddrPort(addr)
	c, p := rawPair(t, to, ln) // warms the pools, the poller's set and the runtime's caches
	waitUntil(t, "the first connection detached", func() bool { return detachedConns(svc) == 1 })
	fds = append(fds, c, p)
	// The runtime keeps every goroutine it made for reuse: make more now than the
	// set-up runs at once, so that their descriptors are not counted below.
	var wg sync.WaitGroup
	release := make(chan struct{})
	for range 2 * n {
		wg.Go(func() { <-release })
	}
	close(release)
	wg.Wait()
	before := liveHeap()
	for range n - 1 {
		c, p := rawPair(t, to, ln)
		fds = append(fds, c, p)
	}
	waitUntil(t, "every connection detached", func() bool { return detachedConns(svc) == n })
	after := liveHeap()
	per := float64(int64(after)-int64(before)) / (n - 1)
	t.Logf("%.0f bytes of live heap per parked connection (bound %d)", per, maxParkedHeap)
	if per > maxParkedHeap {
		t.Errorf("%.0f bytes of live heap per parked connection, want at most %d", per, maxParkedHeap)
	}
	if g := busyGoroutines(svc); g > 100 {
		t.Errorf("%d goroutines with %d parked connections", g, n)
	}
	for i := 0; i < len(fds); i += 2 * n / 8 {
		c, p := fds[i], fds[i+1]
		var b [2]byte
		for _, dir := range [][2]int{{c, p}, {p, c}} {
			if _, err := unix.Write(dir[0], []byte("hi")); err != nil {
				t.Fatal(err)
			}
			if n, err := unix.Read(dir[1], b[:]); n != 2 || err != nil || string(b[:]) != "hi" {
				t.Fatalf("after waking, read %q (%v), want \"hi\"", b[:n], err)
			}
		}
	}
	svc.Close()
	waitUntil(t, "Logging of every connection", func() bool { return app.ended.Load() == n })
	if os.Getenv("L4_HEAPPROF") != "" {
		f, _ := os.Create(os.Getenv("L4_HEAPPROF"))
		pprof.WriteHeapProfile(f)
		f.Close()
	}
}
