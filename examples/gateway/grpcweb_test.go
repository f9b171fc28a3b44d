package main

import (
	"context"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/grpcinterop"
	"github.com/gotthard-proxy/gotthard/internal/grpcwebclient"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/protobuf/proto"
)

// TestGRPCWeb makes a gRPC-web unary call, binary and text, over HTTP/1.1 through the
// gateway binary run as `gateway -upstream ADDR -upstream-proto h2c -grpc-web` in front
// of grpc-go's interop TestService, with one upstream and balancing, and checks that it
// gets what a native gRPC call through the gateway gets. Without -grpc-web the call
// reaches the server as it is and is no gRPC-web call to it; -grpc-web with an HTTP/1.1
// upstream is refused at start.
func TestGRPCWeb(t *testing.T) {
	grpcLogger() // before any gRPC code runs (see TestGRPCInterop)
	upstream := grpcinterop.StartServer(t)
	req := &testgrpc.SimpleRequest{ResponseSize: 314, Payload: &testgrpc.Payload{Body: make([]byte, 271)}}

	for _, tc := range []struct {
		name    string
		args    []string
		bridged bool
	}{
		{"one upstream", []string{"-grpc-web"}, true},
		{"balanced", []string{"-grpc-web", "-lb", "round-robin"}, true},
		{"without -grpc-web", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := freeAddr(t)
			gw := startGateway(t, append([]string{"-listen", addr, "-upstream", upstream, "-upstream-proto", "h2c"}, tc.args...)...)
			gw.waitAccepting(t, addr)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			want, err := testgrpc.NewTestServiceClient(conn).UnaryCall(ctx, req)
			if err != nil {
				t.Fatal(err)
			}

			tr := &http.Transport{} // HTTP/1.1 to an http:// URL
			defer tr.CloseIdleConnections()
			for _, text := range []bool{false, true} {
				r, err := grpcwebclient.Call(ctx, &http.Client{Transport: tr}, "http://"+addr,
					"/grpc.testing.TestService/UnaryCall", text, nil, req)
				if !tc.bridged {
					if err == nil {
						t.Fatalf("text=%v: bridged without -grpc-web: %s", text, r.ContentType)
					}
					continue
				}
				if err != nil {
					t.Fatalf("text=%v: %v", text, err)
				}
				wantCT := "application/grpc-web+proto"
				if text {
					wantCT = "application/grpc-web-text+proto"
				}
				if r.ContentType != wantCT || r.TrailersOnly || r.Code != codes.OK || len(r.Messages) != 1 {
					t.Fatalf("text=%v: Content-Type %q, trailers only %v, %v, %d messages; want %s, a trailer frame, OK and one message",
						text, r.ContentType, r.TrailersOnly, r.Code, len(r.Messages), wantCT)
				}
				if text && r.Segments != 1 {
					// The gateway encodes the body as one base64 stream, padded at its end only.
					t.Fatalf("the text body came in %d base64 segments, want 1", r.Segments)
				}
				got := new(testgrpc.SimpleResponse)
				if err := proto.Unmarshal(r.Messages[0], got); err != nil || !proto.Equal(got, want) {
					t.Fatalf("text=%v: the answer differs from the native call's (%v)", text, err)
				}
			}
		})
	}

	out, err := exec.Command(binary, "-listen", "127.0.0.1:0", "-upstream", upstream, "-grpc-web").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "-grpc-web needs -upstream-proto h2c or h2") {
		t.Fatalf("-grpc-web with an HTTP/1.1 upstream: %v %s", err, out)
	}
}
