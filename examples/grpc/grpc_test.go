package main

import (
	"context"
	"errors"
	"io"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/interop"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	reflectpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/gotthard-proxy/gotthard/examples/internal/exampletest"
)

// binary is the grpc command built once for the tests.
var binary string

func TestMain(m *testing.M) { exampletest.Main(m, "grpc", &binary) }

// With -once the command makes its demo calls through the gateway, prints what they
// returned, logs each with its gRPC status and exits with status 0.
func TestOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "-once", "-listen", "127.0.0.1:0")
	var stdout, stderr exampletest.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	for _, tt := range []struct {
		name string
		out  *exampletest.Buffer
		want string
	}{
		{"address", &stdout, "Gotthard gRPC gateway on 127.0.0.1:"},
		{"unary", &stdout, `a 64-byte payload; metadata echoed: header "hello through Gotthard", trailer 0xcafe`},
		{"unary error", &stdout, `status NotFound "no such demo (sent by the service)"`},
		{"server streaming", &stdout, "4 messages of 8, 64, 512, 4096 bytes"},
		{"client streaming", &stdout, "the service counted 11110"},
		{"bidi streaming", &stdout, "3 requests, each answered before the next (16, 32, 64 bytes)"},
		{"access log", &stderr, "method=/grpc.testing.TestService/FullDuplexCall status=200 grpc_status=OK"},
		{"access log of the error", &stderr, "method=/grpc.testing.TestService/UnaryCall status=200 grpc_status=NotFound"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(tt.out.String(), tt.want) {
				t.Errorf("no %q in\n%s", tt.want, tt.out.String())
			}
		})
	}
	if strings.Contains(stdout.String(), "Stop with Ctrl-C") {
		t.Errorf("-once says how to stop it:\n%s", stdout.String())
	}
}

// The gateway keeps serving after the demo calls, and with -upstream proxies to another
// gRPC server; a client of the test's own calls it.
func TestProxying(t *testing.T) {
	own, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(gs, interop.NewTestServer())
	go gs.Serve(own)
	defer gs.Stop()
	dead := exampletest.FreeAddr(t)

	for _, tt := range []struct {
		name     string
		args     []string
		code     codes.Code // of every call
		reflects bool       // the server answers reflection (the demo service does)
	}{
		{"demo service", nil, codes.OK, true},
		{"own server", []string{"-upstream", own.Addr().String()}, codes.OK, false},
		{"server down", []string{"-upstream", dead}, codes.Unavailable, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr := exampletest.Listen(t, binary, tt.args...)
			conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			tc := testgrpc.NewTestServiceClient(conn)
			resp, err := tc.UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseSize: 1000})
			if status.Code(err) != tt.code {
				t.Fatalf("UnaryCall: %v, want %v", err, tt.code)
			}
			if err == nil && len(resp.GetPayload().GetBody()) != 1000 {
				t.Fatalf("UnaryCall: %d bytes, want 1000", len(resp.GetPayload().GetBody()))
			}
			got, err := streamSizes(ctx, tc, 1, 10, 100_000)
			if status.Code(err) != tt.code {
				t.Fatalf("StreamingOutputCall: %v, want %v", err, tt.code)
			}
			if err == nil && !slices.Equal(got, []int{1, 10, 100_000}) {
				t.Fatalf("StreamingOutputCall: messages of %v bytes", got)
			}
			if tt.reflects {
				if names := services(ctx, t, conn); !slices.Contains(names, "grpc.testing.TestService") {
					t.Fatalf("reflection lists %v", names)
				}
			}
		})
	}
}

// streamSizes asks for messages of the given sizes and returns the sizes received.
func streamSizes(ctx context.Context, tc testgrpc.TestServiceClient, sizes ...int32) ([]int, error) {
	req := &testgrpc.StreamingOutputCallRequest{}
	for _, n := range sizes {
		req.ResponseParameters = append(req.ResponseParameters, &testgrpc.ResponseParameters{Size: n})
	}
	stream, err := tc.StreamingOutputCall(ctx, req)
	if err != nil {
		return nil, err
	}
	var got []int
	for {
		resp, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return got, nil
			}
			return got, err
		}
		got = append(got, len(resp.GetPayload().GetBody()))
	}
}

// services lists the services of the server behind conn with server reflection, as
// grpcurl's "list" does: a bidirectional stream.
func services(ctx context.Context, t *testing.T, conn *grpc.ClientConn) []string {
	t.Helper()
	stream, err := reflectpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req := &reflectpb.ServerReflectionRequest{MessageRequest: &reflectpb.ServerReflectionRequest_ListServices{}}
	if err := stream.Send(req); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	return names
}

// Flags that do not go together, or that are not flags, end the command with status 1
// and a message.
func TestBadArgs(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"once with upstream", []string{"-once", "-upstream", "127.0.0.1:1"}, "grpc: -once"},
		{"argument", []string{"serve"}, `grpc: unexpected argument "serve"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := exec.Command(binary, append([]string{"-listen", "127.0.0.1:0"}, tt.args...)...).CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), tt.want) {
				t.Fatalf("%v: %s", err, out)
			}
		})
	}
}
