package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// sink is the server's state: its listeners' handlers share the error count and the set
// of open connections, which are closed on exit.
type sink struct {
	req, reply int
	replyBuf   []byte
	errs       atomic.Int64

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool // shutdown began: a connection accepted now is closed at once
	wg     sync.WaitGroup
}

func main() {
	count := flag.String("count", "", "address of the counting listener (bulk)")
	rr := flag.String("rr", "", "address of the request-reply listener (connection rate)")
	echo := flag.String("echo", "", "address of the echo listener (idle connections)")
	req := flag.Int("req", 64, "bytes of the request on -rr")
	reply := flag.Int("reply", 64, "bytes of the reply on -rr")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("tcpsink: ")
	if *req <= 0 || *reply <= 0 {
		log.Fatal("-req and -reply must be > 0")
	}
	s := newSink(*req, *reply)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var lns []net.Listener
	for _, l := range []struct {
		addr   string
		handle func(net.Conn) error
	}{{*count, s.count}, {*rr, s.rr}, {*echo, s.echo}} {
		if l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			log.Fatal(err)
		}
		lns = append(lns, ln)
		s.start(ln, l.handle)
	}
	if len(lns) == 0 {
		log.Fatal("no listener: give -count, -rr or -echo")
	}
	<-ctx.Done()
	s.shutdown(lns)
	fmt.Fprintf(os.Stderr, "errors %d\n", s.errs.Load())
}

// newSink returns a sink whose -rr listener reads req bytes and answers reply bytes.
func newSink(req, reply int) *sink {
	s := &sink{req: req, reply: reply, replyBuf: make([]byte, reply), conns: map[net.Conn]struct{}{}}
	for i := range s.replyBuf {
		s.replyBuf[i] = 'r'
	}
	return s
}

// start serves ln with handle in a goroutine that shutdown waits for.
func (s *sink) start(ln net.Listener, handle func(net.Conn) error) {
	s.wg.Go(func() { s.serve(ln, handle) })
}

// shutdown closes the listeners and every open connection, and waits for every
// goroutine of the sink to end.
func (s *sink) shutdown(lns []net.Listener) {
	for _, ln := range lns {
		ln.Close()
	}
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// serve accepts on ln until it is closed and runs handle on each connection in its own
// goroutine, counting the errors it returns.
func (s *sink) serve(ln net.Listener, handle func(net.Conn) error) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.errs.Add(1)
			// Out of file descriptors, for instance: let some close.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Go(func() {
			if err := handle(c); err != nil && !errors.Is(err, net.ErrClosed) {
				s.errs.Add(1)
			}
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		})
	}
}

// count reads to EOF and answers with the number of bytes read.
func (s *sink) count(c net.Conn) error {
	buf := make([]byte, 256<<10)
	var n int64
	for {
		k, err := c.Read(buf)
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("count: after %d bytes: %w", n, err)
		}
	}
	if _, err := c.Write(strconv.AppendInt(nil, n, 10)); err != nil {
		return fmt.Errorf("count: reply: %w", err)
	}
	_, err := c.Write([]byte{'\n'})
	return err
}

// rr reads the request, writes the reply and returns, so the connection is closed.
func (s *sink) rr(c net.Conn) error {
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	var buf [4096]byte
	b := buf[:]
	if s.req > len(b) {
		b = make([]byte, s.req)
	}
	if _, err := io.ReadFull(c, b[:s.req]); err != nil {
		return fmt.Errorf("rr: request: %w", err)
	}
	if _, err := c.Write(s.replyBuf); err != nil {
		return fmt.Errorf("rr: reply: %w", err)
	}
	return nil
}

// echo writes back what it reads until the client closes. Its buffer is small: the idle
// scenario holds ten thousand of these.
func (s *sink) echo(c net.Conn) error {
	var buf [64]byte
	for {
		n, err := c.Read(buf[:])
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return fmt.Errorf("echo: %w", werr)
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("echo: %w", err)
		}
	}
}
