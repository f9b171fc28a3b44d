//go:build linux && !386

package main

import (
	"net"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/gotthard-proxy/gotthard/internal/testnet"
)

// The costs that set the floor of a proxy's CPU time per request on the machine: a
// system call that does nothing, an epoll_wait that finds nothing, a round trip between
// two goroutines, a clock read, and the sending and receiving of 1 KiB over a loopback
// TCP connection with write(2) and read(2) or with sendto(2) and recvfrom(2). Run them on one core, as the load benchmark does:
//
//	GOMAXPROCS=1 taskset -c 0 go test -run '^$' -bench . ./bench/floorproxy

func BenchmarkSyscall(b *testing.B) {
	for b.Loop() {
		syscall.RawSyscall(syscall.SYS_GETPPID, 0, 0, 0)
	}
}

func BenchmarkEpollWaitEmpty(b *testing.B) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		b.Fatal(err)
	}
	defer syscall.Close(epfd)
	events := make([]syscall.EpollEvent, 128)
	for b.Loop() {
		if _, err := syscall.EpollWait(epfd, events, 0); err != nil && err != syscall.EINTR {
			b.Fatal(err)
		}
	}
}

func BenchmarkGoroutineRoundTrip(b *testing.B) {
	ping, pong := make(chan struct{}, 1), make(chan struct{}, 1)
	go func() {
		for range ping {
			pong <- struct{}{}
		}
	}()
	defer close(ping)
	for b.Loop() {
		ping <- struct{}{}
		<-pong
	}
}

func BenchmarkTimeNow(b *testing.B) {
	for b.Loop() {
		_ = time.Now()
	}
}

// BenchmarkSocketCalls sends 1 KiB over a loopback TCP connection and receives it, with
// write(2) and read(2), then with sendto(2) and recvfrom(2), which skip the file layer.
func BenchmarkSocketCalls(b *testing.B) {
	client, server := testnet.Pair(b)
	out, in := make([]byte, 1024), make([]byte, 4096)
	p, q := uintptr(unsafe.Pointer(&out[0])), uintptr(unsafe.Pointer(&in[0]))
	call := func(b *testing.B, send, recv func(fd uintptr) (uintptr, syscall.Errno)) {
		var errno syscall.Errno
		var n uintptr
		err := rawFds(client, server, func(cfd, sfd uintptr) {
			for b.Loop() {
				if _, errno = send(cfd); errno != 0 {
					return
				}
				if n, errno = recv(sfd); errno != 0 || n != uintptr(len(out)) {
					return
				}
			}
		})
		if err != nil || errno != 0 || n != uintptr(len(out)) {
			b.Fatalf("err %v, errno %v, received %d", err, errno, n)
		}
	}
	b.Run("write-read", func(b *testing.B) {
		call(b, func(fd uintptr) (uintptr, syscall.Errno) {
			n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, p, uintptr(len(out)))
			return n, errno
		}, func(fd uintptr) (uintptr, syscall.Errno) {
			n, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, q, uintptr(len(in)))
			return n, errno
		})
	})
	b.Run("sendto-recvfrom", func(b *testing.B) {
		call(b, func(fd uintptr) (uintptr, syscall.Errno) {
			n, _, errno := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, p, uintptr(len(out)), syscall.MSG_NOSIGNAL, 0, 0)
			return n, errno
		}, func(fd uintptr) (uintptr, syscall.Errno) {
			n, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, q, uintptr(len(in)), 0, 0, 0)
			return n, errno
		})
	})
}

// rawFds runs f with the descriptors of two connections.
func rawFds(a, b net.Conn, f func(afd, bfd uintptr)) error {
	ra, err := a.(syscall.Conn).SyscallConn()
	if err != nil {
		return err
	}
	rb, err := b.(syscall.Conn).SyscallConn()
	if err != nil {
		return err
	}
	var inner error
	err = ra.Control(func(afd uintptr) {
		inner = rb.Control(func(bfd uintptr) { f(afd, bfd) })
	})
	if err != nil {
		return err
	}
	return inner
}
