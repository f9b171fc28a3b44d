// Package grpcinterop lists the cases of gRPC's interoperability test suite
// (https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md) that a
// proxy must pass, as grpc-go's interop client runs them, and starts the interop
// TestService they call: for the tests of the proxy and of the examples. The interop client fails the process (through grpclog) when a case fails.
package grpcinterop

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/grpclog"
	"google.golang.org/grpc/interop"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
)

// Case is one interop case, named as the interop client names it.
type Case struct {
	Name string
	Run  func()
}

// Cases returns the 14 cases that run on one client connection to a TestService (all
// but the soak tests, which need more set-up, and those that need credentials or
// compression), under ctx.
func Cases(ctx context.Context, conn *grpc.ClientConn) []Case {
	tc := testgrpc.NewTestServiceClient(conn)
	return []Case{
		{"empty_unary", func() { interop.DoEmptyUnaryCall(ctx, tc) }},
		{"large_unary", func() { interop.DoLargeUnaryCall(ctx, tc) }},
		{"client_streaming", func() { interop.DoClientStreaming(ctx, tc) }},
		{"server_streaming", func() { interop.DoServerStreaming(ctx, tc) }},
		{"ping_pong", func() { interop.DoPingPong(ctx, tc) }},
		{"empty_stream", func() { interop.DoEmptyStream(ctx, tc) }},
		{"timeout_on_sleeping_server", func() { interop.DoTimeoutOnSleepingServer(ctx, tc) }},
		{"cancel_after_begin", func() { cancelAfterBegin(ctx, tc) }},
		{"cancel_after_first_response", func() { interop.DoCancelAfterFirstResponse(ctx, tc) }},
		{"status_code_and_message", func() { interop.DoStatusCodeAndMessage(ctx, tc) }},
		{"special_status_message", func() { interop.DoSpecialStatusMessage(ctx, tc) }},
		{"custom_metadata", func() { interop.DoCustomMetadata(ctx, tc) }},
		{"unimplemented_method", func() { interop.DoUnimplementedMethod(ctx, conn) }},
		{"unimplemented_service", func() { interop.DoUnimplementedService(ctx, testgrpc.NewUnimplementedServiceClient(conn)) }},
	}
}

// cancelAfterBegin is the interop client's cancel_after_begin: a client-streaming call
// cancelled before it sends anything must end with CANCELLED. grpc-go acts on the
// cancellation on a goroutine of its own, so CloseAndRecv, called right after cancel,
// may still send the end of the stream and, when the answer comes back faster than that
// goroutine runs (a loaded machine, a fast path), return the server's OK. That is the
// client's race, not the proxy's: an OK is tried again, up to five times in all; any
// other status than CANCELLED fails at once, as in the interop client.
func cancelAfterBegin(ctx context.Context, tc testgrpc.TestServiceClient) {
	for try := 1; ; try++ {
		cctx, cancel := context.WithCancel(ctx)
		stream, err := tc.StreamingInputCall(cctx)
		if err != nil {
			cancel()
			grpclog.Fatalf("%v.StreamingInputCall(_) = _, %v", tc, err)
		}
		cancel()
		_, err = stream.CloseAndRecv()
		switch code := status.Code(err); {
		case code == codes.Canceled:
			return
		case code != codes.OK || try == 5:
			grpclog.Fatalf("%v.CloseAndRecv() got error code %d, want %d (try %d)", stream, code, codes.Canceled, try)
		}
	}
}

// StartServer starts grpc-go's interop TestService on a loopback port, stopped when the
// test ends, and returns its address.
func StartServer(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(gs, interop.NewTestServer())
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	return ln.Addr().String()
}
