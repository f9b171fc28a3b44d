package l4

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	cfg, _ := testCerts(t, "proxy.test")
	tests := []struct {
		name string
		add  func(s *Service[*testCtx])
		want string // "" when fine
	}{
		{"none", func(*Service[*testCtx]) {}, "no endpoints"},
		{"tcp", func(s *Service[*testCtx]) { s.AddTCP("127.0.0.1:6380") }, ""},
		{"tls", func(s *Service[*testCtx]) { s.AddTLS("127.0.0.1:6443", cfg) }, ""},
		{"bad tcp", func(s *Service[*testCtx]) { s.AddTCP("6380") }, `endpoint "6380"`},
		{"empty unix", func(s *Service[*testCtx]) { s.AddUnix("") }, "empty socket path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, err := NewService("c", newTestApp(&Peer{Address: "127.0.0.1:1"}), ServiceOptions{})
			if err != nil {
				t.Fatal(err)
			}
			tt.add(svc)
			err = svc.Check()
			if (tt.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Check = %v, want %q", err, tt.want)
			}
		})
	}
}

// panicky panics in UpstreamPeer for every connection: the panic ends that
// connection only.
type panicky struct{ *testApp }

func (p panicky) UpstreamPeer(context.Context, *Session, *testCtx) (*Peer, error) {
	panic("boom")
}

func TestPanicEndsConnectionOnly(t *testing.T) {
	app := newTestApp(&Peer{Address: "127.0.0.1:1"})
	var lg logs
	svc, err := NewService("p", panicky{app}, ServiceOptions{Logger: slog.New(&lg)})
	if err != nil {
		t.Fatal(err)
	}
	svc.AddTCP("127.0.0.1:0")
	addr := serve(t, svc)[0]
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		if e := app.next(t); !errors.Is(e.err, ErrPanic) || !strings.Contains(e.err.Error(), "boom") {
			t.Fatalf("Logging: %v, want ErrPanic", e.err)
		}
	}
	if l := lg.lines(); len(l) != 2 || !strings.Contains(l[0], "stack=") {
		t.Fatalf("log lines: %q", l)
	}
}
