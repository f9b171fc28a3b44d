package syslog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// TestReconnect stops the receiver, logs while it is away, starts it again on the same
// address, and checks that the handler reconnects, that every record after the first
// one to arrive arrives too, and that the drop count is exactly the records that did
// not arrive.
func TestReconnect(t *testing.T) {
	for _, network := range []string{"unixgram", "unix", "tcp", "tcp+tls"} {
		t.Run(network, func(t *testing.T) {
			r := startReceiver(t, network, "")
			h := newHandler(t, r, Options{MaxBackoff: 200 * time.Millisecond})
			log := slog.New(h)
			log.Info("before")
			if m := r.next(t); m.Msg != "before" {
				t.Fatalf("MSG %q", m.Msg)
			}

			r.stop()
			const away = 5
			for range away {
				log.Info("away")
			}
			if n := h.Dropped(); n != away {
				t.Fatalf("Dropped() = %d while the receiver is away, want %d", n, away)
			}

			r.restart()
			sent, first := 0, -1
			deadline := time.Now().Add(10 * time.Second)
			for first < 0 {
				if time.Now().After(deadline) {
					t.Fatalf("no record arrived within 10s after the restart; Dropped() = %d", h.Dropped())
				}
				log.Info("back", "i", sent)
				sent++
				select {
				case b := <-r.msgs:
					m, err := parse(b)
					if err != nil {
						t.Fatalf("invalid message %q: %v", b, err)
					}
					i, _ := m.param("i")
					fmt.Sscan(i, &first)
				case <-time.After(20 * time.Millisecond):
				}
			}
			for i := sent; i < sent+10; i++ {
				log.Info("back", "i", i)
			}
			for i := first + 1; i < sent+10; i++ {
				m := r.next(t)
				if v, _ := m.param("i"); v != fmt.Sprint(i) {
					t.Fatalf("record %s arrived, want %d", v, i)
				}
			}
			if n, want := h.Dropped(), uint64(away+first); n != want {
				t.Errorf("Dropped() = %d, want %d (%d while away, %d before reconnecting)", n, want, away, first)
			}
		})
	}
}

// TestStalledReceiver checks that a receiver that stops reading holds no log call,
// from any goroutine, much longer than WriteTimeout, and that the records that could
// not be written are counted.
func TestStalledReceiver(t *testing.T) {
	for _, network := range []string{"tcp", "unix", "tcp+tls"} {
		t.Run(network, func(t *testing.T) {
			timeout := 100 * time.Millisecond
			if network == "tcp+tls" {
				timeout = time.Second // the handshake, under the race detector
			}
			r := startStalled(t, network)
			h := newHandler(t, r, Options{WriteTimeout: timeout})
			big := strings.Repeat("x", 64<<10)
			deadline := time.Now().Add(30 * time.Second)

			var wg sync.WaitGroup
			var mu sync.Mutex
			var longest time.Duration
			var errs []error
			for range 4 {
				wg.Go(func() {
					for h.Dropped() < 8 && time.Now().Before(deadline) {
						start := time.Now()
						err := h.Handle(context.Background(), slog.NewRecord(start, slog.LevelInfo, big, 0))
						d := time.Since(start)
						mu.Lock()
						longest = max(longest, d)
						if err != nil {
							errs = append(errs, err)
						}
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if h.Dropped() < 8 {
				t.Fatalf("Dropped() = %d after 30s against a receiver that does not read", h.Dropped())
			}
			// The bound is WriteTimeout; the margin is for a loaded machine. What
			// this catches is a call that waits on the receiver without end.
			if limit := timeout + 5*time.Second; longest > limit {
				t.Errorf("a log call took %s, more than %s", longest, limit)
			}
			if len(errs) < 8 {
				t.Errorf("%d errors for %d dropped records", len(errs), h.Dropped())
			}
			var timeouts int
			for _, err := range errs {
				var ne net.Error
				if errors.Is(err, ErrBusy) || errors.As(err, &ne) && ne.Timeout() {
					timeouts++
				}
			}
			if timeouts == 0 {
				t.Errorf("no timeout among the errors: %v", errs)
			}
		})
	}
}

// TestConcurrent logs from many goroutines and checks that every record arrives whole.
func TestConcurrent(t *testing.T) {
	for _, network := range []string{"unix", "tcp", "unixgram", "tcp+tls"} {
		t.Run(network, func(t *testing.T) {
			r := startReceiver(t, network, "")
			h := newHandler(t, r, Options{})
			const goroutines, each = 8, 200
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() {
					log := slog.New(h).With("g", g)
					for i := range each {
						log.Info(strings.Repeat("m", i), "i", i)
					}
				})
			}
			wg.Wait()
			seen := make([]int, goroutines)
			for range goroutines * each {
				m := r.next(t)
				var g, i int
				gs, _ := m.param("g")
				is, _ := m.param("i")
				fmt.Sscan(gs, &g)
				fmt.Sscan(is, &i)
				if len(m.Msg) != i {
					t.Fatalf("record %d of %d: MSG of %d bytes", i, g, len(m.Msg))
				}
				if network != "unixgram" && i != seen[g] {
					t.Fatalf("record %d of %d after %d", i, g, seen[g]-1)
				}
				seen[g]++
			}
			if n := h.Dropped(); n != 0 {
				t.Errorf("Dropped() = %d", n)
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	r := startReceiver(t, "udp", "")
	for _, tt := range []struct {
		max  int
		want int
	}{{0, 2048}, {480, 480}, {1000, 1000}} {
		t.Run(fmt.Sprint(tt.max), func(t *testing.T) {
			h := newHandler(t, r, Options{MaxDatagramSize: tt.max})
			msg := strings.Repeat("é", 3000)
			slog.New(h).Info(msg, "k", "v")
			b := <-r.msgs
			if len(b) > tt.want || len(b) < tt.want-1 {
				t.Errorf("datagram of %d bytes, want %d (or one less at a character boundary)", len(b), tt.want)
			}
			m, err := parse(b)
			if err != nil {
				t.Fatalf("truncated message: %v", err)
			}
			if !strings.HasPrefix(msg, m.Msg) || m.Msg == "" {
				t.Errorf("MSG %q is not a prefix of the message", m.Msg)
			}
		})
	}

	for n := 1; n < 8; n++ {
		b := truncate([]byte("aé€😀z"), n)
		if !utf8.Valid(b) || len(b) > n || len(b) < n-3 {
			t.Errorf("truncate to %d: %q", n, b)
		}
	}
}

func TestClose(t *testing.T) {
	r := startReceiver(t, "tcp", "")
	h := newHandler(t, r, Options{})
	derived := h.WithGroup("g").WithAttrs([]slog.Attr{slog.Int("a", 1)})
	slog.New(derived).Info("open")
	r.next(t)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	err := derived.Handle(context.Background(), slog.NewRecord(time.Now(), slog.LevelInfo, "closed", 0))
	if !errors.Is(err, ErrClosed) || h.Dropped() != 1 {
		t.Errorf("Handle after Close: %v, Dropped() = %d", err, h.Dropped())
	}
}

// BenchmarkHandle measures a record with three attributes sent to a UDP socket that
// is not read (the kernel drops what does not fit in its buffer).
func BenchmarkHandle(b *testing.B) {
	for _, format := range []Format{StructuredData, Text} {
		b.Run([]string{"sd", "text"}[format], func(b *testing.B) {
			pc, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer pc.Close()
			h, err := New(Options{Network: "udp", Addr: pc.LocalAddr().String(), Format: format})
			if err != nil {
				b.Fatal(err)
			}
			defer h.Close()
			h2 := h.WithAttrs([]slog.Attr{slog.String("service", "gateway")})
			r := slog.NewRecord(time.Now(), slog.LevelInfo, "upstream failed", 0)
			r.AddAttrs(slog.String("peer", "10.0.0.7:8080"), slog.Int("status", 502), slog.Duration("took", 1500*time.Microsecond))
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				h2.Handle(ctx, r)
			}
			if b.N > 1 && h.Dropped() > 0 {
				b.Errorf("Dropped() = %d", h.Dropped())
			}
		})
	}
}

// BenchmarkHandleParallel is BenchmarkHandle from GOMAXPROCS goroutines, which share
// the connection's lock.
func BenchmarkHandleParallel(b *testing.B) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer pc.Close()
	h, err := New(Options{Network: "udp", Addr: pc.LocalAddr().String()})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "upstream failed", 0)
	r.AddAttrs(slog.String("peer", "10.0.0.7:8080"), slog.Int("status", 502), slog.Duration("took", 1500*time.Microsecond))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			h.Handle(ctx, r)
		}
	})
}
