package proxy

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/grpcinterop"
	"github.com/gotthard-proxy/gotthard/internal/grpcwebclient"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// grpcWebProxy bridges gRPC-web calls to an HTTP/2 gRPC peer.
type grpcWebProxy struct {
	Phases[*testCtx]
	peer *Peer
}

func (grpcWebProxy) NewCtx() *testCtx { return &testCtx{} }

func (p grpcWebProxy) EarlyRequestFilter(_ context.Context, s *Session, _ *testCtx) error {
	s.BridgeGRPCWeb()
	return nil
}

func (p grpcWebProxy) UpstreamPeer(context.Context, *Session, *testCtx) (*Peer, error) {
	return p.peer, nil
}

// grpcWebCall makes a gRPC-web call as a browser library does (see
// internal/grpcwebclient), failing t if the exchange fails or its response is not
// well-formed gRPC-web.
func grpcWebCall(t *testing.T, client *http.Client, addr, method string, text bool, md http.Header, req proto.Message) *grpcwebclient.Result {
	t.Helper()
	r, err := grpcwebclient.Call(context.Background(), client, "http://"+addr, method, text, md, req)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A gRPC-web client, over HTTP/1.1 and over HTTP/2, binary and text, gets the same
// messages, statuses and metadata as a native gRPC client through the same proxy.
func TestGRPCWebBridge(t *testing.T) {
	origin := grpcinterop.StartServer(t)

	svc, logs := newTestService[*testCtx](t, grpcWebProxy{peer: &Peer{Address: origin, Protocol: ProtoHTTP2}}, ServiceOptions{})
	addr := startProxy(t, svc)
	conn := grpcClient(t, addr)
	native := testgrpc.NewTestServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	large := &testgrpc.SimpleRequest{ResponseSize: 314159, Payload: &testgrpc.Payload{Body: make([]byte, 271828)}}
	special := "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n"
	stream := &testgrpc.StreamingOutputCallRequest{}
	for _, n := range []int32{31415, 9, 2653, 58979, 0} {
		stream.ResponseParameters = append(stream.ResponseParameters, &testgrpc.ResponseParameters{Size: n})
	}
	clients := map[string]*http.Client{"HTTP/1.1": testClient(t), "h2c": h2cClient(t)}
	for cname, client := range clients {
		for _, text := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/text=%v", cname, text), func(t *testing.T) {
				// Unary, large messages both ways.
				want, err := native.UnaryCall(ctx, large)
				if err != nil {
					t.Fatal(err)
				}
				r := grpcWebCall(t, client, addr, "/grpc.testing.TestService/UnaryCall", text, nil, large)
				if r.Code != codes.OK || len(r.Messages) != 1 {
					t.Fatalf("large unary: %v %q, %d messages", r.Code, r.Message, len(r.Messages))
				}
				got := new(testgrpc.SimpleResponse)
				if err := proto.Unmarshal(r.Messages[0], got); err != nil || !proto.Equal(got, want) {
					t.Fatalf("large unary: differs from the native answer (%v)", err)
				}

				// Statuses set by the server, with a message that needs escaping.
				for _, msg := range []string{"test status message", special} {
					req := &testgrpc.SimpleRequest{ResponseStatus: &testgrpc.EchoStatus{Code: 2, Message: msg}}
					_, nerr := native.UnaryCall(ctx, req)
					r := grpcWebCall(t, client, addr, "/grpc.testing.TestService/UnaryCall", text, nil, req)
					if ns := status.Convert(nerr); r.Code != ns.Code() || r.Message != ns.Message() {
						t.Fatalf("status: web %v %q, native %v %q", r.Code, r.Message, ns.Code(), ns.Message())
					}
				}

				// Metadata both ways: the echoed initial metadata in the head, the
				// trailing in the trailer frame.
				md := http.Header{"X-Grpc-Test-Echo-Initial": {"test_initial_metadata_value"},
					"X-Grpc-Test-Echo-Trailing-Bin": {base64.StdEncoding.EncodeToString([]byte{0xab, 0xab, 0xab})}}
				var hdr, trl metadata.MD
				nctx := metadata.NewOutgoingContext(ctx, metadata.Pairs("x-grpc-test-echo-initial", "test_initial_metadata_value",
					"x-grpc-test-echo-trailing-bin", string([]byte{0xab, 0xab, 0xab})))
				if _, err := native.UnaryCall(nctx, &testgrpc.SimpleRequest{}, grpc.Header(&hdr), grpc.Trailer(&trl)); err != nil {
					t.Fatal(err)
				}
				r = grpcWebCall(t, client, addr, "/grpc.testing.TestService/UnaryCall", text, md, &testgrpc.SimpleRequest{})
				if got, want := r.Header.Get("X-Grpc-Test-Echo-Initial"), hdr.Get("x-grpc-test-echo-initial"); r.Code != codes.OK || len(want) != 1 || got != want[0] {
					t.Fatalf("initial metadata: web %q, native %q", got, want)
				}
				tb, _ := base64.RawStdEncoding.DecodeString(strings.TrimRight(r.Trailers.Get("x-grpc-test-echo-trailing-bin"), "="))
				if want := trl.Get("x-grpc-test-echo-trailing-bin"); len(want) != 1 || string(tb) != want[0] {
					t.Fatalf("trailing metadata: web %x, native %q", tb, want)
				}

				// Server streaming: the same messages in the same order.
				ss, err := native.StreamingOutputCall(ctx, stream)
				if err != nil {
					t.Fatal(err)
				}
				var wantMsgs []*testgrpc.StreamingOutputCallResponse
				for {
					m, err := ss.Recv()
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					wantMsgs = append(wantMsgs, m)
				}
				r = grpcWebCall(t, client, addr, "/grpc.testing.TestService/StreamingOutputCall", text, nil, stream)
				if r.Code != codes.OK || len(r.Messages) != len(wantMsgs) {
					t.Fatalf("server streaming: %v %q, %d messages, want %d", r.Code, r.Message, len(r.Messages), len(wantMsgs))
				}
				for i, b := range r.Messages {
					got := new(testgrpc.StreamingOutputCallResponse)
					if err := proto.Unmarshal(b, got); err != nil || !proto.Equal(got, wantMsgs[i]) {
						t.Fatalf("server streaming: message %d differs (%v)", i, err)
					}
				}

				// An unknown method: UNIMPLEMENTED, trailers-only.
				err = conn.Invoke(ctx, "/grpc.testing.TestService/UnimplementedCall", &testgrpc.Empty{}, &testgrpc.Empty{})
				r = grpcWebCall(t, client, addr, "/grpc.testing.TestService/UnimplementedCall", text, nil, &testgrpc.Empty{})
				if ns := status.Convert(err); r.Code != ns.Code() || r.Code != codes.Unimplemented {
					t.Fatalf("unimplemented: web %v, native %v", r.Code, ns.Code())
				}
			})
		}
	}
	if t.Failed() {
		t.Log(logs.String())
	}
}

// When the peer cannot be reached, a gRPC-web client gets UNAVAILABLE as a gRPC-web
// response, not an error page.
func TestGRPCWebUnavailable(t *testing.T) {
	svc, _ := newTestService[*testCtx](t, grpcWebProxy{peer: &Peer{Address: deadAddr(t), Protocol: ProtoHTTP2}}, ServiceOptions{MaxRetries: -1})
	addr := startProxy(t, svc)
	for _, text := range []bool{false, true} {
		r := grpcWebCall(t, testClient(t), addr, "/grpc.testing.TestService/EmptyCall", text, nil, &testgrpc.Empty{})
		if r.Code != codes.Unavailable {
			t.Fatalf("text=%v: got %v %q, want Unavailable", text, r.Code, r.Message)
		}
	}
}

// A grpc-web-text body that is not base64 is the client's fault: 400, which a gRPC-web
// client gets as the gRPC status INTERNAL (gRPC's mapping of HTTP 400).
func TestGRPCWebBadText(t *testing.T) {
	origin := grpcinterop.StartServer(t)
	svc, _ := newTestService[*testCtx](t, grpcWebProxy{peer: &Peer{Address: origin, Protocol: ProtoHTTP2}}, ServiceOptions{})
	addr := startProxy(t, svc)
	got := rawExchange(t, addr, "POST /grpc.testing.TestService/EmptyCall HTTP/1.1\r\nHost: x\r\n"+
		"Content-Type: application/grpc-web-text\r\nContent-Length: 8\r\n\r\nAAAA!!!!")
	if !strings.Contains(got, "grpc-status: 13") && !strings.Contains(got, "Grpc-Status: 13") {
		t.Fatalf("got %q, want a gRPC-web INTERNAL status", got)
	}
}

// The base64 decoder of the bridge takes input cut anywhere and padded segments.
func TestGRPCWebDecode(t *testing.T) {
	msg := []byte("hello, gRPC-web: the quick brown fox")
	var stream []byte
	for _, part := range [][]byte{msg[:1], msg[1:5], msg[5:]} {
		stream = base64.StdEncoding.AppendEncode(stream, part) // padded segments
	}
	for cut := 0; cut <= len(stream); cut++ {
		var g grpcWeb
		var out []byte
		for _, piece := range [][]byte{stream[:cut], stream[cut:]} {
			g.pending = append(g.pending, piece...)
			d, err := g.decode()
			if err != nil {
				t.Fatalf("cut %d: %v", cut, err)
			}
			out = append(out, d...)
		}
		if !bytes.Equal(out, msg) || len(g.pending) != 0 {
			t.Fatalf("cut %d: got %q (pending %q)", cut, out, g.pending)
		}
	}
	var g grpcWeb
	g.pending = []byte("AB=C")
	if _, err := g.decode(); err == nil {
		t.Fatal("bad padding accepted")
	}
}
