// Command idleconns measures nothing itself: it puts a proxy in the state the
// idle-connection memory scenario of bench/run.sh measures. It opens -n
// keep-alive connections to -addr, sends one GET on each and reads the whole
// response, then holds every connection open and idle.
//
// On stdout it prints one line "ready N" once all N connections are idle,
// and, when it stops (after -hold, or on SIGINT/SIGTERM), a final line
// "open M" with how many of them the proxy had not closed by then. Progress
// and errors go to stderr. It always exits by itself within -hold plus the
// time to set up the connections (bounded by -timeout).
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "proxy address HOST:PORT")
	path := flag.String("path", "/1k", "path to GET once on each connection")
	n := flag.Int("n", 5000, "number of connections")
	par := flag.Int("c", 64, "connections set up concurrently")
	hold := flag.Duration("hold", 30*time.Second, "how long to hold the idle connections after ready")
	timeout := flag.Duration("timeout", 60*time.Second, "limit on setting up all connections")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("idleconns: ")

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	setupCtx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	req := []byte("GET " + *path + " HTTP/1.1\r\nHost: " + *addr + "\r\nUser-Agent: idleconns\r\n\r\n")
	conns := make([]net.Conn, *n)
	var (
		next   atomic.Int64
		failed atomic.Int64
		wg     sync.WaitGroup
	)
	for range *par {
		wg.Go(func() {
			br := bufio.NewReaderSize(nil, 4096)
			d := net.Dialer{Timeout: 5 * time.Second}
			for {
				i := int(next.Add(1)) - 1
				if i >= *n || setupCtx.Err() != nil {
					return
				}
				c, err := d.DialContext(setupCtx, "tcp", *addr)
				if err != nil {
					failed.Add(1)
					log.Printf("dial %d: %v", i, err)
					continue
				}
				if err := exchange(c, br, req); err != nil {
					failed.Add(1)
					log.Printf("conn %d: %v", i, err)
					c.Close()
					continue
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	if err := setupCtx.Err(); err != nil && ctx.Err() == nil {
		log.Printf("setup: %v", err)
	}

	// Watch each connection for the proxy closing it; the goroutines end
	// when the connections are closed at exit.
	var open atomic.Int64
	var watchers sync.WaitGroup
	for _, c := range conns {
		if c == nil {
			continue
		}
		open.Add(1)
		watchers.Go(func() {
			var b [1]byte
			if _, err := c.Read(b[:]); err != nil {
				open.Add(-1)
			}
		})
	}
	fmt.Printf("ready %d\n", open.Load())
	if f := failed.Load(); f > 0 {
		log.Printf("%d connections failed", f)
	}

	select {
	case <-ctx.Done():
	case <-time.After(*hold):
	}
	fmt.Printf("open %d\n", open.Load())
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	watchers.Wait()
}

// exchange sends one request on c and reads the whole response, leaving the
// connection idle for reuse.
func exchange(c net.Conn, br *bufio.Reader, req []byte) error {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(req); err != nil {
		return err
	}
	br.Reset(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	if resp.Close {
		return fmt.Errorf("proxy asked to close the connection")
	}
	if br.Buffered() > 0 {
		return fmt.Errorf("%d unexpected bytes after the response", br.Buffered())
	}
	return nil
}
