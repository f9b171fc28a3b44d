//go:build linux && !386

// Command floorproxy is the smallest keep-alive HTTP/1.1 proxy we could write in Go,
// the floor of the load benchmark in bench/: what a Go proxy costs per request on the
// machine when it does no header work at all, only the runtime, the system calls and
// the kernel's loopback TCP.
//
// It makes the same socket calls per request as Gotthard's gateway: one read of the
// request from the client, one write of it upstream, one read of the response, one
// write to the client, plus the runtime poller's epoll_wait, and no read that finds
// nothing. A write whose answer is awaited (the request upstream, the last piece of the
// response to the client) is made inside the syscall.RawConn read callback of the
// socket the answer comes on, after the goroutine joined the poller for it, and the
// callback returns false to wait instead of trying a read. A client connection lives in
// one such Read from start to end, so readiness that arrives while its request is
// upstream (a pipelined request, a close) is not lost. The calls are raw system calls
// on the non-blocking sockets, as Gotthard makes them.
//
// It forwards request heads unchanged (no X-Forwarded-For, no hop-by-hop handling),
// answers requests with a body with 501 and closes, and relays only responses with a
// Content-Length. It is a reference for the benchmark, not a usable proxy.
//
//	floorproxy -listen 127.0.0.1:8080 -upstream 127.0.0.1:9000
package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

const (
	headBufSize = 8 << 10  // per client connection: request heads, pipelined ones included
	respBufSize = 64 << 10 // per upstream connection: the response, a piece at a time
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to listen on")
	upstream := flag.String("upstream", "", "origin as HOST:PORT")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("floorproxy: ")
	if *upstream == "" {
		log.Fatal("-upstream is required")
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
		log.Printf("%v: shutting down", <-sig)
		ln.Close()
	}()
	p := &pool{addr: *upstream}
	for {
		nc, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil { // out of descriptors, say: let connections end
			log.Printf("accept: %v", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go serve(p, nc.(*net.TCPConn))
	}
}

// pool keeps idle upstream connections, the most recently used first out.
type pool struct {
	addr string
	mu   sync.Mutex
	idle []*upstream
}

func (p *pool) get() (u *upstream, reused bool, err error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		u = p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return u, true, nil
	}
	p.mu.Unlock()
	u, err = p.dial()
	return u, false, err
}

func (p *pool) put(u *upstream) {
	p.mu.Lock()
	p.idle = append(p.idle, u)
	p.mu.Unlock()
}

func (p *pool) dial() (*upstream, error) {
	nc, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	rc, err := nc.(*net.TCPConn).SyscallConn()
	if err != nil {
		nc.Close()
		return nil, err
	}
	u := &upstream{nc: nc, rc: rc, buf: make([]byte, respBufSize)}
	u.exchangeFn, u.readFn = u.exchangeStep, u.readStep
	return u, nil
}

// upstream is a connection to the origin. Its fields after buf are the state of the
// current call, kept here so that the callbacks, made once, do not allocate.
type upstream struct {
	nc  net.Conn
	rc  syscall.RawConn
	buf []byte

	out        []byte // bytes to write before waiting for the answer
	blocked    bool   // writing out would block: finish it outside the callback
	dst        []byte // where to read
	n          int
	errno      syscall.Errno
	exchangeFn func(uintptr) bool
	readFn     func(uintptr) bool
}

// exchange writes head and reads the first bytes of the answer into u.buf.
func (u *upstream) exchange(head []byte) (int, error) {
	u.out, u.blocked, u.dst = head, false, u.buf
	if err := u.rc.Read(u.exchangeFn); err != nil {
		return 0, err
	}
	if u.blocked {
		rest := u.out
		u.out = nil
		if _, err := u.nc.Write(rest); err != nil {
			return 0, err
		}
		return u.read(u.buf)
	}
	return u.result()
}

// exchangeStep is exchange's read callback: its first call writes, and returns false so
// that the runtime waits for the answer instead of a read finding nothing; the next reads.
func (u *upstream) exchangeStep(fd uintptr) bool {
	if u.out == nil {
		return u.readStep(fd)
	}
	n, errno := rawWrite(fd, u.out)
	u.out = u.out[n:]
	switch errno {
	case 0:
		u.out = nil
		return false // the answer cannot be there yet: wait for the poller
	case syscall.EAGAIN:
		u.blocked = true
	default:
		u.n, u.errno = 0, errno
	}
	return true
}

// read reads once into dst, waiting for bytes if need be.
func (u *upstream) read(dst []byte) (int, error) {
	u.dst = dst
	if err := u.rc.Read(u.readFn); err != nil {
		return 0, err
	}
	return u.result()
}

func (u *upstream) readStep(fd uintptr) bool {
	n, errno := rawRead(fd, u.dst)
	if errno == syscall.EAGAIN {
		return false
	}
	u.n, u.errno = n, errno
	return true
}

func (u *upstream) result() (int, error) {
	switch {
	case u.errno != 0:
		return 0, u.errno
	case u.n == 0:
		return 0, io.EOF
	}
	return u.n, nil
}

// client is a client connection; buf[r:w] holds bytes read and not yet handled.
type client struct {
	p    *pool
	nc   net.Conn
	buf  []byte
	r, w int
}

func serve(p *pool, nc *net.TCPConn) {
	defer nc.Close()
	rc, err := nc.SyscallConn()
	if err != nil {
		return
	}
	c := &client{p: p, nc: nc, buf: make([]byte, headBufSize)}
	rc.Read(c.step) // until the connection ends
}

// step is the connection's read callback: it reads requests and proxies them, and
// returns false to wait for the next one, true when the connection is done.
func (c *client) step(fd uintptr) bool {
	for {
		end := headEnd(c.buf[c.r:c.w])
		if end < 0 {
			c.w = copy(c.buf, c.buf[c.r:c.w])
			c.r = 0
			if c.w == len(c.buf) {
				c.write(fd, []byte("HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
				return true
			}
			n, errno := rawRead(fd, c.buf[c.w:])
			if errno == syscall.EAGAIN {
				return false
			}
			if errno != 0 || n == 0 {
				return true
			}
			c.w += n
			continue
		}
		head := c.buf[c.r : c.r+end]
		c.r += end
		_, cl := field(head, "content-length")
		_, te := field(head, "transfer-encoding")
		if cl || te {
			c.write(fd, []byte("HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
			return true
		}
		if !c.proxy(fd, head) {
			return true
		}
		if c.r == c.w {
			return false // the response is out: wait for the next request before reading
		}
	}
}

// proxy forwards one request head and relays its response; false means close.
func (c *client) proxy(fd uintptr, head []byte) bool {
	const badGateway = "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
	u, reused, err := c.p.get()
	if err != nil {
		c.write(fd, []byte(badGateway))
		return false
	}
	n, err := u.exchange(head)
	if err != nil && reused { // the origin closed it while idle: once more, on a new one
		u.nc.Close()
		if u, err = c.p.dial(); err == nil {
			n, err = u.exchange(head)
		}
	}
	end := -1
	for err == nil {
		if end = headEnd(u.buf[:n]); end >= 0 || n == len(u.buf) {
			break
		}
		var m int
		m, err = u.read(u.buf[n:])
		n += m
	}
	size, ok := int64(0), false
	if end >= 0 {
		size, ok = bodySize(u.buf[:end], bytes.HasPrefix(head, []byte("HEAD ")))
	}
	if !ok {
		if u != nil {
			u.nc.Close()
		}
		c.write(fd, []byte(badGateway))
		return false
	}
	left := int64(end) + size // response bytes not yet written
	for int64(n) < left {
		left -= int64(n)
		if !c.write(fd, u.buf[:n]) {
			u.nc.Close()
			return false
		}
		if n, err = u.read(u.buf); err != nil {
			u.nc.Close()
			return false
		}
	}
	if int64(n) > left { // more than announced
		u.nc.Close()
		return false
	}
	ok = c.write(fd, u.buf[:n])
	c.p.put(u)
	return ok
}

// write writes all of p to the client.
func (c *client) write(fd uintptr, p []byte) bool {
	n, errno := rawWrite(fd, p)
	if errno == syscall.EAGAIN { // the send buffer is full: wait for room
		_, err := c.nc.Write(p[n:])
		return err == nil
	}
	return errno == 0
}

// headEnd returns the length of the message head at the start of b, through the empty
// line that ends it, or -1 if b does not hold all of it.
func headEnd(b []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		if i >= 4 && b[i-2] == '\r' && b[i-3] == '\n' && b[i-4] == '\r' {
			return i
		}
	}
}

// bodySize returns the length of the body of the response with this head; ok is false
// if the response cannot be relayed (an interim response, no Content-Length).
func bodySize(head []byte, headRequest bool) (size int64, ok bool) {
	if len(head) < 12 || !bytes.HasPrefix(head, []byte("HTTP/1.")) || head[9] == '1' {
		return 0, false
	}
	code := head[9:12]
	noBody := headRequest || string(code) == "204" || string(code) == "304"
	v, found := field(head, "content-length")
	if noBody || !found {
		return 0, noBody
	}
	if len(v) == 0 || len(v) > 15 {
		return 0, false
	}
	for _, d := range v {
		if d < '0' || d > '9' {
			return 0, false
		}
		size = size*10 + int64(d-'0')
	}
	return size, true
}

// field returns the value of the first header field called name (in lower case) in a
// complete message head.
func field(head []byte, name string) ([]byte, bool) {
	for i := bytes.IndexByte(head, '\n') + 1; i < len(head); {
		j := bytes.IndexByte(head[i:], '\n')
		if j < 0 {
			break
		}
		line := head[i : i+j]
		i += j + 1
		if len(line) > len(name) && line[len(name)] == ':' && lowerEqual(line[:len(name)], name) {
			return bytes.TrimSpace(line[len(name)+1:]), true
		}
	}
	return nil, false
}

func lowerEqual(b []byte, lower string) bool {
	for i, ch := range b {
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		if ch != lower[i] {
			return false
		}
	}
	return true
}

// rawRead and rawWrite are recvfrom(2) and sendto(2) on a non-blocking socket, the calls
// Gotthard makes. They never block, so they skip the runtime's bookkeeping around system
// calls that might.
func rawRead(fd uintptr, p []byte) (int, syscall.Errno) {
	for {
		n, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0, 0, 0)
		if errno != syscall.EINTR {
			return int(n), errno
		}
	}
}

// rawWrite returns how much it wrote, and EAGAIN if it stopped because the send buffer
// is full.
func rawWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	n := 0
	for n < len(p) {
		m, _, errno := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&p[n])), uintptr(len(p)-n), syscall.MSG_NOSIGNAL, 0, 0)
		switch errno {
		case 0:
			n += int(m)
		case syscall.EINTR:
		default:
			return n, errno
		}
	}
	return n, 0
}
