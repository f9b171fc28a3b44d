// Command tlshandshake is the load side of the TLS handshake benchmark (bench/tls.sh):
// -conns workers each open a connection, complete a TLS handshake, send one
// "Connection: close" request, read the response to its end and start over, for
// -duration. With -resume each worker keeps a session cache, so every handshake after
// its first resumes with a ticket. It prints one line:
//
//	handshakes=N seconds=S rate=R errors=E resumed=K group=G
//
// The server's certificate is not verified: the benchmark measures the server's cost,
// and verification would only load the client's core.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8443", "server address")
	conns := flag.Int("conns", 32, "concurrent connections")
	duration := flag.Duration("duration", 10*time.Second, "how long to run (at most 10m)")
	resume := flag.Bool("resume", false, "resume sessions with tickets after each worker's first handshake")
	group := flag.String("group", "x25519", "key exchange offered: x25519, p256 or x25519mlkem768")
	flag.Parse()
	if *duration <= 0 || *duration > 10*time.Minute || *conns <= 0 || *conns > 4096 {
		fmt.Fprintln(os.Stderr, "tlshandshake: -duration must be in (0, 10m], -conns in [1, 4096]")
		os.Exit(2)
	}
	var curve tls.CurveID
	switch *group {
	case "x25519":
		curve = tls.X25519
	case "p256":
		curve = tls.CurveP256
	case "x25519mlkem768":
		curve = tls.X25519MLKEM768
	default:
		fmt.Fprintln(os.Stderr, "tlshandshake: unknown -group", *group)
		os.Exit(2)
	}
	req := []byte("GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
	var ok, errs, resumed atomic.Int64
	var firstErr atomic.Value
	var seen atomic.Value
	deadline := time.Now().Add(*duration)
	start := time.Now()
	var wg sync.WaitGroup
	for range *conns {
		wg.Go(func() {
			cfg := &tls.Config{
				InsecureSkipVerify: true,
				ServerName:         "bench.test",
				CurvePreferences:   []tls.CurveID{curve},
				NextProtos:         []string{"http/1.1"},
			}
			if *resume {
				cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
			}
			buf := make([]byte, 4096)
			for time.Now().Before(deadline) {
				err := once(*addr, cfg, req, buf, deadline, &resumed, &seen)
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	g, _ := seen.Load().(string)
	fmt.Printf("handshakes=%d seconds=%.3f rate=%.0f errors=%d resumed=%d group=%s\n",
		ok.Load(), secs, float64(ok.Load())/secs, errs.Load(), resumed.Load(), g)
	if e := firstErr.Load(); e != nil {
		fmt.Fprintln(os.Stderr, "tlshandshake: first error:", e)
	}
}

func once(addr string, cfg *tls.Config, req, buf []byte, deadline time.Time, resumed *atomic.Int64, seen *atomic.Value) error {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	tc := tls.Client(nc, cfg)
	if err := tc.Handshake(); err != nil {
		return err
	}
	if _, err := tc.Write(req); err != nil {
		return err
	}
	for {
		_, err := tc.Read(buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	st := tc.ConnectionState()
	if st.DidResume {
		resumed.Add(1)
	}
	if seen.Load() == nil {
		seen.Store(st.CurveID.String())
	}
	return nil
}
