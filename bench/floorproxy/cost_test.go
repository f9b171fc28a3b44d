package main

import (
	"syscall"
	"testing"
	"time"
)

// The costs that set the floor of a proxy's CPU time per request on the machine: a
// system call that does nothing, an epoll_wait that finds nothing, a round trip between
// two goroutines, and a clock read. Run them on one core, as the load benchmark does:
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
