package redis

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/gotthard-proxy/gotthard/internal/testnet"
)

// redisServer is a redis-server this test started (see testnet.Redis), which tells
// keyspace events (the lease tests wait on expiries).
type redisServer struct {
	*testnet.Redis
	t testing.TB
}

// startRedis starts the test's redis-server. It skips the test when redis-server is not
// installed.
func startRedis(t testing.TB) *redisServer {
	t.Helper()
	return &redisServer{Redis: testnet.StartRedis(t, "--notify-keyspace-events", "Egx"), t: t}
}

// client returns a client of the server (one "process" of the fleet), closed when the
// test ends; dials counts its dials.
func (s *redisServer) client(dials *atomic.Int64) *goredis.Client {
	d := &net.Dialer{Timeout: time.Second}
	c := goredis.NewClient(&goredis.Options{
		Addr:                  s.Addr(),
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		DialerRetries:         1,
		Protocol:              2,
		DisableIdentity:       true,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if dials != nil {
				dials.Add(1)
			}
			return d.DialContext(ctx, network, addr)
		},
	})
	s.t.Cleanup(func() { c.Close() })
	return c
}

// states records a limiter's state changes and the log records it wrote.
type states struct {
	ch   chan bool
	mu   sync.Mutex
	logs []string
}

func newStates() *states { return &states{ch: make(chan bool, 16)} }

func (s *states) store(c *goredis.Client, prefix string) StoreOptions {
	return StoreOptions{
		Client:        c,
		Prefix:        prefix,
		Timeout:       time.Second,
		RetryInterval: 20 * time.Millisecond,
		Logger:        slog.New(&recordHandler{s: s}),
		OnStateChange: func(up bool) { s.ch <- up },
	}
}

// wait waits for the state change want, with a deadline, calling poke meanwhile (a
// limiter only finds out about Redis when a request tries it).
func (s *states) wait(t *testing.T, want bool, poke func()) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case got := <-s.ch:
			if got != want {
				t.Fatalf("state changed to up=%v, want up=%v", got, want)
			}
			return
		case <-deadline:
			t.Fatalf("no change to up=%v within 10s", want)
		default:
			poke()
		}
	}
}

func (s *states) logged() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.logs...)
}

type recordHandler struct{ s *states }

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.s.mu.Lock()
	h.s.logs = append(h.s.logs, r.Level.String()+" "+r.Message)
	h.s.mu.Unlock()
	return nil
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

// keyEvents subscribes to the server's keyspace events of one kind ("expire",
// "expired") and sends the keys they name.
func keyEvents(t *testing.T, c *goredis.Client, event string) <-chan string {
	t.Helper()
	ctx := context.Background()
	sub := c.Subscribe(ctx, "__keyevent@0__:"+event)
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	ch := make(chan string, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range sub.Channel() {
			select {
			case ch <- m.Payload:
			default:
			}
		}
	}()
	t.Cleanup(func() { sub.Close(); <-done })
	return ch
}
