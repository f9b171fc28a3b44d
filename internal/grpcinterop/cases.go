// Package grpcinterop lists the cases of gRPC's interoperability test suite
// (https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md) that a
// proxy must pass, as grpc-go's interop client runs them, for the proxy's tests and the
// gateway's. The interop client fails the process (through grpclog) when a case fails.
package grpcinterop

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/interop"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
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
		{"cancel_after_begin", func() { interop.DoCancelAfterBegin(ctx, tc) }},
		{"cancel_after_first_response", func() { interop.DoCancelAfterFirstResponse(ctx, tc) }},
		{"status_code_and_message", func() { interop.DoStatusCodeAndMessage(ctx, tc) }},
		{"special_status_message", func() { interop.DoSpecialStatusMessage(ctx, tc) }},
		{"custom_metadata", func() { interop.DoCustomMetadata(ctx, tc) }},
		{"unimplemented_method", func() { interop.DoUnimplementedMethod(ctx, conn) }},
		{"unimplemented_service", func() { interop.DoUnimplementedService(ctx, testgrpc.NewUnimplementedServiceClient(conn)) }},
	}
}
