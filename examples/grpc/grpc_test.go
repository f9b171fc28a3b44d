package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/grpcinterop"
	"github.com/gotthard-proxy/gotthard/internal/grpcwebclient"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	reflectpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/gotthard-proxy/gotthard/examples/internal/exampletest"
)

// command is the grpc command, built once for the tests (not "binary": the package
// imports encoding/binary).
var command string

func TestMain(m *testing.M) { exampletest.Main(m, "grpc", &command) }

// With -once the command makes its demo calls through the gateway, prints what they
// returned, logs each with its gRPC status and exits with status 0.
func TestOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, command, "-once", "-listen", "127.0.0.1:0")
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
		{"gRPC-web", &stdout, "A gRPC-web call through the gateway, over HTTP/1.1 (application/grpc-web-text):\n" +
			`  unary             UnaryCall: a 64-byte payload; metadata echoed: header "hello through Gotthard", trailer 0xcafe` + "\n" +
			"  status            grpc-status 0 (OK), in the trailer frame that ends the body\n"},
		{"access log", &stderr, "method=/grpc.testing.TestService/FullDuplexCall status=200 grpc_status=OK"},
		{"access log of the error", &stderr, "method=/grpc.testing.TestService/UnaryCall status=200 grpc_status=NotFound"},
		{"access log of the gRPC-web call", &stderr, "method=/grpc.testing.TestService/UnaryCall status=200 grpc_status=OK duration="},
		{"gRPC-web form in the access log", &stderr, " grpc_web=text\n"},
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
	own := grpcinterop.StartServer(t)
	dead := exampletest.FreeAddr(t)

	for _, tt := range []struct {
		name     string
		args     []string
		code     codes.Code // of every call
		reflects bool       // the server answers reflection (the demo service does)
	}{
		{"demo service", nil, codes.OK, true},
		{"own server", []string{"-upstream", own}, codes.OK, false},
		{"server down", []string{"-upstream", dead}, codes.Unavailable, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr := exampletest.Listen(t, command, tt.args...)
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

// A gRPC-web client, binary or text, over HTTP/1.1 or HTTP/2 (h2c), gets through the
// running gateway the same messages and statuses as a native gRPC client.
func TestGRPCWeb(t *testing.T) {
	addr := exampletest.Listen(t, command)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// What a native client gets for each call.
	const notFound = "not found: \"☺\" (escaped in grpc-message)"
	type answer struct {
		msgs []proto.Message
		st   *status.Status
	}
	calls := []struct {
		name   string
		method string
		req    proto.Message
		native func() answer
		empty  func() proto.Message // an empty response message
	}{
		{"unary", "/grpc.testing.TestService/UnaryCall",
			&testgrpc.SimpleRequest{ResponseSize: 1000, Payload: payload(5000)},
			func() answer {
				r, err := testgrpc.NewTestServiceClient(conn).UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseSize: 1000, Payload: payload(5000)})
				return answer{[]proto.Message{r}, status.Convert(err)}
			},
			func() proto.Message { return new(testgrpc.SimpleResponse) }},
		{"unary, error", "/grpc.testing.TestService/UnaryCall",
			&testgrpc.SimpleRequest{ResponseStatus: &testgrpc.EchoStatus{Code: int32(codes.NotFound), Message: notFound}},
			func() answer {
				_, err := testgrpc.NewTestServiceClient(conn).UnaryCall(ctx, &testgrpc.SimpleRequest{
					ResponseStatus: &testgrpc.EchoStatus{Code: int32(codes.NotFound), Message: notFound}})
				return answer{nil, status.Convert(err)}
			}, nil},
		{"server streaming", "/grpc.testing.TestService/StreamingOutputCall",
			&testgrpc.StreamingOutputCallRequest{ResponseParameters: []*testgrpc.ResponseParameters{{Size: 1}, {Size: 70_000}, {Size: 0}}},
			func() answer {
				stream, err := testgrpc.NewTestServiceClient(conn).StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{
					ResponseParameters: []*testgrpc.ResponseParameters{{Size: 1}, {Size: 70_000}, {Size: 0}}})
				var a answer
				for err == nil {
					var m *testgrpc.StreamingOutputCallResponse
					if m, err = stream.Recv(); err == nil {
						a.msgs = append(a.msgs, m)
					}
				}
				if errors.Is(err, io.EOF) {
					err = nil
				}
				a.st = status.Convert(err)
				return a
			},
			func() proto.Message { return new(testgrpc.StreamingOutputCallResponse) }},
		{"unknown method (trailers-only)", "/grpc.testing.TestService/UnimplementedCall", &testgrpc.Empty{},
			func() answer {
				err := conn.Invoke(ctx, "/grpc.testing.TestService/UnimplementedCall", &testgrpc.Empty{}, &testgrpc.Empty{})
				return answer{nil, status.Convert(err)}
			}, nil},
	}

	h1 := &http.Transport{}
	defer h1.CloseIdleConnections()
	h2c := &http.Transport{Protocols: new(http.Protocols)}
	h2c.Protocols.SetUnencryptedHTTP2(true)
	defer h2c.CloseIdleConnections()
	for _, tr := range []struct {
		name   string
		client *http.Client
	}{
		{"HTTP/1.1", &http.Client{Transport: h1}},
		{"h2c", &http.Client{Transport: h2c}},
	} {
		for _, text := range []bool{false, true} {
			form := "binary"
			if text {
				form = "text"
			}
			for _, c := range calls {
				t.Run(tr.name+"/"+form+"/"+c.name, func(t *testing.T) {
					want := c.native()
					got, err := grpcwebclient.Call(ctx, tr.client, "http://"+addr, c.method, text, nil, c.req)
					if err != nil {
						t.Fatal(err)
					}
					if got.Code != want.st.Code() || got.Message != want.st.Message() {
						t.Fatalf("status %v %q, native %v %q", got.Code, got.Message, want.st.Code(), want.st.Message())
					}
					if len(got.Messages) != len(want.msgs) {
						t.Fatalf("%d messages, native %d", len(got.Messages), len(want.msgs))
					}
					for i, b := range got.Messages {
						m := c.empty()
						if err := proto.Unmarshal(b, m); err != nil || !proto.Equal(m, want.msgs[i]) {
							t.Fatalf("message %d differs from the native one (%v)", i, err)
						}
					}
				})
			}
		}
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
			out, err := exec.Command(command, append([]string{"-listen", "127.0.0.1:0"}, tt.args...)...).CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), tt.want) {
				t.Fatalf("%v: %s", err, out)
			}
		})
	}
}
