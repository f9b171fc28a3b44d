package l4

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gotthard-proxy/gotthard/internal/testnet"
)

// TestRedis runs a real Redis client through the service to a real redis-server.
func TestRedis(t *testing.T) {
	raddr := testnet.StartRedis(t, "--proto-max-bulk-len", "64mb").Addr()
	app := newTestApp(&Peer{Address: raddr})
	_, addr := newService(t, app, ServiceOptions{})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 1, Protocol: 2, DisableIdentity: true})

	t.Run("set-get", func(t *testing.T) {
		if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if got, err := rdb.Get(ctx, "k").Result(); err != nil || got != "v" {
			t.Fatalf("GET k = %q, %v", got, err)
		}
	})
	t.Run("pipeline", func(t *testing.T) {
		cmds, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := range 1000 {
				p.Set(ctx, fmt.Sprintf("p%d", i), i, 0)
			}
			return nil
		})
		if err != nil || len(cmds) != 1000 {
			t.Fatalf("pipeline of SETs: %d answers, %v", len(cmds), err)
		}
		gets, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := range 1000 {
				p.Get(ctx, fmt.Sprintf("p%d", i))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range gets {
			if got := c.(*redis.StringCmd).Val(); got != fmt.Sprint(i) {
				t.Fatalf("GET p%d = %q", i, got)
			}
		}
	})
	t.Run("8MiB", func(t *testing.T) {
		big := bytes.Repeat([]byte("0123456789abcdef"), 8<<20/16)
		big[12345] = 'X'
		if err := rdb.Set(ctx, "big", big, 0).Err(); err != nil {
			t.Fatal(err)
		}
		got, err := rdb.Get(ctx, "big").Bytes()
		if err != nil || !bytes.Equal(got, big) {
			t.Fatalf("GET big: %d bytes (want %d), equal %v, %v", len(got), len(big), bytes.Equal(got, big), err)
		}
	})
	if err := rdb.Close(); err != nil {
		t.Fatal(err)
	}
	e := app.next(t) // the pool's one connection ends with the client's Close
	if e.err != nil {
		t.Errorf("connection ended with %v", e.err)
	}
	up, down := e.toUp, e.toClient
	if up < 8<<20 || down < 8<<20 {
		t.Errorf("bytes counted: %d to upstream, %d to client; want over 8 MiB each way", up, down)
	}

	t.Run("half-close", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		req := "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		c.(*net.TCPConn).CloseWrite() // redis answers, sees the end and closes
		got, err := io.ReadAll(c)
		if err != nil || string(got) != "+PONG\r\n$1\r\nv\r\n" {
			t.Fatalf("read %q, %v", got, err)
		}
		e := app.next(t)
		if e.err != nil || e.toUp != int64(len(req)) || e.toClient != int64(len(got)) {
			t.Fatalf("Logging: err %v, %d bytes up (want %d), %d down (want %d)", e.err, e.toUp, len(req), e.toClient, len(got))
		}
		if !strings.HasPrefix(e.peer.Address, "127.0.0.1:") {
			t.Fatalf("Logging's peer %v", e.peer)
		}
	})
}
