package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/gotthard-proxy/gotthard/internal/grpcwebclient"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/interop"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// demo is the gRPC service the example starts when no -upstream is given: grpc-go's
// interop TestService (the service gRPC's own interoperability tests call), with server
// reflection so that tools such as grpcurl can list and call it.
type demo struct {
	gs *grpc.Server
	ln net.Listener
}

// startDemo serves the demo service over h2c on a free loopback port.
func startDemo() (*demo, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo service: %w", err)
	}
	gs := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(gs, interop.NewTestServer())
	reflection.Register(gs)
	go gs.Serve(ln) // returns when Stop closes ln
	return &demo{gs: gs, ln: ln}, nil
}

// Addr returns the service's "host:port".
func (d *demo) Addr() string { return d.ln.Addr().String() }

// Stop closes the listener and every connection, and waits for the handlers to return.
func (d *demo) Stop() { d.gs.Stop() }

// Metadata that the TestService echoes: the first in the response header, the second in
// the trailers.
const (
	echoHeader  = "x-grpc-test-echo-initial"
	echoTrailer = "x-grpc-test-echo-trailing-bin"
)

// demoCalls makes one call of each kind to the TestService through the gateway at addr,
// checks what came back and prints it to w.
func demoCalls(ctx context.Context, addr string, w io.Writer) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("grpc.NewClient: %w", err)
	}
	defer conn.Close()
	tc := testgrpc.NewTestServiceClient(conn)
	fmt.Fprintln(w, "Calls through the gateway to grpc.testing.TestService:")
	for _, c := range []struct {
		kind string
		run  func(context.Context, testgrpc.TestServiceClient) (string, error)
	}{
		{"unary", unary},
		{"unary, error", unaryError},
		{"server streaming", serverStreaming},
		{"client streaming", clientStreaming},
		{"bidi streaming", bidiStreaming},
	} {
		got, err := c.run(ctx, tc)
		if err != nil {
			return fmt.Errorf("%s call: %w", c.kind, err)
		}
		fmt.Fprintf(w, "  %-17s %s\n", c.kind, got)
	}

	// A gRPC-web call, as a browser makes it: a plain HTTP/1.1 POST (net/http's
	// Transport speaks HTTP/1.1 to an http:// URL).
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	got, st, err := webUnary(ctx, &http.Client{Transport: tr}, "http://"+addr)
	if err != nil {
		return fmt.Errorf("gRPC-web call: %w", err)
	}
	fmt.Fprintln(w, "\nA gRPC-web call through the gateway, over HTTP/1.1 (application/grpc-web-text):")
	fmt.Fprintf(w, "  %-17s %s\n", "unary", got)
	fmt.Fprintf(w, "  %-17s %s\n", "status", st)
	return nil
}

func payload(n int) *testgrpc.Payload {
	return &testgrpc.Payload{Type: testgrpc.PayloadType_COMPRESSABLE, Body: make([]byte, n)}
}

// unary asks for a 64-byte payload, with metadata that comes back in the header and in
// the trailers.
func unary(ctx context.Context, tc testgrpc.TestServiceClient) (string, error) {
	const greeting, bin = "hello through Gotthard", "\xca\xfe"
	ctx = metadata.AppendToOutgoingContext(ctx, echoHeader, greeting, echoTrailer, bin)
	var header, trailer metadata.MD
	resp, err := tc.UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseSize: 64, Payload: payload(32)},
		grpc.Header(&header), grpc.Trailer(&trailer))
	if err != nil {
		return "", err
	}
	n := len(resp.GetPayload().GetBody())
	h, t := header.Get(echoHeader), trailer.Get(echoTrailer)
	if n != 64 || !slices.Equal(h, []string{greeting}) || !slices.Equal(t, []string{bin}) {
		return "", fmt.Errorf("got %d bytes, header echo %q, trailer echo %q", n, h, t)
	}
	return fmt.Sprintf("UnaryCall: a %d-byte payload; metadata echoed: header %q, trailer 0x%x", n, h[0], t[0]), nil
}

// webUnary makes the call of [unary] as a gRPC-web call in the text form (base64, as
// browsers that cannot stream binary bodies use it): metadata goes as header fields,
// binary metadata in base64, and comes back in the response head and in the trailer
// frame at the end of the body, with the status. It returns what came back and the
// status.
func webUnary(ctx context.Context, client *http.Client, base string) (got, st string, err error) {
	const greeting, bin = "hello through Gotthard", "\xca\xfe"
	md := http.Header{echoHeader: {greeting}, echoTrailer: {base64.StdEncoding.EncodeToString([]byte(bin))}}
	r, err := grpcwebclient.Call(ctx, client, base, "/grpc.testing.TestService/UnaryCall", true, md,
		&testgrpc.SimpleRequest{ResponseSize: 64, Payload: payload(32)})
	if err != nil {
		return "", "", err
	}
	if r.Code != codes.OK || len(r.Messages) != 1 {
		return "", "", fmt.Errorf("status %v %q, %d messages, want OK and one", r.Code, r.Message, len(r.Messages))
	}
	resp := new(testgrpc.SimpleResponse)
	if err := proto.Unmarshal(r.Messages[0], resp); err != nil {
		return "", "", err
	}
	n := len(resp.GetPayload().GetBody())
	h := r.Header.Get(echoHeader)
	t, _ := base64.RawStdEncoding.DecodeString(strings.TrimRight(r.Trailers.Get(echoTrailer), "="))
	if n != 64 || h != greeting || string(t) != bin {
		return "", "", fmt.Errorf("got %d bytes, header echo %q, trailer echo %q", n, h, t)
	}
	return fmt.Sprintf("UnaryCall: a %d-byte payload; metadata echoed: header %q, trailer 0x%x", n, h, t),
		fmt.Sprintf("grpc-status %d (%v), in the trailer frame that ends the body", r.Code, r.Code), nil
}

// unaryError asks the service to fail the call with a status of its choosing, which must
// reach the client as it was sent.
func unaryError(ctx context.Context, tc testgrpc.TestServiceClient) (string, error) {
	const msg = "no such demo (sent by the service)"
	_, err := tc.UnaryCall(ctx, &testgrpc.SimpleRequest{
		ResponseStatus: &testgrpc.EchoStatus{Code: int32(codes.NotFound), Message: msg},
	})
	st, _ := status.FromError(err)
	if st.Code() != codes.NotFound || st.Message() != msg {
		return "", fmt.Errorf("got %v, want NotFound %q", err, msg)
	}
	return fmt.Sprintf("UnaryCall: status %v %q", st.Code(), st.Message()), nil
}

// serverStreaming asks for four messages of growing size.
func serverStreaming(ctx context.Context, tc testgrpc.TestServiceClient) (string, error) {
	want := []int{8, 64, 512, 4096}
	req := &testgrpc.StreamingOutputCallRequest{}
	for _, n := range want {
		req.ResponseParameters = append(req.ResponseParameters, &testgrpc.ResponseParameters{Size: int32(n)})
	}
	stream, err := tc.StreamingOutputCall(ctx, req)
	if err != nil {
		return "", err
	}
	var got []int
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", err
		}
		got = append(got, len(resp.GetPayload().GetBody()))
	}
	if !slices.Equal(got, want) {
		return "", fmt.Errorf("got messages of %v bytes, want %v", got, want)
	}
	return fmt.Sprintf("StreamingOutputCall: %d messages of %s bytes", len(got), list(got)), nil
}

// clientStreaming sends four messages; the service answers with their total size.
func clientStreaming(ctx context.Context, tc testgrpc.TestServiceClient) (string, error) {
	sizes := []int{10, 100, 1000, 10000}
	stream, err := tc.StreamingInputCall(ctx)
	if err != nil {
		return "", err
	}
	total := 0
	for _, n := range sizes {
		if err := stream.Send(&testgrpc.StreamingInputCallRequest{Payload: payload(n)}); err != nil {
			return "", err
		}
		total += n
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return "", err
	}
	if int(resp.GetAggregatedPayloadSize()) != total {
		return "", fmt.Errorf("the service counted %d bytes, want %d", resp.GetAggregatedPayloadSize(), total)
	}
	return fmt.Sprintf("StreamingInputCall: sent %s bytes; the service counted %d", list(sizes), total), nil
}

// bidiStreaming sends three requests one at a time, reading the reply to each before
// sending the next.
func bidiStreaming(ctx context.Context, tc testgrpc.TestServiceClient) (string, error) {
	sizes := []int{16, 32, 64}
	stream, err := tc.FullDuplexCall(ctx)
	if err != nil {
		return "", err
	}
	for _, n := range sizes {
		req := &testgrpc.StreamingOutputCallRequest{
			ResponseParameters: []*testgrpc.ResponseParameters{{Size: int32(n)}},
		}
		if err := stream.Send(req); err != nil {
			return "", err
		}
		resp, err := stream.Recv()
		if err != nil {
			return "", err
		}
		if got := len(resp.GetPayload().GetBody()); got != n {
			return "", fmt.Errorf("a reply of %d bytes, want %d", got, n)
		}
	}
	if err := stream.CloseSend(); err != nil {
		return "", err
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("after the last reply: %v, want the end of the stream", err)
	}
	return fmt.Sprintf("FullDuplexCall: %d requests, each answered before the next (%s bytes)", len(sizes), list(sizes)), nil
}

// list formats numbers as "1, 2, 3".
func list(ns []int) string {
	s := ""
	for i, n := range ns {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprint(n)
	}
	return s
}
