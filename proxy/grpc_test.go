package proxy

import (
	"context"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/grpcinterop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
)

// TestGRPCInterop runs grpc-go's interop test cases through the proxy: a grpc-go client
// over h2c to the proxy, the proxy over h2c to grpc-go's interop TestService. The
// interop functions end the test binary on a failure.
func TestGRPCInterop(t *testing.T) {
	origin := grpcinterop.StartServer(t)

	svc, logs := newTestService[*testCtx](t, fixedProxy{peer: &Peer{Address: origin, Protocol: ProtoHTTP2}}, ServiceOptions{})
	addr := startProxy(t, svc)
	conn := grpcClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cases := grpcinterop.Cases(ctx, conn)
	// 20 rounds in a row.
	for range 20 {
		for _, c := range cases {
			t.Run(c.Name, func(t *testing.T) { c.Run() })
		}
	}
	if t.Failed() {
		t.Log(logs.String())
	}
}

// An unreachable gRPC peer gives the client UNAVAILABLE, as a gRPC status in a
// trailers-only response, not a bare 502.
func TestGRPCUnavailable(t *testing.T) {
	svc, _ := newTestService[*testCtx](t, fixedProxy{peer: &Peer{Address: deadAddr(t), Protocol: ProtoHTTP2}}, ServiceOptions{MaxRetries: -1})
	addr := startProxy(t, svc)
	conn := grpcClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 20 {
		_, err := testgrpc.NewTestServiceClient(conn).EmptyCall(ctx, &testgrpc.Empty{})
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("got %v, want Unavailable", err)
		}
	}
}

// The peer's read timeout bounds the wait for an answer, not a client-streaming upload
// that goes on longer than it: the wait starts after the last message sent.
func TestGRPCLongClientStream(t *testing.T) {
	origin := grpcinterop.StartServer(t)
	const timeout = 300 * time.Millisecond
	peer := &Peer{Address: origin, Protocol: ProtoHTTP2}
	peer.Options.ReadTimeout = timeout
	svc, logs := newTestService[*testCtx](t, fixedProxy{peer: peer}, ServiceOptions{})
	addr := startProxy(t, svc)
	conn := grpcClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := testgrpc.NewTestServiceClient(conn).StreamingInputCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for end := time.Now().Add(4 * timeout); time.Now().Before(end); {
		if err := stream.Send(&testgrpc.StreamingInputCallRequest{Payload: &testgrpc.Payload{Body: make([]byte, 100)}}); err != nil {
			t.Fatal(err)
		}
		total += 100
		time.Sleep(timeout / 5)
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	if int(resp.AggregatedPayloadSize) != total {
		t.Fatalf("server got %d bytes, sent %d", resp.AggregatedPayloadSize, total)
	}
}

// grpcClient returns a grpc-go client of addr over h2c, closed when the test ends.
func grpcClient(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
