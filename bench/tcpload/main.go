package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// config is what the flags set.
type config struct {
	addr       string
	conns      int
	bytes      int64
	duration   time.Duration
	req, reply int
	n          int
	hold       time.Duration
	timeout    time.Duration
}

func main() {
	var cfg config
	mode := flag.String("mode", "rr", "bulk, rr or idle")
	flag.StringVar(&cfg.addr, "addr", "127.0.0.1:6380", "proxy address HOST:PORT")
	flag.IntVar(&cfg.conns, "c", 64, "concurrent connections (bulk, rr; idle: set up concurrently)")
	flag.Int64Var(&cfg.bytes, "bytes", 1<<30, "bytes to send in all (bulk)")
	flag.DurationVar(&cfg.duration, "d", 5*time.Second, "how long to run (rr)")
	flag.IntVar(&cfg.req, "req", 64, "request bytes (rr; the sink's -req)")
	flag.IntVar(&cfg.reply, "reply", 64, "reply bytes (rr; the sink's -reply)")
	flag.IntVar(&cfg.n, "n", 10000, "connections to hold (idle)")
	flag.DurationVar(&cfg.hold, "hold", 60*time.Second, "how long to hold idle connections at most (idle)")
	flag.DurationVar(&cfg.timeout, "timeout", 10*time.Second, "limit on each dial and each exchange; in idle mode also on setting up all connections")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("tcpload: ")
	if cfg.conns <= 0 || cfg.bytes <= 0 || cfg.duration <= 0 || cfg.req <= 0 || cfg.reply <= 0 || cfg.n <= 0 || cfg.timeout <= 0 {
		log.Fatal("-c, -bytes, -d, -req, -reply, -n and -timeout must be > 0")
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	switch *mode {
	case "bulk":
		err = bulk(ctx, cfg)
	case "rr":
		err = rr(ctx, cfg)
	case "idle":
		err = idle(ctx, cfg, os.Stdout)
	default:
		err = fmt.Errorf("unknown -mode %q (bulk, rr or idle)", *mode)
	}
	if err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

// errLog counts errors and keeps the first few for the report.
type errLog struct {
	n     atomic.Int64
	mu    sync.Mutex
	first []string
}

func (e *errLog) add(err error) {
	if e.n.Add(1) <= 5 {
		e.mu.Lock()
		e.first = append(e.first, err.Error())
		e.mu.Unlock()
	}
}

// result returns nil with no error, or one error naming the count and the first few.
func (e *errLog) result() error {
	n := e.n.Load()
	if n == 0 {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return fmt.Errorf("%d errors, first: %s", n, strings.Join(e.first, "; "))
}

// bulk sends cfg.bytes split over cfg.conns connections and checks the sink's counts.
func bulk(ctx context.Context, cfg config) error {
	var (
		errs  errLog
		moved atomic.Int64
		wg    sync.WaitGroup
	)
	buf := make([]byte, 256<<10)
	for i := range buf {
		buf[i] = byte(i)
	}
	start := time.Now()
	for i := range cfg.conns {
		share := cfg.bytes / int64(cfg.conns)
		if i == 0 {
			share += cfg.bytes % int64(cfg.conns)
		}
		wg.Go(func() {
			got, err := bulkOne(ctx, cfg, buf, share)
			moved.Add(got)
			if err != nil {
				errs.add(err)
			}
		})
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	fmt.Printf("mode=bulk bytes=%d moved=%d conns=%d errors=%d seconds=%.3f mib_per_s=%.1f\n",
		cfg.bytes, moved.Load(), cfg.conns, errs.n.Load(), secs, float64(moved.Load())/(1<<20)/secs)
	if err := errs.result(); err != nil {
		return err
	}
	if moved.Load() != cfg.bytes {
		return fmt.Errorf("bulk: the sink counted %d bytes, %d were sent", moved.Load(), cfg.bytes)
	}
	return nil
}

// bulkOne sends n bytes on one connection, half-closes it and returns the sink's count.
// The connection's deadline moves with progress: a transfer that stalls for
// cfg.timeout fails, a slow one that progresses does not.
func bulkOne(ctx context.Context, cfg config, buf []byte, n int64) (int64, error) {
	d := net.Dialer{Timeout: cfg.timeout}
	c, err := d.DialContext(ctx, "tcp", cfg.addr)
	if err != nil {
		return 0, fmt.Errorf("dial: %w", err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	for left := n; left > 0; {
		b := buf
		if int64(len(b)) > left {
			b = b[:left]
		}
		c.SetWriteDeadline(time.Now().Add(cfg.timeout))
		k, err := c.Write(b)
		left -= int64(k)
		if err != nil {
			return 0, fmt.Errorf("write after %d bytes: %w", n-left, err)
		}
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return 0, fmt.Errorf("half-close: %w", err)
	}
	c.SetReadDeadline(time.Now().Add(cfg.timeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("reading the sink's count: %w", err)
	}
	got, err := strconv.ParseInt(strings.TrimSuffix(line, "\n"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("the sink's count %q: %w", line, err)
	}
	if got != n {
		return got, fmt.Errorf("sent %d bytes, the sink counted %d", n, got)
	}
	return got, nil
}

// rr runs short connections for cfg.duration from cfg.conns workers.
func rr(ctx context.Context, cfg config) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	req := make([]byte, cfg.req)
	for i := range req {
		req[i] = 'q'
	}
	var (
		errs errLog
		mu   sync.Mutex
		lat  []time.Duration
		wg   sync.WaitGroup
	)
	start := time.Now()
	end, _ := ctx.Deadline() // what the dials see: cut there, not failed
	for range cfg.conns {
		wg.Go(func() {
			mine := make([]time.Duration, 0, 4096)
			buf := make([]byte, cfg.reply+1)
			d := net.Dialer{Timeout: cfg.timeout}
			for ctx.Err() == nil {
				t0 := time.Now()
				err := rrOne(ctx, &d, cfg, req, buf)
				if ctx.Err() != nil || !time.Now().Before(end) {
					// Cut by the end of the run (on a busy core the context's
					// timer may fire late): neither done nor failed.
					break
				}
				if err != nil {
					errs.add(err)
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))].Microseconds()) / 1000
	}
	fmt.Printf("mode=rr conns=%d errors=%d seconds=%.3f rate=%.1f p50_ms=%.3f p99_ms=%.3f\n",
		len(lat), errs.n.Load(), secs, float64(len(lat))/secs, pct(0.50), pct(0.99))
	if err := errs.result(); err != nil {
		return err
	}
	if len(lat) == 0 {
		return errors.New("rr: no connection completed")
	}
	return nil
}

// rrOne makes one connection: request, reply read to EOF, close.
func rrOne(ctx context.Context, d *net.Dialer, cfg config, req, buf []byte) error {
	c, err := d.DialContext(ctx, "tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(cfg.timeout))
	if _, err := c.Write(req); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	n, err := io.ReadFull(c, buf)
	if err != io.ErrUnexpectedEOF || n != cfg.reply {
		if err == nil {
			return fmt.Errorf("reply longer than %d bytes", cfg.reply)
		}
		return fmt.Errorf("reply: %d bytes of %d: %w", n, cfg.reply, err)
	}
	return nil
}

// idle opens cfg.n connections through the proxy to the echo sink and holds them; it
// writes its "ready N" and "open M" lines to out. If any connection failed, it does not
// hold the others: it reports and returns the errors at once.
func idle(ctx context.Context, cfg config, out io.Writer) error {
	setupCtx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	conns := make([]net.Conn, cfg.n)
	var (
		next atomic.Int64
		errs errLog
		wg   sync.WaitGroup
	)
	for range cfg.conns {
		wg.Go(func() {
			d := net.Dialer{Timeout: cfg.timeout}
			var b [1]byte
			for {
				i := int(next.Add(1)) - 1
				if i >= cfg.n || setupCtx.Err() != nil {
					return
				}
				c, err := d.DialContext(setupCtx, "tcp", cfg.addr)
				if err != nil {
					errs.add(fmt.Errorf("dial %d: %w", i, err))
					continue
				}
				c.SetDeadline(time.Now().Add(cfg.timeout))
				_, err = c.Write([]byte{'i'})
				if err == nil {
					_, err = io.ReadFull(c, b[:])
				}
				if err == nil && b[0] != 'i' {
					err = fmt.Errorf("echo %q, want %q", b[0], 'i')
				}
				if err != nil {
					errs.add(fmt.Errorf("conn %d: %w", i, err))
					c.Close()
					continue
				}
				c.SetDeadline(time.Time{})
				conns[i] = c
			}
		})
	}
	wg.Wait()
	if err := setupCtx.Err(); err != nil && ctx.Err() == nil {
		errs.add(fmt.Errorf("setup: %w", err))
	}

	// Watch each connection for the proxy closing it; the watchers end when the
	// connections are closed below.
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
	fmt.Fprintf(out, "ready %d\n", open.Load())
	if ctx.Err() == nil && errs.n.Load() == 0 {
		t := time.NewTimer(cfg.hold)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	fmt.Fprintf(out, "open %d\n", open.Load())
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	watchers.Wait()
	return errs.result()
}
